"""Tracing: spans for requests and tiers when on, a shared no-op when off."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
import structlog
from fastapi import FastAPI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from starlette.responses import PlainTextResponse, Response

from llama_mapper.config.settings import ObservabilitySettings
from llama_mapper.observability import logging as mapper_logging
from llama_mapper.observability.tracing import (
    SpanHandle,
    safe_attributes,
    setup_tracing,
    shutdown_tracing,
    span,
    tracing_enabled,
)

PROSE = "the quick brown fox told me its home address"


@pytest.fixture(autouse=True)
def _tracing_off_after() -> Iterator[None]:
    yield
    shutdown_tracing(None)


def traced_app() -> FastAPI:
    app = FastAPI()

    @app.post("/map")
    async def map_route() -> Response:
        with span(
            "mapper.rules",
            detector="presidio",
            labels=2,
            ratio=0.5,
            cached=False,
            label="PII.Identifier.SSN",
            note=PROSE,
            contact="jane@example.com",
            nested={"a": 1},
            items=[1, 2],
            nan=float("nan"),
            **{"Bad Key": 1},
        ) as current:
            current.set(found=3, text=PROSE)
        return PlainTextResponse("ok")

    @app.get("/logs")
    async def logs() -> Response:
        with span("mapper.inner"):
            mapper_logging.get_logger("llama_mapper.test").info("inside")
        return PlainTextResponse("ok")

    @app.post("/fail")
    async def fail() -> Response:
        with span("mapper.model"):
            raise RuntimeError("tier failed")

    @app.get("/health")
    async def health() -> Response:
        return PlainTextResponse("ok")

    return app


async def test_request_and_tier_spans_with_filtered_attributes() -> None:
    app = traced_app()
    exporter = InMemorySpanExporter()
    provider = setup_tracing(
        app, ObservabilitySettings(service_name="mapper-test"), exporter=exporter
    )
    assert provider is not None
    assert tracing_enabled()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        assert (await http.post("/map?q=jane@example.com")).status_code == 200
        assert (await http.get("/health")).status_code == 200
        assert (await http.post("/fail")).status_code == 500
    provider.force_flush()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert "mapper.rules" in spans
    assert "POST /map" in spans
    assert not any("health" in name for name in spans)
    rules, server = spans["mapper.rules"], spans["POST /map"]
    assert rules.context.trace_id == server.context.trace_id
    assert rules.parent is not None
    assert rules.parent.span_id == server.context.span_id
    assert dict(rules.attributes or {}) == {
        "detector": "presidio",
        "labels": 2,
        "ratio": 0.5,
        "cached": False,
        "label": "PII.Identifier.SSN",
        "found": 3,
    }
    assert server.resource.attributes["service.name"] == "mapper-test"
    assert "jane" not in str(dict(server.attributes or {}))
    model = spans["mapper.model"]
    assert model.status.status_code is StatusCode.ERROR
    shutdown_tracing(provider)
    assert not tracing_enabled()


async def test_sampling_ratio_zero_exports_nothing() -> None:
    app = traced_app()
    exporter = InMemorySpanExporter()
    provider = setup_tracing(app, ObservabilitySettings(trace_sample_ratio=0.0), exporter=exporter)
    assert provider is not None
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        await http.post("/map")
    provider.force_flush()
    assert exporter.get_finished_spans() == ()


def test_off_by_default_and_span_is_a_shared_noop() -> None:
    app = traced_app()
    assert setup_tracing(app, ObservabilitySettings()) is None
    assert not tracing_enabled()
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
    first = span("mapper.rules", detector="presidio", note=PROSE)
    assert first is span("mapper.parse")
    assert type(first) is SpanHandle
    assert not first.recording
    with first as handle:
        handle.set(found=1)
    with pytest.raises(KeyError), span("mapper.rules"):
        raise KeyError("errors pass through the no-op")


def test_otlp_endpoint_turns_tracing_on() -> None:
    app = traced_app()
    provider = setup_tracing(
        app, ObservabilitySettings(otlp_endpoint="http://127.0.0.1:9/v1/traces")
    )
    assert provider is not None
    assert tracing_enabled()
    assert getattr(app, "_is_instrumented_by_opentelemetry", False)
    shutdown_tracing(provider)  # nothing was recorded: no export is attempted


def test_safe_attributes() -> None:
    assert safe_attributes(
        {
            "detector": "openai-moderation",
            "count": 3,
            "score": 0.9,
            "inf": float("inf"),
            "ok": True,
            "email": "a@b.co",
            "long": "x" * 65,
            "spaces": "two words",
            "none": None,
            "Upper": 1,
        }
    ) == {"detector": "openai-moderation", "count": 3, "score": 0.9, "ok": True}


async def test_log_lines_carry_the_trace_id() -> None:
    app = traced_app()
    exporter = InMemorySpanExporter()
    provider = setup_tracing(app, ObservabilitySettings(), exporter=exporter)
    assert provider is not None
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    mapper_logging.configure_logging(ObservabilitySettings(), stream=stream)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            await http.get("/logs")
    finally:
        for handler in list(root.handlers):
            if isinstance(handler, mapper_logging._MapperHandler):
                root.removeHandler(handler)
        root.setLevel(level)
        structlog.reset_defaults()
    provider.force_flush()
    inner = next(s for s in exporter.get_finished_spans() if s.name == "mapper.inner")
    line = json.loads(stream.getvalue().splitlines()[0])
    assert line["trace_id"] == format(inner.context.trace_id, "032x")
    assert line["span_id"] == format(inner.context.span_id, "016x")
