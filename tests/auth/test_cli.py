"""`mapper auth` end to end: real settings, the env secret provider and a SQLite state dir."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.db.support import postgres_database_sync
from typer.testing import CliRunner

from llama_mapper.auth.keys import MAP_READ, MAP_WRITE
from llama_mapper.auth.model import Principal
from llama_mapper.auth.service import AuthService
from llama_mapper.auth.store import ApiKeyStore
from llama_mapper.cli import auth_cmd
from llama_mapper.cli.db_cmd import secret_provider
from llama_mapper.config.settings import load_settings
from llama_mapper.storage.db.engine import create_engine
from llama_mapper.storage.db.migrate import open_database
from llama_mapper.storage.db.schema import api_keys

runner = CliRunner()
KEY_LINE = re.compile(r"^api_key: (lmk_\S+)$", re.MULTILINE)


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(auth_cmd.app, list(args))
    return result.exit_code, result.stdout, result.stderr


def authenticate(key: str) -> Principal:
    """Verify the way the server would: settings → provider → database → service."""

    async def run() -> Principal:
        settings = load_settings()
        secrets = secret_provider(settings)
        engine = await open_database(settings, secrets)
        try:
            return await AuthService.from_settings(
                settings, ApiKeyStore(engine), secrets
            ).authenticate(key)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_create_list_rotate_revoke(state_dir: Path) -> None:
    code, out, err = invoke(
        "create-key", "--tenant", "acme", "--scope", MAP_WRITE, "--scope", MAP_READ,
        "--expires", "90d", "--description", "ci pipeline",
    )  # fmt: skip
    assert code == 0, err
    keys = KEY_LINE.findall(out)
    assert len(keys) == 1  # printed exactly once
    key = keys[0]
    key_id = re.search(r"^key_id:\s+(\S+)$", out, re.MULTILINE).group(1)  # type: ignore[union-attr]
    assert key.startswith(f"lmk_{key_id}_")
    assert "shown only once" in err
    assert key not in err
    assert (state_dir / "mapper.db").is_file()  # auto-migrated
    assert (state_dir / "secrets" / "api_key_pepper").is_file()  # pepper generated once

    principal = authenticate(key)
    assert principal == Principal(key_id, "acme", frozenset({MAP_WRITE, MAP_READ}))

    code, out, err = invoke("list")
    assert code == 0, err
    assert key_id in out
    assert "acme" in out
    assert "active" in out
    assert "ci pipeline" in out
    assert key[-43:] not in out

    code, out, err = invoke("rotate-key", "--key-id", key_id, "--grace", "1h")
    assert code == 0, err
    new_key = KEY_LINE.findall(out)[0]
    new_id = new_key[4:16]
    assert new_id != key_id
    assert f"old key {key_id} stays valid until" in err
    assert authenticate(new_key).key_id == new_id
    assert authenticate(key).key_id == key_id  # within the grace period

    code, out, err = invoke("list", "--tenant", "acme", "--json")
    assert code == 0, err
    listed = {row["key_id"]: row for row in json.loads(out)}
    assert set(listed) == {key_id, new_id}
    assert listed[key_id]["status"] == "expiring"
    assert listed[new_id]["rotated_from"] == key_id
    assert listed[new_id]["scopes"] == [MAP_READ, MAP_WRITE]
    assert all("key_hash" not in row and "api_key" not in row for row in listed.values())

    code, out, err = invoke("revoke", "--key-id", key_id)
    assert code == 0, err
    assert f"revoked API key {key_id} of tenant acme" in out
    from llama_mapper.auth.errors import AuthenticationError

    with pytest.raises(AuthenticationError):
        authenticate(key)

    code, out, _ = invoke("list")
    assert key_id not in out
    assert new_id in out
    code, out, _ = invoke("list", "--all", "--json")
    statuses = {row["key_id"]: row["status"] for row in json.loads(out)}
    assert statuses == {key_id: "revoked", new_id: "active"}


def test_create_key_json(state_dir: Path) -> None:
    code, out, err = invoke("create-key", "-t", "acme", "-s", "admin", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["scopes"] == ["admin"]
    assert data["expires_at"] is None
    assert authenticate(data["api_key"]).key_id == data["key_id"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create-key", "--tenant", "acme", "--scope", "map:delete"], "unknown scope"),
        (["create-key", "--tenant", "no spaces", "--scope", MAP_WRITE], "invalid tenant id"),
        (["create-key", "--tenant", "acme", "--scope", MAP_WRITE, "--expires", "1y"], "--expires"),
        (["rotate-key", "--key-id", "zzzzzzzzzzzz"], "no API key with id zzzzzzzzzzzz"),
        (["rotate-key", "--key-id", "zzzzzzzzzzzz", "--grace", "soon"], "--grace"),
        (["revoke", "--key-id", "zzzzzzzzzzzz"], "no API key with id zzzzzzzzzzzz"),
    ],
)
def test_errors_are_one_line(state_dir: Path, args: list[str], message: str) -> None:
    code, out, err = invoke(*args)
    assert code == 1
    assert out == ""
    assert err.startswith("error: ")
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_without_auto_migrate_the_cli_asks_for_an_upgrade(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLAMA_MAPPER_DATABASE__AUTO_MIGRATE", "false")
    code, _, err = invoke("list")
    assert code == 1
    assert "mapper db upgrade" in err


def test_create_key_on_postgres(tmp_path: Path, state_dir: Path) -> None:
    with postgres_database_sync() as url:
        config = tmp_path / "mapper.yaml"
        config.write_text(f"database:\n  url: {url}\n")
        code, out, err = invoke("create-key", "-t", "acme", "-s", MAP_WRITE, "-c", str(config))
        assert code == 0, err
        key = KEY_LINE.findall(out)[0]
        code, out, err = invoke("list", "--json", "-c", str(config))
        assert [row["key_id"] for row in json.loads(out)] == [key[4:16]]
        assert not (state_dir / "mapper.db").exists()

        async def check() -> None:
            engine = create_engine(url)
            try:
                async with engine.connect() as connection:
                    rows = (await connection.execute(select(api_keys))).all()
                assert key[-43:] not in repr(rows)  # only the HMAC is in PostgreSQL
                settings = load_settings(config)
                secrets = secret_provider(settings)
                auth = AuthService.from_settings(settings, ApiKeyStore(engine), secrets)
                assert (await auth.authenticate(key)).tenant_id == "acme"
            finally:
                await engine.dispose()

        asyncio.run(check())
