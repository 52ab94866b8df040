"""OpenTelemetry traces: off (and free) unless an OTLP endpoint is configured.

Spans leave the process, often to a third-party backend, so what they carry is held to
the same rule as logs and metrics: identifiers, counts and timings, never content.
:func:`span` enforces that on its attributes instead of trusting each call site.
"""

from __future__ import annotations

import math
import re
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any

from llama_mapper import __version__
from llama_mapper.config.settings import ObservabilitySettings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

#: Requests probes and scrapers make every few seconds: tracing them is noise and cost.
EXCLUDED_URLS = "health,ready,metrics"
MAX_STRING_ATTRIBUTE = 64
_SAFE_STRING = re.compile(r"[A-Za-z0-9._:/-]{0,64}")
_SAFE_KEY = re.compile(r"[a-z][a-z0-9_.]{0,63}")


class _State:
    """Module state in an object, so enabling tracing needs no ``global`` statement."""

    tracer: Tracer | None = None


_state = _State()


def safe_attributes(attributes: dict[str, Any]) -> dict[str, bool | int | float | str]:
    """Keep numbers, booleans and short identifier-like strings; drop everything else.

    A detector name or a canonical label passes; a sentence, an email address (no ``@``)
    or a nested structure does not. Dropping rather than raising keeps a careless
    attribute from failing a request.
    """
    safe: dict[str, bool | int | float | str] = {}
    for key, value in attributes.items():
        if not _SAFE_KEY.fullmatch(key):
            continue
        if isinstance(value, bool | int):
            safe[key] = value
        elif isinstance(value, float):
            if math.isfinite(value):
                safe[key] = value
        elif isinstance(value, str) and _SAFE_STRING.fullmatch(value):
            safe[key] = value
    return safe


class SpanHandle:
    """What ``with span(...) as s`` gives: ``s.set(...)`` adds attributes found later.

    This base class is the no-op used while tracing is off: one shared instance, no
    allocation beyond the call's keyword dict.
    """

    __slots__ = ()

    recording = False

    def __enter__(self) -> SpanHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    def set(self, **attributes: Any) -> None:
        return None


_NOOP = SpanHandle()


class _LiveSpan(SpanHandle):
    __slots__ = ("_attributes", "_cm", "_name", "_span", "_tracer")

    recording = True

    def __init__(self, tracer: Tracer, name: str, attributes: dict[str, Any]) -> None:
        self._tracer = tracer
        self._name = name
        self._attributes = attributes
        self._cm: AbstractContextManager[Span] | None = None
        self._span: Span | None = None

    def __enter__(self) -> SpanHandle:
        self._cm = self._tracer.start_as_current_span(self._name, attributes=self._attributes)
        self._span = self._cm.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._cm is not None:
            self._cm.__exit__(exc_type, exc, traceback)

    def set(self, **attributes: Any) -> None:
        if self._span is not None:
            self._span.set_attributes(safe_attributes(attributes))


def span(name: str, **attributes: Any) -> SpanHandle:
    """A child span of the current request span, or a shared no-op when tracing is off.

    ``name`` must be a constant from code (``"mapper.rules"``); attributes are filtered by
    :func:`safe_attributes`.
    """
    tracer = _state.tracer
    if tracer is None:
        return _NOOP
    return _LiveSpan(tracer, name, safe_attributes(attributes))


def tracing_enabled() -> bool:
    return _state.tracer is not None


def setup_tracing(
    app: FastAPI,
    settings: ObservabilitySettings,
    *,
    exporter: SpanExporter | None = None,
) -> TracerProvider | None:
    """Instrument ``app`` and enable :func:`span` when an OTLP endpoint is configured.

    Returns the provider (call :func:`shutdown_tracing` with it on shutdown, to flush),
    or ``None`` when tracing is off, in which case nothing is imported or installed.
    ``exporter`` replaces the OTLP exporter (tests use an in-memory one).

    The provider is not made the global one: a process-wide provider can be set only
    once, and tests or embedders may build several apps.
    """
    if exporter is None and not settings.otlp_endpoint:
        return None
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint)
    resource = Resource.create(
        {"service.name": settings.service_name, "service.version": __version__}
    )
    provider = TracerProvider(
        resource=resource, sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_ratio))
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=EXCLUDED_URLS,
        server_request_hook=_redact_query,
        # One span per request, not one per ASGI message.
        exclude_spans=["receive", "send"],
    )
    _state.tracer = provider.get_tracer("llama_mapper", __version__)
    return provider


#: URL attributes the ASGI instrumentation records in full; queries are client data.
_URL_ATTRIBUTES = ("http.url", "url.full")
_QUERY_ATTRIBUTES = ("url.query",)


def _redact_query(span: Any, scope: Any) -> None:
    """Server-request hook: strips query strings from the request span's URL attributes.

    The API takes no query parameters, so a query is either noise or something a client
    should not have put in a URL; either way it has no business in a trace backend.
    """
    attributes = getattr(span, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        url = attributes.get(key)
        if isinstance(url, str) and "?" in url:
            span.set_attribute(key, url.split("?", 1)[0])
    for key in _QUERY_ATTRIBUTES:
        if attributes.get(key):
            span.set_attribute(key, "[redacted]")


def shutdown_tracing(provider: TracerProvider | None) -> None:
    """Flush pending spans and turn :func:`span` back into a no-op."""
    _state.tracer = None
    if provider is not None:
        provider.shutdown()
