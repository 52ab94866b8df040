"""POST /orchestrate/batch: items validated and orchestrated one by one, errors per item."""

from __future__ import annotations

from tests.orch.core.conftest import TinyPhoneDetector, api, bundle_yaml, fms_spec, submit_active

CANARY = "+14155550188"


async def test_a_batch_mixes_answers_and_item_errors(make_runtime, detectors) -> None:
    async with make_runtime(
        builtins={"tiny-phone": TinyPhoneDetector}, serving={"max_batch_items": 5}
    ) as runtime:
        await runtime.registry.add(fms_spec("down", detectors.set("down", "fail"), retries=0))
        runtime.catalog.invalidate()
        await submit_active(runtime, "acme", bundle_yaml("p", ["tiny-phone"]))
        await submit_active(runtime, "acme", bundle_yaml("dead", ["down"]))
        items = [
            {"content": f"call {CANARY}", "tenant_id": "acme", "policy_bundle": "p"},
            {"content": "hello", "tenant_id": "acme", "policy_bundle": "p"},
            {"content": CANARY, "tenant_id": "acme", "policy_bundle": "dead"},
            {"content": CANARY, "tenant_id": "acme", CANARY.strip("+"): True},
            {"content": CANARY, "tenant_id": "acme", "policy_bundle": "nope"},
        ]
        async with api(runtime) as http:
            response = await http.post("/orchestrate/batch", json={"requests": items})
            too_many = await http.post("/orchestrate/batch", json={"requests": items * 2})
            empty = await http.post("/orchestrate/batch", json={"requests": []})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["succeeded"], body["failed"]) == (2, 3)
    first, second, dead, invalid, unknown = body["results"]
    assert first["decision"] == "redact"
    assert first["redacted_content"] == "call [REDACTED:PII.Contact.Phone]"
    assert first["request_id"].endswith(".0")
    assert second["decision"] == "allow"
    assert dead["error"]["error_code"] == "ALL_DETECTORS_UNAVAILABLE"
    assert invalid["error"]["error_code"] == "INVALID_REQUEST"
    assert "<field>" in invalid["error"]["message"]
    assert unknown["error"]["error_code"] == "POLICY_NOT_FOUND"
    assert CANARY not in str([r.get("error") for r in body["results"]])
    assert response.headers["cache-control"] == "no-store"
    assert too_many.status_code == 422
    assert too_many.json()["error_code"] == "BATCH_TOO_LARGE"
    assert empty.status_code == 422
