"""``POST /map`` and ``POST /map/batch``."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from starlette.responses import Response

from llama_mapper.api.responses import JSONBytes, error_body
from llama_mapper.errors import BatchTooLarge, MapperError
from llama_mapper.observability.access_log import log_mapping
from llama_mapper.observability.metrics import Metrics
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

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed JSON or raw content in the payload."},
    413: {"model": ErrorBody, "description": "Body larger than serving.max_payload_kb."},
    415: {"model": ErrorBody, "description": "Body is not application/json."},
    422: {"model": ErrorBody, "description": "Payload or detector output is invalid."},
    503: {"model": ErrorBody, "description": "The tenant's configuration is broken."},
}


def _context(request: Request) -> tuple[MapperService, Metrics, str]:
    state = request.app.state
    return state.service, state.metrics, str(request.scope["state"]["request_id"])


@router.post(
    "/map",
    response_model=MappingResponse,
    responses=ERRORS,
    summary="Map one detector result",
    description="Accepts a MapperPayload. The deprecated DetectorRequest (no tenant_id, "
    "string output) is still answered, with Deprecation and Sunset headers.",
)
async def map_one(
    request: Request, payload: Annotated[MapperPayload | DetectorRequest, Body()]
) -> Response:
    service, metrics, request_id = _context(request)
    started = time.perf_counter()
    privacy = service.settings.privacy.mode
    try:
        body = service.map_payload(payload, route="/map", request_id=request_id)
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


@router.post(
    "/map/batch",
    response_model=BatchResponse,
    responses=ERRORS,
    summary="Map up to serving.max_batch_items detector results",
)
async def map_batch(request: Request, batch: BatchRequest) -> Response:
    service, metrics, request_id = _context(request)
    started = time.perf_counter()
    limit = service.settings.serving.max_batch_items
    if len(batch.requests) > limit:
        raise BatchTooLarge(f"a batch holds at most {limit} requests")
    results: list[dict[str, Any]] = []
    failed = 0
    ts = service.now()
    for index, item in enumerate(batch.requests):
        item_id = f"{request_id}.{index}"
        try:
            payload = service.parse_payload(item)
            body = service.map_payload(payload, route="/map/batch", request_id=item_id, ts=ts)
        except MapperError as exc:
            failed += 1
            metrics.observe_error("/map/batch", exc.error_code)
            results.append({"error": error_body(exc, item_id)})
            continue
        metrics.observe_mapping("/map/batch", body)
        results.append(body)
    log_mapping(
        route="/map/batch",
        request_id=request_id,
        status=200,
        items=len(results),
        privacy_mode=service.settings.privacy.mode,
        duration_ms=_ms(started),
    )
    return JSONBytes({"results": results, "succeeded": len(results) - failed, "failed": failed})


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
