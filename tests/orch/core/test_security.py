"""The mapper's API keys, tenant binding, rate limits and scopes guard orch's routes."""

from __future__ import annotations

import pytest
from tests.orch.core.conftest import TinyPhoneDetector, api, bundle_yaml, submit_active


@pytest.fixture
def secured(monkeypatch: pytest.MonkeyPatch, orch_env) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LLAMA_MAPPER_AUTH__ENABLED", "true")
    monkeypatch.setenv("LLAMA_MAPPER_RATE_LIMIT__PER_KEY__RATE", "1")
    monkeypatch.setenv("LLAMA_MAPPER_RATE_LIMIT__PER_KEY__PERIOD_SECONDS", "600")


async def test_keys_tenants_scopes_and_limits(secured, make_runtime) -> None:
    async with make_runtime(builtins={"tiny-phone": TinyPhoneDetector}) as runtime:
        assert runtime.shared.auth is not None
        await submit_active(runtime, "acme", bundle_yaml("p", ["tiny-phone"]))
        _, writer = await runtime.shared.auth.create_key("acme", ["map:write"], None)
        _, admin = await runtime.shared.auth.create_key("acme", ["admin"], None)
        request = {"content": "hi", "tenant_id": "acme", "policy_bundle": "p"}
        async with api(runtime) as http:
            anonymous = await http.post("/orchestrate", json=request)
            other = await http.post(
                "/orchestrate",
                json={**request, "tenant_id": "globex"},
                headers={"Authorization": f"Bearer {writer}"},
            )
            ok = await http.post(
                "/orchestrate", json=request, headers={"Authorization": f"Bearer {writer}"}
            )
            limited = await http.post(
                "/orchestrate", json=request, headers={"Authorization": f"Bearer {writer}"}
            )
            not_admin = await http.post(
                "/detectors",
                json={"name": "x", "kind": "fms", "endpoint": "http://127.0.0.1:1", "pack": "p"},
                headers={"Authorization": f"Bearer {writer}"},
            )
            added = await http.post(
                "/detectors",
                json={"name": "x", "kind": "fms", "endpoint": "http://127.0.0.1:1", "pack": "p"},
                headers={"Authorization": f"Bearer {admin}"},
            )
            duplicate = await http.post(
                "/detectors",
                json={"name": "x", "kind": "fms", "endpoint": "http://127.0.0.1:1", "pack": "p"},
                headers={"Authorization": f"Bearer {admin}"},
            )
            removed = await http.delete(
                "/detectors/x", headers={"Authorization": f"Bearer {admin}"}
            )
            gone = await http.delete("/detectors/x", headers={"Authorization": f"Bearer {admin}"})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert other.status_code == 403
    assert other.json()["error_code"] == "TENANT_MISMATCH"
    assert ok.status_code == 200
    assert ok.headers["ratelimit-limit"] == "1"
    assert limited.status_code == 429  # one request per key and period
    assert limited.json()["error_code"] == "RATE_LIMITED"
    assert not_admin.status_code == 403
    assert added.status_code == 201
    assert added.json()["auth_secret"] is None
    assert duplicate.status_code == 409
    assert removed.status_code == 204
    assert gone.status_code == 404
