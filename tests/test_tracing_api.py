"""A traced /map request: the server span and the mapper's own parse/rules/guard spans."""

from __future__ import annotations

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llama_mapper.api.app import create_app
from llama_mapper.observability.tracing import setup_tracing, shutdown_tracing
from llama_mapper.service import MapperService


async def test_map_request_produces_tier_spans(service: MapperService) -> None:
    app = create_app(service.settings, service=service)
    exporter = InMemorySpanExporter()
    provider = setup_tracing(app, service.settings.observability, exporter=exporter)
    assert provider is not None
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
            output = "US_SSN|alice@example.com"
            payload = {"detector": "presidio", "output": output, "tenant_id": "t"}
            assert (await client.post("/map", json=payload)).status_code == 200
        provider.force_flush()
    finally:
        shutdown_tracing(provider)
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert {"mapper.guard", "mapper.parse", "mapper.rules"} <= set(spans)
    assert any(name.startswith("POST /map") for name in spans)
    rules = spans["mapper.rules"]
    assert rules.attributes is not None
    assert rules.attributes["detector"] == "presidio"
    assert rules.attributes["labels"] == 2
    parent = spans["mapper.parse"].parent
    assert parent is not None  # a child of the request span
    text = str([dict(s.attributes or {}) for s in spans.values()])
    assert "alice@example.com" not in text
