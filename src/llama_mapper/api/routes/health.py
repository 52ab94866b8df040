"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.responses import Response

from llama_mapper.api.responses import JSONBytes
from llama_mapper.runtime import Runtime
from llama_mapper.schemas import HealthResponse, ReadyResponse
from llama_mapper.storage.objects import ObjectStoreError

router = APIRouter(tags=["operations"])
CHECK_TIMEOUT = 1.0


@router.get("/health", response_model=HealthResponse, summary="Liveness")
async def health() -> Response:
    return JSONBytes({"status": "ok"})


@router.get(
    "/ready",
    response_model=ReadyResponse,
    responses={503: {"model": ReadyResponse, "description": "A required backend is down."}},
    summary="Readiness of the mapping stack and its backends",
)
async def ready(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    service = runtime.service
    catalog = service.catalog
    checks = {
        "catalog": f"ok ({len(catalog.taxonomy)} labels, {len(catalog.packs)} detector packs)",
        "learned_tier": service.learned_status,
        "secrets": f"{runtime.secrets.backend}: {runtime.secrets.health()}",
        "auth": "enabled" if runtime.auth is not None else "DISABLED (auth.enabled=false)",
    }
    required_ok = True
    if runtime.events is not None:
        stats = runtime.events.stats()
        durability = runtime.settings.audit.durability
        checks["evidence"] = (
            f"{durability}: {runtime.events.depth} queued, {stats.written} written, "
            f"{stats.shed} shed, last error {stats.last_error or 'none'}"
        )
    if runtime.analytics is not None:
        shipper = runtime.analytics
        checks["analytics"] = shipper.health.describe(shipper.target.backend)
        required_ok &= shipper.health.ok or not runtime.settings.analytics.required
    if runtime.objects is not None:
        checks["object_store"] = await _object_store(runtime)
    if runtime.uses_database:
        database = await _database(runtime)
        checks["database"] = database
        required_ok &= database == "ok"
    if runtime.reads is not None and runtime.reads.replica is not None:
        # Informational: a bad replica sends reads to the primary, so it never fails /ready.
        await runtime.reads.state()
        checks["read_replica"] = runtime.reads.describe()
    if runtime.limiter is not None:
        limiter_ok = await _probe(runtime.limiter.backend.healthy())
        mode = runtime.settings.rate_limit.failure_mode
        checks["rate_limit"] = (
            f"ok ({runtime.limiter.backend.name})"
            if limiter_ok
            else f"degraded ({runtime.limiter.backend.name} down, {mode})"
        )
        required_ok &= limiter_ok or mode == "fail_open"
        runtime.metrics.set_backend("redis", limiter_ok)
    if runtime.idempotency is not None:
        store_ok = await _probe(runtime.idempotency.healthy())
        mode = runtime.settings.idempotency.failure_mode
        checks["idempotency"] = "ok" if store_ok else f"degraded (store down, {mode})"
        required_ok &= store_ok or mode == "fail_open"
    body = {
        "status": "ready" if required_ok else "not_ready",
        "checks": checks,
        "version_info": service.version_info(),
    }
    return JSONBytes(body, status_code=200 if required_ok else 503)


async def _probe(check: object) -> bool:
    try:
        return bool(await asyncio.wait_for(check, CHECK_TIMEOUT))  # type: ignore[arg-type]
    except Exception:
        return False


async def _database(runtime: Runtime) -> str:
    async def select_one() -> None:
        async with runtime.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(select_one(), CHECK_TIMEOUT)
    except Exception as exc:
        runtime.metrics.set_backend("database", False)
        return f"down ({type(exc).__name__})"
    runtime.metrics.set_backend("database", True)
    return "ok"


async def _object_store(runtime: Runtime) -> str:
    """Informational: mapping works without the object store, so it never fails readiness;
    the line says whether anchors can be written and whether the backend can lock them."""
    objects = runtime.objects
    assert objects is not None
    try:
        protection = await asyncio.wait_for(objects.protection(), CHECK_TIMEOUT * 3)
    except ObjectStoreError as exc:
        return f"{objects.backend}: down ({exc})"
    except TimeoutError:
        return f"{objects.backend}: down (no answer in {CHECK_TIMEOUT * 3:.0f}s)"
    schedule = runtime.anchor_scheduler
    anchoring = "anchoring off" if schedule is None else f"anchoring every {schedule.interval:g}s"
    if schedule is not None and schedule.stats.refused:
        anchoring += f", chain does not verify, NOT anchored: {', '.join(schedule.stats.refused)}"
    if schedule is not None and schedule.stats.last_error:
        anchoring += f", last run failed: {schedule.stats.last_error}"
    return f"{objects.backend}: ok, write-once by {protection.describe()}; {anchoring}"


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(
        request.app.state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
