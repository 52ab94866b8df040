"""The mapper over HTTP (ORCH_MAPPER__URL) with llama_mapper.client, a real mapper API on
loopback; and what orch answers when that mapper is down."""

from __future__ import annotations

from tests.orch.core.conftest import bundle_yaml, fms_spec, submit_active
from tests.orch.core.servers import serve

from detector_orchestration.config import OrchSettings
from detector_orchestration.mapper_client import HttpMapper
from detector_orchestration.schemas import OrchestrateRequest
from llama_mapper.api.app import create_app as create_mapper_app
from llama_mapper.config.settings import load_settings


async def test_orchestrates_through_a_remote_mapper(make_runtime, detectors, tmp_path) -> None:
    mapper_state = tmp_path / "mapper-state"
    mapper_app = create_mapper_app(load_settings(state_dir=mapper_state))
    with serve(mapper_app) as mapper_url:
        async with make_runtime(mapper_link={"url": mapper_url}) as runtime:
            assert isinstance(runtime.mapper, HttpMapper)
            await runtime.registry.add(fms_spec("pii-a", detectors.set("pii-a")))
            runtime.catalog.invalidate()
            await submit_active(runtime, "acme", bundle_yaml("p", ["pii-a"]))
            outcome = await runtime.orchestrator.orchestrate(
                OrchestrateRequest(content="to a@b.io", tenant_id="acme", policy_bundle="p")
            )
    assert outcome.body["decision"] == "redact"
    assert outcome.body["mapping"]["pii-a"]["provenance"]["route"] == "/map"
    assert outcome.body["findings"][0]["label"] == "PII.Contact.Email"


async def test_a_mapper_that_is_down_answers_503(make_runtime, detectors) -> None:
    from tests.orch.core.conftest import api

    async with make_runtime(mapper_link={"url": "http://127.0.0.1:9"}) as runtime:
        await runtime.registry.add(fms_spec("pii-a", detectors.set("pii-a")))
        runtime.catalog.invalidate()
        await submit_active(runtime, "acme", bundle_yaml("p", ["pii-a"]))
        async with api(runtime) as http:
            response = await http.post(
                "/orchestrate",
                json={"content": "a@b.io", "tenant_id": "acme", "policy_bundle": "p"},
            )
    assert response.status_code == 503
    assert response.json()["error_code"] == "BACKEND_UNAVAILABLE"
    assert response.json()["retryable"] is True


def test_the_mapper_url_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("ORCH_MAPPER__URL", "http://mapper.internal:8000")
    monkeypatch.setenv("ORCH_EXECUTOR__DEADLINE_MS", "750")
    settings = OrchSettings()
    assert settings.mapper.url == "http://mapper.internal:8000"
    assert settings.executor.deadline_ms == 750
