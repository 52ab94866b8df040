"""The database password comes from the secret provider on every new connection.

The local PostgreSQL trusts loopback connections, so it cannot refuse a stale password;
what this proves on the real server is that each new connection is opened with the
provider's *current* value — which is what makes rotation work without a restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.pool import NullPool
from tests.servicecheck import require_postgres

from llama_mapper.config.settings import SecretsSettings
from llama_mapper.secrets import EnvSecretProvider
from llama_mapper.storage.db.engine import create_engine


async def test_new_connections_use_the_rotated_password(tmp_path: Path) -> None:
    url = require_postgres()
    environ = {"LLAMA_MAPPER_SECRET_DB_PASSWORD": "first-password"}
    secrets = EnvSecretProvider(SecretsSettings(cache_seconds=0), environ=environ)
    engine = create_engine(
        url, password=lambda: secrets.get("db_password").value, poolclass=NullPool
    )
    seen: list[str] = []

    @event.listens_for(engine.sync_engine, "do_connect")
    def record(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        seen.append(cparams["password"])

    try:
        for value in ("first-password", "second-password"):
            environ["LLAMA_MAPPER_SECRET_DB_PASSWORD"] = value
            async with engine.connect() as connection:
                assert (await connection.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()
    assert seen == ["first-password", "second-password"]
