"""``POST /detectors/health``: the API's registry health probe (what ``orch registry
health`` does), against real loopback detector servers, recorded in the database."""

from __future__ import annotations

from tests.orch.core.conftest import TinyPhoneDetector, api, fms_spec


async def test_probe_records_health_of_registered_detectors(make_runtime, detectors) -> None:
    async with make_runtime(builtins={"tiny-phone": TinyPhoneDetector}) as runtime:
        await runtime.registry.add(fms_spec("h-ok", detectors.set("h-ok")))
        await runtime.registry.add(fms_spec("h-bad", detectors.set("h-bad", "fail")))
        runtime.catalog.invalidate()
        async with api(runtime) as http:
            probed = await http.post("/detectors/health")
            listed = (await http.get("/detectors")).json()["detectors"]
    assert probed.status_code == 200
    body = probed.json()
    assert body["healthy"] is False
    rows = {row["name"]: row for row in body["detectors"]}
    assert {name: row["health"] for name, row in rows.items()} == {
        "h-bad": "unhealthy",
        "h-ok": "healthy",
        "tiny-phone": "healthy",
    }
    assert rows["h-bad"]["error"]  # the status, never a response body
    assert rows["tiny-phone"]["source"] == "builtin"
    assert rows["tiny-phone"]["version"] == "test@1"
    recorded = {row["name"]: row for row in listed if row["source"] == "registry"}
    assert recorded["h-ok"]["health"] == "healthy"
    assert recorded["h-bad"]["health"] == "unhealthy"
    assert recorded["h-ok"]["health_checked_at"] is not None
    # The probe text is fixed: the servers saw nothing else.
    assert detectors.bodies
    assert all(sent["contents"] == ["orch health probe"] for sent in detectors.bodies)
