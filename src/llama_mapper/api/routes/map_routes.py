"""``POST /map`` and ``POST /map/batch``."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import Response

from llama_mapper.api.evidence import record_mappings
from llama_mapper.api.guard import RequestGuard
from llama_mapper.api.responses import JSONBytes, error_body
from llama_mapper.auth.model import Principal
from llama_mapper.errors import BatchTooLarge, MapperError
from llama_mapper.observability.access_log import log_mapping
from llama_mapper.observability.metrics import Metrics
from llama_mapper.runtime import Runtime
from llama_mapper.schemas import (
    BatchRequest,
    BatchResponse,
    DetectorRequest,
    ErrorBody,
    MapperPayload,
    MappingResponse,
)
from llama_mapper.service import MapperService

router = APIRouter(tags=["mapping"])
_bearer = HTTPBearer(auto_error=False, description="An API key from `mapper auth create-key`.")

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed JSON or raw content in the payload."},
    401: {"model": ErrorBody, "description": "Missing, unknown, expired or revoked API key."},
    403: {"model": ErrorBody, "description": "Scope missing or tenant not the key's tenant."},
    409: {"model": ErrorBody, "description": "The same Idempotency-Key is still in flight."},
    413: {"model": ErrorBody, "description": "Body larger than serving.max_payload_kb."},
    415: {"model": ErrorBody, "description": "Body is not application/json."},
    422: {"model": ErrorBody, "description": "Invalid payload, detector output, or a reused "
          "Idempotency-Key with a different body."},
    429: {"model": ErrorBody, "description": "Rate limit exceeded; see Retry-After."},
    503: {"model": ErrorBody, "description": "A backend or the tenant's configuration is "
          "unavailable; retryable."},
}  # fmt: skip


async def _principal(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    guard: RequestGuard = request.app.state.guard
    return await guard.principal(request)


CurrentPrincipal = Annotated[Principal | None, Depends(_principal)]


def _context(request: Request) -> tuple[MapperService, Metrics, RequestGuard, str]:
    state = request.app.state
    return state.service, state.metrics, state.guard, str(request.scope["state"]["request_id"])


@router.post(
    "/map",
    response_model=MappingResponse,
    responses=ERRORS,
    summary="Map one detector result",
    description="Accepts a MapperPayload. The deprecated DetectorRequest (no tenant_id, "
    "string output) is still answered, with Deprecation and Sunset headers. Send an "
    "`Idempotency-Key` header to make retries safe.",
)
async def map_one(
    request: Request,
    payload: Annotated[MapperPayload | DetectorRequest, Body()],
    principal: CurrentPrincipal,
) -> Response:
    service, metrics, guard, request_id = _context(request)
    runtime: Runtime = request.app.state.runtime
    started = time.perf_counter()
    privacy = service.settings.privacy.mode

    async def handler(tenant: str | None) -> Response:
        try:
            body = await service.amap_payload(
                payload, route="/map", request_id=request_id, tenant=tenant
            )
        except MapperError as exc:
            metrics.observe_error("/map", exc.error_code)
            log_mapping(
                route="/map",
                request_id=request_id,
                status=exc.status,
                privacy_mode=privacy,
                duration_ms=_ms(started),
                error_code=exc.error_code,
            )
            raise
        await record_mappings(runtime, [(payload.output, body)], [payload.metadata])
        metrics.observe_mapping("/map", body)
        log_mapping(
            route="/map",
            request_id=request_id,
            status=200,
            privacy_mode=privacy,
            duration_ms=_ms(started),
            response=body,
        )
        headers = None
        if isinstance(payload, DetectorRequest):
            metrics.legacy_requests.inc()
            legacy = service.settings.legacy
            headers = {
                "Deprecation": f"@{legacy.deprecated_since}",
                "Sunset": legacy.sunset,
                "Link": '</docs#/mapping/map_one_map_post>; rel="deprecation"',
            }
        return JSONBytes(body, headers=headers)

    return await guard.run(
        request,
        route="/map",
        principal=principal,
        claimed_tenants=[payload.tenant_id],
        cost=1,
        handler=handler,
    )


@router.post(
    "/map/batch",
    response_model=BatchResponse,
    responses=ERRORS,
    summary="Map up to serving.max_batch_items detector results",
    description="Each item is validated and mapped on its own: a bad item becomes "
    "`{error: ErrorBody}` and never fails the batch. The batch costs its item count "
    "against the rate limit.",
)
async def map_batch(request: Request, batch: BatchRequest, principal: CurrentPrincipal) -> Response:
    service, metrics, guard, request_id = _context(request)
    runtime: Runtime = request.app.state.runtime
    started = time.perf_counter()
    limit = service.settings.serving.max_batch_items
    if len(batch.requests) > limit:
        raise BatchTooLarge(f"a batch holds at most {limit} requests")

    async def handler(tenant: str | None) -> Response:
        results: list[dict[str, Any]] = []
        mapped: list[tuple[object, dict[str, Any]]] = []
        metadata: list[dict[str, Any] | None] = []
        failed = 0
        ts = service.now()
        for index, item in enumerate(batch.requests):
            item_id = f"{request_id}.{index}"
            try:
                payload = service.parse_payload(item)
                body = await service.amap_payload(
                    payload, route="/map/batch", request_id=item_id, ts=ts, tenant=tenant
                )
            except MapperError as exc:
                failed += 1
                metrics.observe_error("/map/batch", exc.error_code)
                results.append({"error": error_body(exc, item_id)})
                continue
            metrics.observe_mapping("/map/batch", body)
            mapped.append((payload.output, body))
            metadata.append(payload.metadata)
            results.append(body)
        await record_mappings(runtime, mapped, metadata)
        log_mapping(
            route="/map/batch",
            request_id=request_id,
            status=200,
            items=len(results),
            privacy_mode=service.settings.privacy.mode,
            duration_ms=_ms(started),
        )
        summary = {"results": results, "succeeded": len(results) - failed, "failed": failed}
        return JSONBytes(summary)

    return await guard.run(
        request,
        route="/map/batch",
        principal=principal,
        claimed_tenants=[],
        cost=len(batch.requests),
        handler=handler,
    )


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
