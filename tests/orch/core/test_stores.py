"""The policy store's lifecycle and the detector registry on SQLite and real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.db.support import BACKENDS, migrated_engine
from tests.orch.core.conftest import bundle_yaml, fms_spec

from detector_orchestration.policy.model import PolicyError
from detector_orchestration.policy.store import PolicyStore, PolicyStoreError, Status
from detector_orchestration.registry.store import RegistryError, RegistryStore
from llama_mapper.storage.db.schema import orch_detectors


@pytest.fixture(params=BACKENDS)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(request.param, tmp_path) as migrated:
        yield migrated


async def test_submit_approve_reject_rollback(engine: AsyncEngine) -> None:
    store = PolicyStore(engine)
    v1 = await store.submit("acme", bundle_yaml("p", ["a"]))
    assert (v1.version, v1.status) == (1, Status.PENDING)
    assert await store.active("acme", "p") is None  # pending is not active
    await store.approve("acme", "p", 1)
    v2 = await store.submit("acme", bundle_yaml("p", ["a", "b"]))
    v3 = await store.submit("acme", bundle_yaml("p", ["c"]))
    await store.reject("acme", "p", v3.version)
    await store.approve("acme", "p", v2.version)
    active = await store.active("acme", "p")
    assert active is not None
    assert active.version == 2
    assert active.parsed().detectors.required == ["a", "b"]
    statuses = {v.version: v.status for v in await store.list("acme")}
    assert statuses == {1: Status.SUPERSEDED, 2: Status.ACTIVE, 3: Status.REJECTED}
    back = await store.rollback("acme", "p")
    assert back.version == 1
    statuses = {v.version: v.status for v in await store.list("acme", "p")}
    assert statuses == {1: Status.ACTIVE, 2: Status.ROLLED_BACK, 3: Status.REJECTED}
    with pytest.raises(PolicyStoreError, match="no earlier approved version"):
        await store.rollback("acme", "p")
    with pytest.raises(PolicyStoreError, match="is rejected, not pending"):
        await store.approve("acme", "p", 3)
    with pytest.raises(PolicyStoreError, match="no version 9"):
        await store.approve("acme", "p", 9)
    # Tenants are separate: another tenant's bundle of the same name starts at 1.
    other = await store.submit("globex", bundle_yaml("p", ["a"]))
    assert other.version == 1
    assert await store.active("globex", "p") is None


async def test_an_invalid_bundle_is_never_stored(engine: AsyncEngine) -> None:
    store = PolicyStore(engine)
    with pytest.raises(PolicyError, match=r"coverage\.minimum"):
        await store.submit("acme", "name: p\ncoverage: {minimum: 3}\n")
    with pytest.raises(PolicyError, match="not valid YAML"):
        await store.submit("acme", "name: [p\n")
    assert await store.list("acme") == []


async def test_registry_keeps_secret_names_only(engine: AsyncEngine) -> None:
    registry = RegistryStore(engine)
    record = await registry.add(
        fms_spec("pii-a", "http://127.0.0.1:1/x", auth_secret="pii_token", timeout_ms=250)
    )
    assert record.auth_secret == "pii_token"
    assert record.health == "unknown"
    with pytest.raises(RegistryError, match="already registered"):
        await registry.add(fms_spec("pii-a", "http://127.0.0.1:1/x"))
    await registry.add(fms_spec("pii-a", "http://127.0.0.1:2/y", retries=0), replace=True)
    await registry.set_health("pii-a", "healthy")
    (stored,) = await registry.list()
    assert (stored.endpoint, stored.retries, stored.health) == (
        "http://127.0.0.1:2/y",
        0,
        "healthy",
    )
    assert stored.health_checked_at is not None
    assert stored.settings == {"detector_id": "pii-a-v1"}
    async with engine.connect() as connection:
        row = (await connection.execute(select(orch_detectors))).one()
    assert row.auth_secret is None  # replaced without one
    await registry.remove("pii-a")
    with pytest.raises(RegistryError, match="no detector named"):
        await registry.remove("pii-a")
