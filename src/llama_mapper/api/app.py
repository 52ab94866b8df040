"""Application factory: wires settings, reference data and the service into FastAPI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from llama_mapper import __version__
from llama_mapper.api.guard import RequestGuard
from llama_mapper.api.middleware import BODY_TOO_LARGE, EdgeMiddleware, too_large
from llama_mapper.api.responses import error_response
from llama_mapper.api.routes import health, map_routes
from llama_mapper.config.settings import Settings, load_settings
from llama_mapper.errors import (
    InvalidJSON,
    InvalidRequest,
    MapperError,
    describe_validation_errors,
)
from llama_mapper.observability.logging import CorrelationMiddleware, configure_logging
from llama_mapper.observability.metrics import MetricsMiddleware
from llama_mapper.observability.tracing import setup_tracing, shutdown_tracing
from llama_mapper.runtime import Runtime, build_runtime
from llama_mapper.service import MapperService, validation_message
from llama_mapper.storage.db.migrate import upgrade
from llama_mapper.storage.unmapped_file import UnmappedFile

DESCRIPTION = """Normalizes AI-safety detector output into one canonical taxonomy with
calibrated scores and maps it to compliance controls. Every failure answers with the same
`ErrorBody {error_code, message, request_id, retryable}`."""


def create_app(
    settings: Settings | None = None,
    *,
    service: MapperService | None = None,
    runtime: Runtime | None = None,
    config_file: Path | None = None,
) -> FastAPI:
    if runtime is None:
        settings = settings or load_settings(config_file)
        configure_logging(settings.observability)
        runtime = build_runtime(settings, service=service, config_file=config_file)
    service = runtime.service

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime.uses_database and runtime.settings.database.auto_migrate:
            await upgrade(runtime.engine)  # locked: concurrent workers migrate once
        if runtime.writer_process is not None:
            await runtime.writer_process.start()  # spawned and ready before traffic
        if runtime.events is not None:
            await runtime.events.start()
        if runtime.analytics is not None:
            await runtime.analytics.start()  # ships the committed chain in the background
        if runtime.anchor_scheduler is not None:
            await runtime.anchor_scheduler.start()  # a no-op when another worker anchored
        if runtime.retention is not None:
            runtime.retention.start()
        preload = _preload_learned_tier(service)
        yield
        if preload is not None:
            await preload  # a load still running must not outlive the runtime
        # Keep what no tier could map, for `mapper detectors fix`, across restarts.
        unmapped = UnmappedFile.in_state_dir(service.settings.state_dir)
        unmapped.add(service.engine.unmapped.drain())
        shutdown_tracing(app.state.tracer_provider)
        await runtime.aclose()

    app = FastAPI(
        title="llama-mapper",
        version=__version__,
        description=DESCRIPTION,
        default_response_class=Response,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.service = service
    app.state.metrics = runtime.metrics
    app.state.guard = RequestGuard(runtime)
    max_body = service.settings.serving.max_payload_kb * 1024
    # Starlette wraps in reverse order: metrics outermost (sees every answer, 413s too),
    # then the edge checks that assign the request id, then correlation ids for logs.
    app.add_middleware(CorrelationMiddleware)
    app.add_middleware(
        EdgeMiddleware, max_body_bytes=max_body, json_routes=frozenset({"/map", "/map/batch"})
    )
    app.add_middleware(MetricsMiddleware, metrics=runtime.metrics)
    app.include_router(map_routes.router)
    app.include_router(health.router)
    install_error_handlers(app, max_body, hide_extra_keys=True)
    app.state.tracer_provider = setup_tracing(app, runtime.settings.observability)
    if runtime.auth is None:
        _drop_security_from_openapi(app)
    return app


def _preload_learned_tier(service: MapperService) -> asyncio.Future[object] | None:
    """Load the learned tier's model in a thread while traffic starts.

    Mapping runs on the event loop, so a model loaded on demand stalls every request for the
    seconds the load takes; loaded here, only requests that need it before it is ready wait.
    """
    load = getattr(service.engine.learned, "load", None)
    if not service.settings.learned.preload or not callable(load):
        return None
    return asyncio.ensure_future(asyncio.to_thread(load))


def _drop_security_from_openapi(app: FastAPI) -> None:
    """With auth off the spec must not promise 401s: it describes this deployment."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.pop("security", None)
                    operation.get("responses", {}).pop("401", None)
            schema.get("components", {}).pop("securitySchemes", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def request_id_of(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", "unknown"))


def install_error_handlers(app: FastAPI, max_body: int, *, hide_extra_keys: bool = False) -> None:
    """The ErrorBody handlers; the orchestration service installs the same ones, hiding
    even identifier-shaped invented keys (see describe_validation_errors)."""

    @app.exception_handler(MapperError)
    async def mapper_error(request: Request, exc: MapperError) -> Response:
        return error_response(exc, request_id_of(request))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        if any(err.get("type") == "json_invalid" for err in exc.errors()):
            error: MapperError = InvalidJSON("request body is not valid JSON")
        else:
            error = InvalidRequest(_validation_summary(exc, hide_extra_keys))
        return error_response(error, request_id_of(request))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.scope.get("state", {}).get(BODY_TOO_LARGE):
            return error_response(too_large(max_body), request_id_of(request))
        error = _http_error(exc)
        headers = (
            {"Allow": exc.headers["Allow"]} if exc.headers and "Allow" in exc.headers else None
        )
        return error_response(error, request_id_of(request), headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # A bug, not the client's fault. The message stays generic: exception text may
        # quote request data.
        error = MapperError("internal error; the request id identifies it in the server log")
        error.status, error.error_code, error.retryable = 500, "INTERNAL_ERROR", True
        return error_response(error, request_id_of(request))


def _http_error(exc: StarletteHTTPException) -> MapperError:
    codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 400: "BAD_REQUEST"}
    error = MapperError(str(exc.detail) if exc.status_code in codes else "request failed")
    error.status = exc.status_code
    error.error_code = codes.get(exc.status_code, "HTTP_ERROR")
    return error


def _validation_summary(exc: RequestValidationError, hide_extra_keys: bool = False) -> str:
    return describe_validation_errors(exc.errors(), hide_extra_keys=hide_extra_keys)


__all__ = ["create_app", "validation_message"]
