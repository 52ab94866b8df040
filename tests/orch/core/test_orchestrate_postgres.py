"""One orchestration with the registry and the policies in real PostgreSQL."""

from __future__ import annotations

from tests.orch.core.conftest import api, bundle_yaml, fms_spec, submit_active


async def test_orchestrates_with_postgres_state(make_runtime, detectors, pg_url: str) -> None:
    async with make_runtime(database_url=pg_url) as runtime:
        assert runtime.shared.engine.dialect.name == "postgresql"
        await runtime.registry.add(fms_spec("pii-a", detectors.set("pii-a")))
        runtime.catalog.invalidate()
        await submit_active(runtime, "acme", bundle_yaml("p", ["pii-a"]))
        async with api(runtime) as http:
            response = await http.post(
                "/orchestrate",
                json={"content": "x jane@example.com", "tenant_id": "acme", "policy_bundle": "p"},
            )
            listed = await http.get("/detectors")
    assert response.status_code == 200
    assert response.json()["decision"] == "redact"
    assert response.json()["policy"] == {"bundle": "p", "version": "1"}
    assert [d["name"] for d in listed.json()["detectors"]] == ["pii-a"]
