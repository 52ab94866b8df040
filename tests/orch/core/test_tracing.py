"""A traced /orchestrate request: orch's own spans under the request span, no content."""

from __future__ import annotations

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.orch.core.conftest import TinyPhoneDetector, bundle_yaml, submit_active

from detector_orchestration.api.app import create_app
from llama_mapper.observability.tracing import setup_tracing, shutdown_tracing


async def test_orchestrate_produces_spans_without_content(make_runtime) -> None:
    async with make_runtime(builtins={"tiny-phone": TinyPhoneDetector}) as runtime:
        await submit_active(runtime, "acme", bundle_yaml("p", ["tiny-phone"]))
        app = create_app(runtime=runtime)
        exporter = InMemorySpanExporter()
        provider = setup_tracing(app, runtime.shared.settings.observability, exporter=exporter)
        assert provider is not None
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://o") as client:
                body = {"content": "call +14155550123", "tenant_id": "acme", "policy_bundle": "p"}
                assert (await client.post("/orchestrate", json=body)).status_code == 200
            provider.force_flush()
        finally:
            shutdown_tracing(provider)
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert {"orch.detectors", "orch.mapping", "orch.decision", "mapper.rules"} <= set(spans)
    decision = spans["orch.decision"].attributes or {}
    assert decision["decision"] == "redact"
    assert decision["engine"] == "rules"
    assert (spans["orch.detectors"].attributes or {})["detectors"] == 1
    assert spans["orch.mapping"].parent is not None
    assert "4155550123" not in str([dict(s.attributes or {}) for s in spans.values()])
