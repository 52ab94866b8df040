"""The server's background shipper: /map never waits on it, outages show in /ready and
metrics (never a 500), and only one worker ships."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from tests.analytics.support import closed_port_url, count, embedded_target
from tests.audit.store_support import make_event, shared_engines

from llama_mapper.analytics import AnalyticsShipper
from llama_mapper.analytics.shipper import PG_SHIP_LOCK
from llama_mapper.api.app import create_app
from llama_mapper.audit import EventStore
from llama_mapper.catalog import Catalog
from llama_mapper.config.settings import AnalyticsSettings, load_settings
from llama_mapper.runtime import Runtime, build_runtime
from llama_mapper.service import MapperService

ONE = {"detector": "presidio", "output": "US_SSN", "tenant_id": "acme"}


@asynccontextmanager
async def serving(
    catalog: Catalog, **analytics: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    settings = load_settings(analytics={"enabled": True, "interval_seconds": 0.1, **analytics})
    runtime = build_runtime(settings, service=MapperService(settings, catalog))
    app = create_app(runtime=runtime)
    async with app.router.lifespan_context(app):  # migrations, writer and shipper start
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
            yield client, runtime


async def _until(condition: Any, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_background_shipping(state_dir: Path, catalog: Catalog) -> None:
    target = embedded_target(state_dir)
    async with serving(catalog) as (client, runtime):
        assert runtime.analytics is not None
        assert (await client.post("/map", json=ONE)).status_code == 200
        batch = {"requests": [ONE, {**ONE, "tenant_id": "beta"}]}
        assert (await client.post("/map/batch", json=batch)).status_code == 200

        async def shipped() -> bool:
            return runtime.analytics is not None and runtime.analytics.health.shipped == 3

        await _until(shipped)
        ready = (await client.get("/ready")).json()
        assert ready["status"] == "ready"
        assert ready["checks"]["analytics"].startswith("ok (chdb, 3 shipped, 0 behind)")
        metrics = (await client.get("/metrics")).text
        assert 'mapper_backend_up{backend="clickhouse"} 1.0' in metrics
        assert "mapper_analytics_shipped_events_total 3.0" in metrics
        assert "mapper_analytics_lag_events 0.0" in metrics
    # The lifespan ended: the shipper let go of the engine's folder.
    assert count(target, "acme") == 2
    assert count(target, "beta") == 1


@pytest.mark.parametrize("required", [False, True])
async def test_clickhouse_down_never_fails_a_mapping(
    state_dir: Path, catalog: Catalog, caplog: pytest.LogCaptureFixture, required: bool
) -> None:
    caplog.set_level(logging.WARNING, logger="llama_mapper.analytics")
    url = closed_port_url()
    async with serving(catalog, url=url, required=required, interval_seconds=3600) as (
        client,
        runtime,
    ):
        shipper = runtime.analytics
        assert shipper is not None
        for _ in range(3):
            assert (await client.post("/map", json=ONE)).status_code == 200
        assert runtime.events is not None
        await _until(_written(runtime, 3))
        caplog.clear()
        assert await shipper.run_once() is None
        records = [r for r in caplog.records if r.name == "llama_mapper.analytics"]
        assert len(records) == 1  # one line per pass, not per event or tenant
        assert "events wait in the chain" in records[0].getMessage()
        ready = await client.get("/ready")
        assert ready.status_code == (503 if required else 200)
        check = ready.json()["checks"]["analytics"]
        assert check.startswith("down (clickhouse: ClickHouse at http://127.0.0.1:")
        assert check.endswith("3 events wait in the chain)")
        metrics = (await client.get("/metrics")).text
        assert 'mapper_backend_up{backend="clickhouse"} 0.0' in metrics
        assert "mapper_analytics_failed_passes_total" in metrics
        assert (await client.post("/map", json=ONE)).status_code == 200
    assert "Traceback" not in caplog.text


def _written(runtime: Runtime, n: int) -> Any:
    async def check() -> bool:
        return runtime.events is not None and runtime.events.stats().written >= n

    return check


async def test_only_one_worker_ships(state_dir: Path, catalog: Catalog) -> None:
    async with serving(catalog, interval_seconds=3600) as (client, runtime):
        first = runtime.analytics
        assert first is not None
        assert (await client.post("/map", json=ONE)).status_code == 200
        await _until(_written(runtime, 1))
        # A second worker on this host: same lease file, its own process state.
        second = AnalyticsShipper(
            runtime.engine, first.target, first.settings, lease_file=first.lease_file
        )
        assert await second.run_once() is None
        assert second.health.describe("chdb") == (
            "standby (chdb: another worker on this host ships)"
        )
        report = await first.run_once()  # the first worker took the lease at start-up
        assert report is not None
        assert report.shipped == {"acme": 1}
        ready = (await client.get("/ready")).json()
        assert ready["checks"]["analytics"].startswith("ok (chdb, 1 shipped")
        await first.stop()  # the shipping worker goes away: the other one takes over
        assert (await client.post("/map", json=ONE)).status_code == 200
        await _until(_written(runtime, 2))
        taken_over = await second.run_once()
        assert taken_over is not None
        assert taken_over.shipped == {"acme": 1}
        await second.stop()


async def test_one_replica_ships_on_postgresql(tmp_path: Path) -> None:
    """Replicas on several hosts share no lease file: a PostgreSQL advisory lock decides."""
    async with shared_engines("postgresql", tmp_path, 2) as (other_replica, this_replica):
        await EventStore(other_replica).append([make_event("acme", n) for n in range(1, 4)])
        shipper = AnalyticsShipper(
            this_replica,
            embedded_target(tmp_path),
            AnalyticsSettings(),
            lease_file=tmp_path / "ship.lock",
        )
        async with other_replica.connect() as connection:
            key = {"k": PG_SHIP_LOCK}
            assert await connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), key)
            assert await shipper.run_once() is None
            assert (shipper.health.state, shipper.health.reason) == (
                "standby",
                "another replica ships",
            )
            await connection.execute(text("SELECT pg_advisory_unlock(:k)"), key)
            await connection.commit()
        report = await shipper.run_once()
        assert report is not None
        assert report.shipped == {"acme": 3}
        assert shipper.health.state == "ok"
