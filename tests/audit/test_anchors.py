"""Signed anchors: signing, write-once storage, and `mapper audit anchor/verify` catching a
truncated chain that the plain chain check cannot see."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import stat
from pathlib import Path

import pytest
from tests.audit.store_support import make_event
from typer.testing import CliRunner

from llama_mapper.audit import EventStore
from llama_mapper.audit.anchors import (
    ANCHOR_SECRET,
    Anchor,
    AnchorError,
    AnchorStore,
    sign_anchor,
    verify_anchor,
)
from llama_mapper.cli import audit_cmd
from llama_mapper.secrets import Secret, env_var_name
from llama_mapper.storage.db.engine import SQLITE_FILE, create_engine
from llama_mapper.storage.db.migrate import upgrade
from llama_mapper.storage.objects import LocalObjectStore

runner = CliRunner()
HASH = "ab" * 32
SECRET = Secret(name=ANCHOR_SECRET, value="anchor-key-one", version="v1")


def _anchor(seq: int = 3, tenant: str = "acme", head: str = HASH) -> Anchor:
    return sign_anchor(tenant, seq, head, SECRET, anchored_at="2026-01-02T00:00:00Z")


def test_sign_verify_round_trip_is_deterministic() -> None:
    anchor = _anchor()
    assert verify_anchor(anchor)
    assert anchor.key_version == "v1"
    assert len(bytes.fromhex(anchor.public_key)) == 32
    assert len(bytes.fromhex(anchor.signature)) == 64
    # Same secret value, same key: every host derives the same public key.
    assert _anchor(seq=4).public_key == anchor.public_key
    assert Anchor.from_dict(json.loads(json.dumps(anchor.to_dict()))) == anchor


@pytest.mark.parametrize(
    "change",
    [
        {"signature": "00" * 64},
        {"head_hash": "cd" * 32},
        {"seq": 4},
        {"tenant_id": "other"},
        {"anchored_at": "2026-01-03T00:00:00Z"},
        {"key_version": "v2"},
        {"public_key": _anchor(tenant="x").public_key[::-1]},
        {"signature": "zz"},
    ],
)
def test_tampered_anchor_does_not_verify(change: dict[str, object]) -> None:
    assert not verify_anchor(dataclasses.replace(_anchor(), **change))  # type: ignore[arg-type]


def test_swapped_key_does_not_verify() -> None:
    other = sign_anchor("acme", 3, HASH, Secret(ANCHOR_SECRET, "another", "v9"))
    assert not verify_anchor(dataclasses.replace(_anchor(), public_key=other.public_key))


def _store(folder: Path) -> AnchorStore:
    return AnchorStore(LocalObjectStore(folder))


def test_store_is_write_once_and_read_only(tmp_path: Path) -> None:
    store = _store(tmp_path)
    anchor = _anchor()
    key = asyncio.run(store.write(anchor))
    assert key == f"anchors/acme/{3:012d}-{HASH[:16]}.json"
    path = tmp_path / "anchors" / "acme" / f"{3:012d}-{HASH[:16]}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    with pytest.raises(FileExistsError):
        asyncio.run(store.write(dataclasses.replace(anchor, anchored_at="2026-01-09T00:00:00Z")))
    assert asyncio.run(store.all("acme")) == [anchor]


def test_latest_is_the_highest_seq(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert asyncio.run(store.latest("acme")) is None
    for seq in (3, 12, 5):
        asyncio.run(store.write(_anchor(seq)))
    asyncio.run(store.write(_anchor(99, tenant="other")))
    latest = asyncio.run(store.latest("acme"))
    assert latest is not None
    assert latest.seq == 12
    assert [a.seq for a in asyncio.run(store.all("acme"))] == [3, 5, 12]


@pytest.mark.parametrize("tenant", ["..", "a/b", ".hidden", "", "x" * 65, "acme\n"])
def test_unsafe_tenant_ids_are_refused(tmp_path: Path, tenant: str) -> None:
    store = _store(tmp_path)
    with pytest.raises(AnchorError):
        asyncio.run(store.latest(tenant))
    with pytest.raises(AnchorError):
        sign_anchor(tenant, 1, HASH, SECRET)


def test_anchor_file_moved_to_another_tenant_is_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    key = asyncio.run(store.write(_anchor()))
    path = tmp_path / key
    (tmp_path / "anchors" / "other").mkdir()
    (tmp_path / "anchors" / "other" / path.name).write_bytes(path.read_bytes())
    with pytest.raises(AnchorError, match="does not match"):
        asyncio.run(store.latest("other"))


# --- the CLI on the embedded SQLite database --------------------------------------------


async def _append(db: Path, tenant: str, numbers: range) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        await upgrade(engine)
        await EventStore(engine).append([make_event(tenant, n) for n in numbers])
    finally:
        await engine.dispose()


async def _store_verify(db: Path, tenant: str) -> bool:
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        return (await EventStore(engine).verify(tenant)).ok
    finally:
        await engine.dispose()


@pytest.fixture
def db(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(env_var_name(ANCHOR_SECRET), raising=False)
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / SQLITE_FILE
    asyncio.run(_append(path, "acme", range(1, 9)))
    asyncio.run(_append(path, "other", range(1, 2)))
    return path


def test_anchor_then_truncation_is_caught(db: Path, state_dir: Path) -> None:
    result = runner.invoke(audit_cmd.app, ["verify", "-t", "acme"])
    assert result.exit_code == 0, result.output
    assert "anchor: no anchor yet" in result.output

    result = runner.invoke(audit_cmd.app, ["anchor", "--json"])
    assert result.exit_code == 0, result.output
    anchored = json.loads(result.stdout)["anchored"]
    assert [(a["tenant_id"], a["seq"]) for a in anchored] == [("acme", 8), ("other", 1)]
    # The key was generated once into the embedded secrets folder.
    assert (state_dir / "secrets" / ANCHOR_SECRET).is_file()
    assert (state_dir / "objects" / "anchors" / "acme").is_dir()

    result = runner.invoke(audit_cmd.app, ["anchor"])
    assert result.exit_code == 0, result.output
    assert "nothing to anchor" in result.output

    result = runner.invoke(audit_cmd.app, ["verify", "-t", "acme"])
    assert result.exit_code == 0, result.output
    assert "anchor: seq 8 verified" in result.output
    report = json.loads(runner.invoke(audit_cmd.app, ["verify", "-t", "acme", "--json"]).stdout)
    assert report["ok"]
    assert report["anchor_status"] == "seq 8 verified"
    assert report["anchor"]["public_key"] == anchored[0]["public_key"]
    assert report["anchor"]["key_version"] == anchored[0]["key_version"]

    # Cut off the newest two events and rewrite the head row to match: the chain alone
    # still verifies, the anchor does not.
    with sqlite3.connect(db) as connection:
        connection.execute("DELETE FROM audit_events WHERE tenant_id = 'acme' AND seq > 6")
        (hash6,) = connection.execute(
            "SELECT hash FROM audit_events WHERE tenant_id = 'acme' AND seq = 6"
        ).fetchone()
        connection.execute(
            "UPDATE audit_heads SET seq = 6, hash = ? WHERE tenant_id = 'acme'", (hash6,)
        )
    connection.close()
    assert asyncio.run(_store_verify(db, "acme"))

    result = runner.invoke(audit_cmd.app, ["verify", "-t", "acme"])
    assert result.exit_code == 1
    assert "does not match its anchor at seq 8" in result.output
    assert "before anchored seq 8" in result.output
    result = runner.invoke(audit_cmd.app, ["verify", "-t", "acme", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert not report["ok"]
    assert report["anchor"]["ok"] is False
    assert report["anchor_status"].startswith("seq 8 FAILED")
    assert runner.invoke(audit_cmd.app, ["verify", "-t", "other"]).exit_code == 0

    # Re-anchoring the truncated chain is refused rather than blessing it.
    result = runner.invoke(audit_cmd.app, ["anchor", "-t", "acme"])
    assert result.exit_code == 1
    assert "refusing to anchor" in result.output


def test_forged_anchor_fails_verify(db: Path, state_dir: Path) -> None:
    assert runner.invoke(audit_cmd.app, ["anchor", "-t", "acme"]).exit_code == 0
    store = _store(state_dir / "objects")
    latest = asyncio.run(store.latest("acme"))
    assert latest is not None
    # A later "anchor" whose signature does not match its content.
    asyncio.run(store.write(dataclasses.replace(latest, seq=9, head_hash="ef" * 32)))
    result = runner.invoke(audit_cmd.app, ["verify", "-t", "acme"])
    assert result.exit_code == 1
    assert "invalid signature" in result.output


def test_key_rotation_keeps_old_anchors_valid(
    db: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env_var_name(ANCHOR_SECRET), "first-anchor-key")
    assert runner.invoke(audit_cmd.app, ["anchor", "-t", "acme"]).exit_code == 0
    asyncio.run(_append(db, "acme", range(9, 12)))
    monkeypatch.setenv(env_var_name(ANCHOR_SECRET), "second-anchor-key")
    result = runner.invoke(audit_cmd.app, ["anchor", "-t", "acme", "--json"])
    assert result.exit_code == 0, result.output

    first, second = asyncio.run(_store(state_dir / "objects").all("acme"))
    assert (first.seq, second.seq) == (8, 11)
    assert first.key_version != second.key_version
    assert first.public_key != second.public_key
    assert verify_anchor(first)
    assert verify_anchor(second)
    result = runner.invoke(audit_cmd.app, ["verify", "-t", "acme"])
    assert result.exit_code == 0, result.output
    assert "anchor: seq 11 verified" in result.output
