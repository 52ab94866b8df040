"""``POST /orchestrate``, the detector registry, health, readiness and metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from sqlalchemy import text
from starlette.responses import Response

from detector_orchestration.errors import Conflict, JobsDisabled, NotFound
from detector_orchestration.jobs.model import Job
from detector_orchestration.registry.health import probe_all
from detector_orchestration.registry.model import DetectorSpec
from detector_orchestration.registry.store import RegistryError
from detector_orchestration.runtime import OrchRuntime
from detector_orchestration.schemas import (
    BatchRequest,
    BatchResponse,
    JobAccepted,
    OrchestrateRequest,
    OrchestrateResponse,
)
from llama_mapper.api.guard import RequestGuard
from llama_mapper.api.responses import JSONBytes, error_body, error_response
from llama_mapper.auth.keys import ADMIN, MAP_READ
from llama_mapper.auth.model import Principal
from llama_mapper.auth.service import authorize
from llama_mapper.errors import (
    BatchTooLarge,
    InvalidRequest,
    MapperError,
    describe_validation_errors,
)
from llama_mapper.schemas import ErrorBody

router = APIRouter()
_bearer = HTTPBearer(auto_error=False, description="An API key from `mapper auth create-key`.")
access = logging.getLogger("detector_orchestration.access")

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed JSON."},
    401: {"model": ErrorBody, "description": "Missing, unknown, expired or revoked API key."},
    403: {"model": ErrorBody, "description": "Scope missing or tenant not the key's tenant."},
    409: {"model": ErrorBody, "description": "The same Idempotency-Key is still in flight."},
    413: {"model": ErrorBody, "description": "Body larger than serving.max_content_kb."},
    415: {"model": ErrorBody, "description": "Body is not application/json."},
    422: {"model": ErrorBody, "description": "Invalid request, unknown policy bundle, "
          "unsupported content type or an excluded required detector."},
    429: {"model": ErrorBody, "description": "Rate limit exceeded; see Retry-After."},
    502: {"model": ErrorBody, "description": "ALL_DETECTORS_UNAVAILABLE: no detector answered."},
    503: {"model": ErrorBody, "description": "The mapper, a backend or the policy engine "
          "is unavailable; retryable."},
}  # fmt: skip


PARTIAL: dict[str, Any] = {
    "model": OrchestrateResponse,
    "description": "PARTIAL_COVERAGE: below the policy's minimum coverage; `warnings` and "
    "`coverage.missing` name the gaps.",
}
ACCEPTED: dict[str, Any] = {
    "model": JobAccepted,
    "description": "processing_mode async: the job is queued; `Location` is `/jobs/{job_id}`.",
}
ASYNC_ERRORS: dict[int | str, dict[str, Any]] = {
    501: {"model": ErrorBody, "description": "JOBS_DISABLED: async jobs are off (jobs.enabled)."},
    503: {"model": ErrorBody, "description": "The mapper, a backend (the job queue), the policy "
          "engine is unavailable, or QUEUE_FULL; retryable."},
}  # fmt: skip


async def _principal(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    guard: RequestGuard = request.app.state.guard
    return await guard.principal(request)


CurrentPrincipal = Annotated[Principal | None, Depends(_principal)]


def orch_runtime(request: Request) -> OrchRuntime:
    runtime: OrchRuntime = request.app.state.orch
    return runtime


@router.post(
    "/orchestrate",
    response_model=OrchestrateResponse,
    responses={202: ACCEPTED, 206: PARTIAL, **ERRORS, **ASYNC_ERRORS},
    summary="Run the tenant's detectors over content and decide",
    tags=["orchestration"],
)
async def orchestrate(
    request: Request,
    body: Annotated[OrchestrateRequest, Body()],
    principal: CurrentPrincipal,
) -> Response:
    runtime = orch_runtime(request)
    guard: RequestGuard = request.app.state.guard
    request_id = str(request.scope["state"]["request_id"])
    started = time.perf_counter()
    metrics = runtime.metrics

    async def handler(tenant: str | None) -> Response:
        if tenant is not None and tenant != body.tenant_id:
            body_for_tenant = body.model_copy(update={"tenant_id": tenant})
        else:
            body_for_tenant = body
        if body_for_tenant.processing_mode == "async":
            try:
                job = await submit_job(runtime, body_for_tenant)
            except MapperError as exc:
                metrics.errors.labels(exc.error_code).inc()
                log_access(request_id, exc.status, started, error_code=exc.error_code)
                raise
            log_access(request_id, 202, started, job_id=job.job_id, priority=job.priority)
            location = {"Location": job.links()["self"]}
            return JSONBytes(job.accepted(), status_code=202, headers=location)
        try:
            outcome = await runtime.orchestrator.orchestrate(body_for_tenant, request_id=request_id)
        except MapperError as exc:
            metrics.errors.labels(exc.error_code).inc()
            log_access(request_id, exc.status, started, error_code=exc.error_code)
            raise
        metrics.decisions.labels(outcome.decision.value).inc()
        metrics.cache.labels(outcome.cache).inc()
        if outcome.status == 206:
            metrics.partial_coverage.inc()
        log_access(
            request_id,
            outcome.status,
            started,
            decision=outcome.decision.value,
            detectors=len(outcome.runs),
            failed=sum(not run.ok for run in outcome.runs),
            cache=outcome.cache,
        )
        headers = None
        if outcome.body.get("redacted_content") is not None:
            # The answer quotes (redacted) content: no cache, proxy or idempotency store
            # may keep it.
            headers = {"Cache-Control": "no-store"}
        return JSONBytes(outcome.body, status_code=outcome.status, headers=headers)

    return await guard.run(
        request,
        route="/orchestrate",
        principal=principal,
        claimed_tenants=[body.tenant_id],
        cost=1,
        handler=handler,
    )


async def submit_job(runtime: OrchRuntime, request: OrchestrateRequest) -> Job:
    if runtime.jobs is None:
        raise JobsDisabled("async jobs are disabled on this server (jobs.enabled)")
    return await runtime.jobs.submit(request)


@router.post(
    "/orchestrate/batch",
    response_model=BatchResponse,
    responses={**ERRORS, **ASYNC_ERRORS},
    summary="Orchestrate up to serving.max_batch_items contents",
    description="Each item is validated and orchestrated on its own (at most "
    "`serving.batch_concurrency` at a time): a bad or failed item becomes `{error: "
    "ErrorBody}` and never fails the batch. An item with `processing_mode: async` becomes "
    "a job: its entry is `{job_id, status: queued, links}` (counted in `queued`). The batch "
    "costs its item count against the rate limit; every item's tenant must be the API key's.",
    tags=["orchestration"],
)
async def orchestrate_batch(
    request: Request, batch: Annotated[BatchRequest, Body()], principal: CurrentPrincipal
) -> Response:
    runtime = orch_runtime(request)
    guard: RequestGuard = request.app.state.guard
    request_id = str(request.scope["state"]["request_id"])
    serving = runtime.settings.serving
    if len(batch.requests) > serving.max_batch_items:
        raise BatchTooLarge(f"a batch holds at most {serving.max_batch_items} requests")
    items: list[OrchestrateRequest | MapperError] = []
    for item in batch.requests:
        try:
            items.append(OrchestrateRequest.model_validate(item))
        except ValidationError as exc:
            summary = describe_validation_errors(
                exc.errors(include_input=False, include_url=False), hide_extra_keys=True
            )
            items.append(InvalidRequest(summary))
    claimed = [item.tenant_id for item in items if isinstance(item, OrchestrateRequest)]
    started = time.perf_counter()
    metrics = runtime.metrics

    async def handler(tenant: str | None) -> Response:
        slots = asyncio.Semaphore(serving.batch_concurrency)

        async def one(index: int, item: OrchestrateRequest | MapperError) -> dict[str, Any]:
            item_id = f"{request_id}.{index}"
            if isinstance(item, MapperError):
                return {"error": error_body(item, item_id)}
            if tenant is not None and item.tenant_id != tenant:
                item = item.model_copy(update={"tenant_id": tenant})
            if item.processing_mode == "async":
                try:
                    return (await submit_job(runtime, item)).accepted()
                except MapperError as exc:
                    metrics.errors.labels(exc.error_code).inc()
                    return {"error": error_body(exc, item_id)}
            async with slots:
                try:
                    outcome = await runtime.orchestrator.orchestrate(item, request_id=item_id)
                except MapperError as exc:
                    metrics.errors.labels(exc.error_code).inc()
                    return {"error": error_body(exc, item_id)}
            metrics.decisions.labels(outcome.decision.value).inc()
            metrics.cache.labels(outcome.cache).inc()
            if outcome.status == 206:
                metrics.partial_coverage.inc()
            return outcome.body

        results = await asyncio.gather(*(one(i, item) for i, item in enumerate(items)))
        failed = sum("error" in result for result in results)
        queued = sum("job_id" in result for result in results)
        log_access(request_id, 200, started, items=len(results), failed=failed, queued=queued)
        quoted = any(result.get("redacted_content") is not None for result in results)
        counts = {"succeeded": len(results) - failed - queued, "failed": failed, "queued": queued}
        return JSONBytes(
            {"results": results, **counts},
            headers={"Cache-Control": "no-store"} if quoted else None,
        )

    return await guard.run(
        request,
        route="/orchestrate/batch",
        principal=principal,
        claimed_tenants=list(dict.fromkeys(claimed)),
        cost=len(batch.requests),
        handler=handler,
    )


def log_access(request_id: str, status: int, started: float, **fields: Any) -> None:
    """Metadata only: ids, status, counts, decision, timing; never content or findings."""
    access.info(
        "orchestration",
        extra={
            "request_id": request_id,
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            **fields,
        },
    )


def _require(request: Request, principal: Principal | None, scope: str) -> Response | None:
    if principal is None:
        return None
    try:
        authorize(principal, scope, None)
    except MapperError as exc:
        return error_response(exc, str(request.scope["state"]["request_id"]))
    return None


@router.get("/detectors", summary="Built-in and registered detectors", tags=["registry"])
async def list_detectors(request: Request, principal: CurrentPrincipal) -> Response:
    refused = _require(request, principal, MAP_READ)
    if refused is not None:
        return refused
    runtime = orch_runtime(request)
    rows = runtime.catalog.builtin_rows()
    rows += [record.summary() for record in await runtime.registry.list()]
    return JSONBytes({"detectors": rows})


@router.post("/detectors", status_code=201, summary="Register a remote detector", tags=["registry"])
async def add_detector(
    request: Request, spec: Annotated[DetectorSpec, Body()], principal: CurrentPrincipal
) -> Response:
    refused = _require(request, principal, ADMIN)
    if refused is not None:
        return refused
    runtime = orch_runtime(request)
    try:
        record = await runtime.registry.add(spec)
    except RegistryError as exc:
        raise Conflict(str(exc)) from None
    runtime.catalog.invalidate()
    return JSONBytes(record.summary(), status_code=201)


@router.post(
    "/detectors/health", summary="Probe every detector and record its health", tags=["registry"]
)
async def probe_detectors(request: Request, principal: CurrentPrincipal) -> Response:
    """What ``orch registry health`` does: one fixed probe text per detector (never user
    content); registered detectors get ``health`` and ``health_checked_at`` recorded."""
    refused = _require(request, principal, ADMIN)
    if refused is not None:
        return refused
    runtime = orch_runtime(request)
    rows = await probe_all(runtime.catalog, runtime.registry)
    healthy = all(row["health"] == "healthy" for row in rows)
    return JSONBytes({"healthy": healthy, "detectors": rows})


@router.delete("/detectors/{name}", summary="Remove a registered detector", tags=["registry"])
async def remove_detector(request: Request, name: str, principal: CurrentPrincipal) -> Response:
    refused = _require(request, principal, ADMIN)
    if refused is not None:
        return refused
    runtime = orch_runtime(request)
    try:
        await runtime.registry.remove(name)
    except RegistryError as exc:
        raise NotFound(str(exc)) from None
    runtime.catalog.invalidate()
    return Response(status_code=204)


@router.get("/health", summary="Liveness", tags=["operations"])
async def health() -> Response:
    return JSONBytes({"status": "ok"})


@router.get("/ready", summary="Readiness: database and detectors", tags=["operations"])
async def ready(request: Request) -> Response:
    runtime = orch_runtime(request)
    checks: dict[str, str] = {}
    ok = True
    try:
        async with runtime.shared.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"down ({type(exc).__name__})"
        ok = False
    try:
        available = await runtime.catalog.current()
        checks["detectors"] = f"{len(available)} available"
    except Exception as exc:
        checks["detectors"] = f"registry unreadable ({type(exc).__name__})"
        ok = False
    checks["mapper"] = "remote" if runtime.settings.mapper.url else "in-process"
    checks["auth"] = "enabled" if runtime.shared.auth is not None else "DISABLED"
    body = {"status": "ready" if ok else "not_ready", "checks": checks}
    return JSONBytes(body, status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response, tags=["operations"])
async def metrics(request: Request) -> Response:
    return Response(
        request.app.state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
