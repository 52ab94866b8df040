"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.responses import Response

from llama_mapper.api.responses import JSONBytes
from llama_mapper.runtime import Runtime
from llama_mapper.schemas import HealthResponse, ReadyResponse
from llama_mapper.service import RULES_ONLY

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
        "learned_tier": "rules-only (no learned tier loaded)"
        if service.model_version == RULES_ONLY
        else f"ok ({service.model_version})",
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
    if runtime.uses_database:
        database = await _database(runtime)
        checks["database"] = database
        required_ok &= database == "ok"
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


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(
        request.app.state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
