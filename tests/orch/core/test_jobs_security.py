"""Jobs are tenant-scoped by the API key: another tenant's job is unknown to it."""

from __future__ import annotations

import pytest
from tests.orch.core.conftest import TinyPhoneDetector, api, bundle_yaml, submit_active
from tests.orch.core.jobs_support import wait_for_job


@pytest.fixture
def secured(monkeypatch: pytest.MonkeyPatch, orch_env) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LLAMA_MAPPER_AUTH__ENABLED", "true")


async def test_a_tenant_sees_and_cancels_only_its_own_jobs(secured, make_runtime) -> None:
    async with make_runtime(builtins={"tiny-phone": TinyPhoneDetector}) as runtime:
        auth = runtime.shared.auth
        assert auth is not None
        await submit_active(runtime, "acme", bundle_yaml("p", ["tiny-phone"]))
        _, acme = await auth.create_key("acme", ["map:write", "map:read"], None)
        _, acme_reader = await auth.create_key("acme", ["map:read"], None)
        _, globex = await auth.create_key("globex", ["map:write", "map:read"], None)
        _, globex_admin = await auth.create_key("globex", ["admin"], None)

        def bearer(key: str, **extra: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {key}", **extra}

        request = {"content": "call +14155550123", "tenant_id": "acme", "policy_bundle": "p",
                   "processing_mode": "async"}  # fmt: skip
        async with api(runtime) as http:
            anonymous = await http.post("/orchestrate", json=request)
            accepted = await http.post("/orchestrate", json=request, headers=bearer(acme))
            job_id = accepted.json()["job_id"]
            own = await wait_for_job(http, job_id, {"succeeded"}, headers=bearer(acme_reader))
            answers = {
                "anonymous read": await http.get(f"/jobs/{job_id}"),
                "other tenant read": await http.get(f"/jobs/{job_id}", headers=bearer(globex)),
                "other admin read": await http.get(f"/jobs/{job_id}", headers=bearer(globex_admin)),
                "claimed tenant": await http.get(
                    f"/jobs/{job_id}", headers=bearer(globex, **{"X-Tenant-Id": "acme"})
                ),
                "other tenant cancel": await http.delete(f"/jobs/{job_id}", headers=bearer(globex)),
                "reader cancel": await http.delete(f"/jobs/{job_id}", headers=bearer(acme_reader)),
                "own cancel": await http.delete(f"/jobs/{job_id}", headers=bearer(acme)),
            }
    assert anonymous.status_code == 401
    assert accepted.status_code == 202
    assert own["tenant_id"] == "acme"
    assert own["result"]["redacted_content"] == "call [REDACTED:PII.Contact.Phone]"
    expected = {
        "anonymous read": (401, "INVALID_API_KEY"),
        "other tenant read": (404, "JOB_NOT_FOUND"),
        "other admin read": (404, "JOB_NOT_FOUND"),
        "claimed tenant": (403, "TENANT_MISMATCH"),
        "other tenant cancel": (404, "JOB_NOT_FOUND"),
        "reader cancel": (403, "INSUFFICIENT_SCOPE"),
        "own cancel": (409, "JOB_ALREADY_FINISHED"),
    }
    for name, (status, code) in expected.items():
        response = answers[name]
        assert response.status_code == status, (name, response.text)
        assert response.json()["error_code"] == code, (name, response.text)
        assert "4155550123" not in response.text
    # Unknown and foreign jobs answer the same: nothing tells them apart.
    unknown = answers["other tenant read"].json()
    assert unknown["message"] == "no such job"
