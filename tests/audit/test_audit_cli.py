"""`mapper audit verify/export` on the embedded SQLite database, and the documented
offline procedure run on a real export."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from tests.audit.store_support import make_event
from typer.testing import CliRunner

from llama_mapper.audit import EventStore
from llama_mapper.cli import audit_cmd
from llama_mapper.storage.db.engine import SQLITE_FILE, create_engine
from llama_mapper.storage.db.migrate import upgrade

runner = CliRunner()
DOC = Path(__file__).resolve().parents[2] / "docs" / "audit-verification.md"


async def _seed(db: Path) -> str:
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        await upgrade(engine)
        store = EventStore(engine)
        await store.append([make_event("acme", n) for n in range(1, 9)])
        await store.append([make_event("other", 1)])
        head = await store.head("acme")
        assert head is not None
        return head[1]
    finally:
        await engine.dispose()


@pytest.fixture
def seeded(state_dir: Path) -> tuple[Path, str]:
    state_dir.mkdir(parents=True, exist_ok=True)
    db = state_dir / SQLITE_FILE
    return db, asyncio.run(_seed(db))


def _offline_verify() -> Any:
    """The ``verify`` function exactly as docs/audit-verification.md prints it."""
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert code is not None
    namespace: dict[str, Any] = {"__name__": "audit_doc"}
    exec(code.group(1), namespace)
    return namespace["verify"]


def test_verify_ok_then_broken(seeded: tuple[Path, str]) -> None:
    db, head = seeded
    result = runner.invoke(audit_cmd.app, ["verify", "--tenant", "acme"])
    assert result.exit_code == 0, result.output
    assert f"chain of acme verified: 8 events, head {head[:16]}" in result.output

    result = runner.invoke(audit_cmd.app, ["verify", "--tenant", "acme", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["head_hash"] == head

    with sqlite3.connect(db) as connection:
        body = connection.execute(
            "SELECT body FROM audit_events WHERE tenant_id = 'acme' AND seq = 4"
        ).fetchone()[0]
        connection.execute(
            "UPDATE audit_events SET body = ? WHERE tenant_id = 'acme' AND seq = 4",
            (body.replace('"confidence":0.9', '"confidence":0.1'),),
        )
    connection.close()
    result = runner.invoke(audit_cmd.app, ["verify", "--tenant", "acme"])
    assert result.exit_code == 1
    assert "broken at seq 4" in result.output
    assert runner.invoke(audit_cmd.app, ["verify", "--tenant", "other"]).exit_code == 0
    # A range after the tampered event still verifies; one that includes it does not.
    since = ["verify", "--tenant", "acme", "--since"]
    assert runner.invoke(audit_cmd.app, [*since, "2026-01-01T00:00:05Z"]).exit_code == 0
    assert runner.invoke(audit_cmd.app, [*since, "2026-01-01T00:00:02Z"]).exit_code == 1


def test_export_verifies_offline_with_the_documented_procedure(
    seeded: tuple[Path, str], tmp_path: Path
) -> None:
    _, head = seeded
    out = tmp_path / "acme.jsonl"
    result = runner.invoke(audit_cmd.app, ["export", "--tenant", "acme", "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["seq"] for line in lines] == list(range(1, 9))
    assert set(lines[0]) == {"seq", "prev_hash", "hash", "event"}
    assert {line["event"]["tenant_id"] for line in lines} == {"acme"}

    verify = _offline_verify()
    assert verify(str(out)) == head

    window = tmp_path / "window.jsonl"
    args = [
        "export",
        "-t",
        "acme",
        "--from",
        "2026-01-01T00:00:03Z",
        "--to",
        "2026-01-01T00:00:06Z",
    ]
    assert runner.invoke(audit_cmd.app, [*args, "-o", str(window)]).exit_code == 0
    assert [json.loads(x)["seq"] for x in window.read_text().splitlines()] == [3, 4, 5]
    verify(str(window))

    tampered = tmp_path / "tampered.jsonl"
    text = out.read_text().splitlines()
    record = json.loads(text[5])
    record["event"]["labels"] = ["PII.EMAIL"]
    text[5] = json.dumps(record)
    tampered.write_text("\n".join(text) + "\n")
    with pytest.raises(SystemExit, match="seq 6"):
        verify(str(tampered))


def test_export_to_stdout(seeded: tuple[Path, str]) -> None:
    result = runner.invoke(audit_cmd.app, ["export", "--tenant", "other"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1
