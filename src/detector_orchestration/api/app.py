"""Application factory of the orchestration API, on the mapper's edge components.

Request ids, media-type and size checks (EdgeMiddleware), correlation ids for logs,
Prometheus metrics, tracing, API keys, rate limits, idempotency and the ErrorBody handlers
are the mapper's own, reused here unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import Response

from detector_orchestration.api import compat, jobs, routes
from detector_orchestration.config import OrchSettings, load_orch_settings
from detector_orchestration.runtime import OrchRuntime, build_orch_runtime
from llama_mapper.api.app import install_error_handlers
from llama_mapper.api.guard import RequestGuard
from llama_mapper.api.middleware import EdgeMiddleware
from llama_mapper.observability.logging import CorrelationMiddleware, configure_logging
from llama_mapper.observability.metrics import MetricsMiddleware
from llama_mapper.observability.tracing import setup_tracing, shutdown_tracing
from llama_mapper.storage.db.migrate import upgrade

JSON_ROUTES = frozenset(
    {"/orchestrate", "/orchestrate/batch", "/detectors", compat.FMS_ROUTE, compat.LITELLM_ROUTE}
)
DESCRIPTION = """Runs AI-safety detectors over content under tenant policies, hands their
native output to the mapper and answers with canonical findings and a decision. Every
failure answers with `ErrorBody {error_code, message, request_id, retryable}`."""


def create_app(
    settings: OrchSettings | None = None,
    *,
    runtime: OrchRuntime | None = None,
    config_file: Path | None = None,
) -> FastAPI:
    if runtime is None:
        settings = settings or load_orch_settings(config_file)
        runtime = build_orch_runtime(settings)
        configure_logging(runtime.shared.settings.observability)
    shared = runtime.shared

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if shared.settings.database.auto_migrate:
            await upgrade(shared.engine)  # the registry and policies live in the database
        if shared.events is not None:
            await shared.events.start()
        if runtime.jobs is not None:
            await runtime.jobs.start()
        yield
        shutdown_tracing(app.state.tracer_provider)
        await runtime.aclose()

    app = FastAPI(
        title="orch",
        version="0.1.0",
        description=DESCRIPTION,
        default_response_class=Response,
        lifespan=lifespan,
    )
    app.state.orch = runtime
    app.state.runtime = shared
    app.state.metrics = shared.metrics
    app.state.guard = RequestGuard(shared)
    max_body = runtime.settings.serving.max_content_kb * 1024
    app.add_middleware(CorrelationMiddleware)
    app.add_middleware(EdgeMiddleware, max_body_bytes=max_body, json_routes=JSON_ROUTES)
    app.add_middleware(MetricsMiddleware, metrics=shared.metrics)
    app.include_router(routes.router)
    app.include_router(jobs.router)
    app.include_router(compat.router)
    install_error_handlers(app, max_body, hide_extra_keys=True)
    observability = shared.settings.observability
    if observability.service_name == "llama-mapper":
        observability = observability.model_copy(update={"service_name": "orch"})
    app.state.tracer_provider = setup_tracing(app, observability)
    return app
