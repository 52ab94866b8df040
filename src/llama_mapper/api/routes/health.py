"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from llama_mapper.api.responses import JSONBytes
from llama_mapper.schemas import HealthResponse, ReadyResponse
from llama_mapper.service import RULES_ONLY, MapperService

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=HealthResponse, summary="Liveness")
async def health() -> Response:
    return JSONBytes({"status": "ok"})


@router.get("/ready", response_model=ReadyResponse, summary="Readiness of the mapping stack")
async def ready(request: Request) -> Response:
    service: MapperService = request.app.state.service
    catalog = service.catalog
    checks = {
        "catalog": f"ok ({len(catalog.taxonomy)} labels, {len(catalog.packs)} detector packs)",
        "learned_tier": "rules-only (no learned tier loaded)"
        if service.model_version == RULES_ONLY
        else f"ok ({service.model_version})",
    }
    body = {"status": "ready", "checks": checks, "version_info": service.version_info()}
    return JSONBytes(body)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(
        request.app.state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
