"""Migrations, engine construction and `mapper db` on SQLite and real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.db.support import postgres_database, postgres_database_sync
from typer.testing import CliRunner

from llama_mapper.cli import db_cmd
from llama_mapper.config.settings import Settings, load_settings
from llama_mapper.secrets import EnvSecretProvider, SecretError, env_var_name
from llama_mapper.storage.db import (
    create_engine,
    current_revision,
    database_url,
    head_revision,
    metadata,
    open_database,
    safe_url,
    upgrade,
)

runner = CliRunner()
#: The newest migration (the lead re-chains helpers' migrations, so it is not spelled out).
HEAD = "0007_analytics"


def _table_facts(connection: Connection) -> dict[str, object]:
    inspector = inspect(connection)
    columns = {c["name"]: c["nullable"] for c in inspector.get_columns("api_keys")}
    return {
        "tables": set(inspector.get_table_names()),
        "columns": columns,
        "pk": inspector.get_pk_constraint("api_keys")["constrained_columns"],
        "indexes": {i["name"]: i["column_names"] for i in inspector.get_indexes("api_keys")},
    }


async def test_upgrade_creates_api_keys(blank_engine: AsyncEngine) -> None:
    assert head_revision() == HEAD
    assert await current_revision(blank_engine) is None
    await upgrade(blank_engine)
    assert await current_revision(blank_engine) == HEAD
    async with blank_engine.connect() as connection:
        facts = await connection.run_sync(_table_facts)
    assert "api_keys" in facts["tables"]
    assert facts["pk"] == ["key_id"]
    assert facts["indexes"] == {"ix_api_keys_tenant_id": ["tenant_id"]}
    assert facts["columns"] == {
        "key_id": False,
        "tenant_id": False,
        "scopes": False,
        "key_hash": False,
        "pepper_version": False,
        "created_at": False,
        "expires_at": True,
        "revoked_at": True,
        "rotated_from": True,
        "description": True,
    }


async def test_upgrade_is_idempotent_and_matches_the_metadata(blank_engine: AsyncEngine) -> None:
    await upgrade(blank_engine)
    await upgrade(blank_engine)  # a second start-up migrates nothing and does not fail

    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with blank_engine.connect() as connection:
        # The hand-written migration and schema.py describe the same tables.
        assert await connection.run_sync(diff) == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_concurrent_upgrades_do_not_collide(backend: str, tmp_path: Path) -> None:
    """Several workers auto-migrating one fresh database at start-up all succeed."""
    async with contextlib.AsyncExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
        else:
            url = await stack.enter_async_context(postgres_database())
        engines = [create_engine(url) for _ in range(4)]
        try:
            await asyncio.gather(*(upgrade(engine) for engine in engines))
            assert await current_revision(engines[0]) == HEAD
        finally:
            for engine in engines:
                await engine.dispose()


async def test_sqlite_ddl_is_transactional(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 't.db'}")
    try:

        async def failing_migration() -> None:
            async with engine.begin() as connection:
                await connection.execute(text("CREATE TABLE scratch (x INTEGER)"))
                raise RuntimeError("migration failed half-way")

        with pytest.raises(RuntimeError):
            await failing_migration()
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        assert "scratch" not in tables
    finally:
        await engine.dispose()


async def test_upgrade_accepts_a_url(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'by-url.db'}"
    await upgrade(url)
    assert await current_revision(url) == HEAD


async def test_sqlite_engine_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    finally:
        await engine.dispose()


def test_postgres_engine_pings_pooled_connections() -> None:
    engine = create_engine("postgresql+asyncpg://u@localhost/db")
    assert engine.pool._pre_ping is True  # type: ignore[attr-defined]


def test_default_url_is_sqlite_in_state_dir(state_dir: Path) -> None:
    settings = load_settings()
    assert not state_dir.exists()
    url = make_url(database_url(settings, None))
    assert url.drivername == "sqlite+aiosqlite"
    assert Path(url.database or "") == state_dir.resolve() / "mapper.db"
    assert state_dir.is_dir()  # created, so SQLite can create the file


def test_password_secret_is_injected_and_masked(state_dir: Path) -> None:
    settings = Settings(
        database={"url": "postgresql+asyncpg://mapper@db:5432/mapper", "password_secret": "db_pw"}
    )
    provider = EnvSecretProvider(environ={env_var_name("db_pw"): "s3cr3t/@:pw"})
    url = database_url(settings, provider)
    parsed = make_url(url)
    assert parsed.password == "s3cr3t/@:pw"  # special characters survive URL quoting
    assert (parsed.username, parsed.host, parsed.database) == ("mapper", "db", "mapper")
    assert "s3cr3t" not in safe_url(url)
    with pytest.raises(ValueError, match="no secret provider"):
        database_url(settings, None)
    with pytest.raises(SecretError):
        database_url(settings, EnvSecretProvider(environ={}))


async def test_open_database_migrates_only_when_asked(state_dir: Path) -> None:
    settings = Settings(database={"auto_migrate": False})
    engine = await open_database(settings, None)
    try:
        assert await current_revision(engine) is None
    finally:
        await engine.dispose()
    engine = await open_database(Settings(), None)
    try:
        assert await current_revision(engine) == HEAD
    finally:
        await engine.dispose()


def test_cli_upgrade_and_current_on_sqlite(state_dir: Path) -> None:
    result = runner.invoke(db_cmd.app, ["current", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["database"].startswith("sqlite+aiosqlite:///")
    assert (report["current"], report["head"], report["up_to_date"]) == (None, HEAD, False)
    result = runner.invoke(db_cmd.app, ["upgrade"])
    assert result.exit_code == 0, result.output
    assert f"at revision {HEAD} (up to date)" in result.stdout
    assert (state_dir / "mapper.db").is_file()
    result = runner.invoke(db_cmd.app, ["current"])
    assert result.exit_code == 0, result.output
    assert f"is at revision {HEAD} (up to date)" in result.stdout


def test_cli_on_postgres_with_config_file(tmp_path: Path, state_dir: Path) -> None:
    with postgres_database_sync() as url:
        config = tmp_path / "mapper.yaml"
        config.write_text(f"database:\n  url: {url}\n")
        result = runner.invoke(db_cmd.app, ["upgrade", "--config", str(config)])
        assert result.exit_code == 0, result.output
        result = runner.invoke(db_cmd.app, ["current", "--config", str(config), "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["current"] == HEAD
        assert report["up_to_date"] is True
        assert report["database"].startswith("postgresql+asyncpg://")
        assert not (state_dir / "mapper.db").exists()


def test_cli_reports_an_unreachable_database_in_one_line(tmp_path: Path, state_dir: Path) -> None:
    config = tmp_path / "mapper.yaml"
    config.write_text("database:\n  url: postgresql+asyncpg://nobody:pw@127.0.0.1:1/none\n")
    result = runner.invoke(db_cmd.app, ["current", "--config", str(config)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "pw" not in result.stderr.replace("error", "")
