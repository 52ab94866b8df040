"""Shipping under PostgreSQL row-level security, as an ordinary role (superusers bypass it):
the shipper acts for each tenant, and the cursor table is itself tenant-isolated."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from tests.analytics.support import KEEP_DAYS, count, embedded_target
from tests.audit.store_support import make_event
from tests.db.support import postgres_app_role, schema_engine

from llama_mapper.analytics import cursors, ship
from llama_mapper.audit import EventStore
from llama_mapper.storage.db.migrate import upgrade
from llama_mapper.storage.db.schema import analytics_cursors
from llama_mapper.storage.db.tenancy import act_for


async def test_shipping_under_row_level_security(tmp_path: Path) -> None:
    target = embedded_target(tmp_path)
    async with postgres_app_role() as (url, schema, _role):
        engine = schema_engine(url, schema)
        try:
            await upgrade(engine)
            store = EventStore(engine)
            await store.append([make_event("a", 1), make_event("b", 1), make_event("a", 2)])
            report = await ship(engine, target, retention_days=KEEP_DAYS, batch_size=10)
            assert report.shipped == {"a": 2, "b": 1}
            assert (count(target, "a"), count(target, "b")) == (2, 1)
            positions = await cursors.positions(engine, target.sink)
            assert [(p.tenant_id, p.cursor_seq, p.behind) for p in positions] == [
                ("a", 2, 0),
                ("b", 1, 0),
            ]
            query = select(func.count()).select_from(analytics_cursors)
            async with engine.connect() as connection:
                # No tenant set: the policy shows no cursor at all.
                assert (await connection.execute(query)).scalar_one() == 0
                await act_for(connection, "a")
                assert (await connection.execute(query)).scalar_one() == 1
        finally:
            await engine.dispose()
