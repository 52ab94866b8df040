"""Projection reads on a REAL streaming replica, and the fall back to the primary.

``scripts/pg_replica.sh start`` runs a primary (5433) and a hot standby made with
``pg_basebackup -R`` (5434) under /tmp; the shared server on 5432 is left alone. Lag is
produced for real by pausing WAL replay on the standby.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool
from tests.audit.store_support import make_event
from tests.servicecheck import require
from typer.testing import CliRunner

from llama_mapper.api.app import create_app
from llama_mapper.audit import EventStore, projections
from llama_mapper.catalog import Catalog
from llama_mapper.cli.main import app as cli
from llama_mapper.config.settings import load_settings
from llama_mapper.runtime import build_runtime
from llama_mapper.service import MapperService
from llama_mapper.storage.db.engine import create_engine
from llama_mapper.storage.db.migrate import upgrade
from llama_mapper.storage.db.replica import ReadRouter, lsn_value, replica_lag

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pg_replica.sh"
PRIMARY = "postgresql+asyncpg://postgres@127.0.0.1:5433/{db}"
STANDBY = "postgresql+asyncpg://postgres@127.0.0.1:5434/{db}"


def test_lag_rules() -> None:
    assert lsn_value("1/0") > lsn_value("0/FFFFFFFF")
    assert replica_lag("0/10", True, "0/10", 100.0) == (0.0, "caught up")
    assert replica_lag("0/10", True, "0/20", None) == (0.0, "caught up")
    assert replica_lag("0/20", True, "0/10", 3.5) == (3.5, "replaying")
    assert replica_lag("0/20", True, None, None) == (math.inf, "nothing replayed yet")
    assert replica_lag("0/20", False, None, None) == (0.0, "not a standby")


@pytest.fixture(scope="module")
def standby_pair() -> None:
    """Start the pair (idempotent); left running for later runs, stopped by the script."""
    try:
        started = subprocess.run(
            [str(SCRIPT), "start"], check=False, capture_output=True, timeout=300
        )
    except (OSError, subprocess.TimeoutExpired):
        started = None
    require(started is not None and started.returncode == 0, "a local primary+standby pair")


async def _admin(port: int, sql: str) -> None:
    engine = create_engine(
        f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres",
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
    )
    try:
        async with engine.connect() as connection:
            await connection.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture
async def database(standby_pair: None) -> AsyncIterator[str]:
    """A fresh database on the primary, migrated, with events; visible on the standby."""
    name = f"test_{secrets.token_hex(6)}"
    await _admin(5433, f'CREATE DATABASE "{name}"')
    primary = create_engine(PRIMARY.format(db=name), poolclass=NullPool)
    try:
        await upgrade(primary)
        await EventStore(primary).append([make_event("a", 1), make_event("a", 2)])
        await primary.dispose()
        await _wait_for_standby(name)
        yield name
    finally:
        await primary.dispose()
        await _admin(5434, "SELECT pg_wal_replay_resume()")  # even if a test failed paused
        await _admin(5433, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _wait_for_standby(name: str) -> None:
    standby = create_engine(STANDBY.format(db=name), poolclass=NullPool)
    try:
        for _ in range(100):
            try:
                async with standby.connect() as connection:
                    count = await connection.execute(text("SELECT count(*) FROM audit_events"))
                    if count.scalar() == 2:
                        return
            except Exception:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError("the standby never caught up")
    finally:
        await standby.dispose()


@pytest.fixture
async def engines(database: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    primary = create_engine(PRIMARY.format(db=database))
    replica = create_engine(STANDBY.format(db=database))
    yield primary, replica
    await primary.dispose()
    await replica.dispose()


async def _in_recovery(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        return bool((await connection.execute(text("SELECT pg_is_in_recovery()"))).scalar())


async def test_projections_are_read_from_a_fresh_replica(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    primary, replica = engines
    router = ReadRouter(primary, replica, max_lag_seconds=5, check_seconds=60)
    chosen = await router.engine()
    assert chosen is replica
    assert await _in_recovery(chosen)  # really the standby answering
    assert router.describe().startswith("ok (lag 0.0 s")
    counts = await router.run(lambda engine: projections.label_counts(engine, "a"))
    assert counts == await projections.label_counts(primary, "a")
    assert {row["events"] for row in counts} == {2}
    await router.engine()
    assert router.probes == 1  # the check is cached for check_seconds


async def test_a_lagging_replica_sends_reads_to_the_primary(
    engines: tuple[AsyncEngine, AsyncEngine], caplog: pytest.LogCaptureFixture
) -> None:
    primary, replica = engines
    router = ReadRouter(primary, replica, max_lag_seconds=0.5, check_seconds=0.01)
    assert await router.engine() is replica
    await _admin(5434, "SELECT pg_wal_replay_pause()")
    await EventStore(primary).append([make_event("a", 3)])
    await asyncio.sleep(1.2)
    with caplog.at_level(logging.WARNING, "llama_mapper.storage.replica"):
        chosen = await router.engine()
    assert chosen is primary
    state = await router.state()
    assert state is not None
    assert not state.usable
    assert state.lag_seconds is not None
    assert state.lag_seconds > 0.5
    assert "lagging" in router.describe()
    assert "reads go to the primary" in caplog.text
    counts = await router.run(lambda engine: projections.position(engine, "a"))
    assert counts == 3  # the primary's answer, not the paused standby's 2
    await _admin(5434, "SELECT pg_wal_replay_resume()")
    for _ in range(50):
        await asyncio.sleep(0.1)
        if await router.engine() is replica:
            break
    assert await router.engine() is replica  # back once it has caught up


async def test_a_replica_that_is_down_sends_reads_to_the_primary(
    engines: tuple[AsyncEngine, AsyncEngine], caplog: pytest.LogCaptureFixture
) -> None:
    primary, _ = engines
    dead = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    router = ReadRouter(primary, dead, check_seconds=60)
    try:
        with caplog.at_level(logging.WARNING, "llama_mapper.storage.replica"):
            assert await router.engine() is primary
            assert await router.run(lambda engine: projections.position(engine, "a")) == 2
            await router.engine()
        assert router.probes == 1
        assert caplog.text.count("read replica unusable") == 1  # once per interval
        assert router.describe().startswith("bypassed, reads on the primary (down (")
    finally:
        await dead.dispose()


@pytest.mark.parametrize("replica_up", [True, False])
async def test_ready_reports_the_replica(
    database: str, state_dir: Path, catalog: Catalog, replica_up: bool
) -> None:
    replica_url = STANDBY.format(db=database) if replica_up else PRIMARY.replace("5433", "1")
    settings = load_settings(
        database={"url": PRIMARY.format(db=database), "replica_url": replica_url}
    )
    runtime = build_runtime(settings, service=MapperService(settings, catalog))
    app = create_app(runtime=runtime)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
            response = await client.get("/ready")
        assert response.status_code == 200  # a bad replica never makes the API unready
        line = response.json()["checks"]["read_replica"]
        assert line.startswith("ok (") if replica_up else line.startswith("bypassed")
    finally:
        await runtime.aclose()


async def test_the_cli_reads_projections_from_the_replica(
    database: str, state_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``mapper audit projections`` with a replica configured answers from it, and from
    the primary (same answer) when the replica is down."""
    for replica in (STANDBY.format(db=database), PRIMARY.replace("5433", "1").format(db="x")):
        config = tmp_path / "mapper.yaml"
        config.write_text(
            f"database:\n  url: {PRIMARY.format(db=database)}\n  replica_url: {replica}\n"
        )
        args = ["audit", "projections", "--tenant", "a", "--json", "--config", str(config)]
        with caplog.at_level(logging.WARNING, "llama_mapper.storage.replica"):
            result = await asyncio.to_thread(CliRunner().invoke, cli, args)
        assert result.exit_code == 0, result.output
        models = json.loads(result.stdout)
        assert (models["position"], models["head_seq"], models["stale"]) == (2, 2, False)
    assert caplog.text.count("read replica unusable") == 1  # only the dead one
