"""`mapper retention run | hold` and `mapper audit verify` after retention, end to end on
the embedded SQLite database (the store tests cover PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from tests.audit.store_support import make_event
from typer.testing import CliRunner

from llama_mapper.audit import EventStore
from llama_mapper.cli.main import app as cli
from llama_mapper.storage.db.engine import create_engine
from llama_mapper.storage.db.migrate import upgrade

runner = CliRunner()
DOC = Path(__file__).resolve().parents[2] / "docs" / "audit-verification.md"


async def _seed(state_dir: Path) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite+aiosqlite:///{state_dir / 'mapper.db'}")
    await upgrade(engine)
    store = EventStore(engine)
    tenants = ("acme", "beta")
    old = [make_event(t, n, ts="2020-01-01T00:00:00Z") for t in tenants for n in range(3)]
    young = [make_event(t, 10 + n, ts="2099-01-01T00:00:00Z") for t in tenants for n in range(2)]
    await store.append(old + young)
    await engine.dispose()


def _json(args: list[str]) -> object:
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_run_hold_and_verify(state_dir: Path) -> None:
    asyncio.run(_seed(state_dir))
    dry = _json(["retention", "run", "--dry-run"])
    assert dry == {
        "dry_run": True,
        "tenants": [
            {
                "tenant": tenant,
                "cutoff": dry["tenants"][i]["cutoff"],  # type: ignore[index]
                "held": False,
                "deleted": 3,
                "first_seq": 1,
                "last_seq": 3,
                "tombstone_seqs": [],
                "dry_run": True,
            }
            for i, tenant in enumerate(["acme", "beta"])
        ],
    }
    held = runner.invoke(
        cli, ["retention", "hold", "set", "--tenant", "beta", "--reason", "audit", "--by", "ann"]
    )
    assert held.exit_code == 0, held.output
    again = runner.invoke(cli, ["retention", "hold", "set", "-t", "beta", "--reason", "x"])
    assert again.exit_code == 1
    assert "already on legal hold" in again.output
    run = runner.invoke(cli, ["retention", "run"])
    assert run.exit_code == 0, run.output
    assert "acme: deleted 3 events (seq 1-3" in run.stdout
    assert "beta: on legal hold, nothing deleted" in run.stdout
    for tenant, checked in (("acme", 3), ("beta", 5)):
        verified = _json(["audit", "verify", "--tenant", tenant])
        assert verified["ok"] is True  # type: ignore[index]
        assert verified["checked"] == checked  # type: ignore[index]
    holds = _json(["retention", "hold", "list"])
    assert [(h["tenant_id"], h["set_by"], h["active"]) for h in holds] == [("beta", "ann", True)]  # type: ignore[index, union-attr]
    released = runner.invoke(
        cli, ["retention", "hold", "release", "-t", "beta", "--reason", "done", "--by", "bo"]
    )
    assert released.exit_code == 0, released.output
    assert _json(["retention", "run", "--tenant", "beta"])["tenants"][0]["deleted"] == 3  # type: ignore[index]
    assert _json(["retention", "hold", "list", "--active"]) == []
    # Exported after retention, the chain verifies with the documented offline procedure.
    out = state_dir / "acme.jsonl"
    exported = runner.invoke(cli, ["audit", "export", "--tenant", "acme", "-o", str(out)])
    assert exported.exit_code == 0, exported.output
    verify = _offline_verify()
    head = _json(["audit", "verify", "--tenant", "acme"])["head_hash"]  # type: ignore[index]
    assert verify(str(out), whole=True) == head
    # Any other start fails the whole-chain check: drop the first surviving event.
    lines = out.read_text().splitlines()
    cut = state_dir / "cut.jsonl"
    cut.write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(SystemExit, match="chain broken at seq 5"):
        verify(str(cut), whole=True)
    # A forged tombstone line (hash recomputed) no longer links.
    record = json.loads(lines[-1])
    record["event"]["last_seq"] = 4
    forged = state_dir / "forged.jsonl"
    forged.write_text("\n".join([*lines[:-1], json.dumps(record)]) + "\n")
    with pytest.raises(SystemExit, match="chain broken"):
        verify(str(forged), whole=True)


def _offline_verify() -> Any:
    """The ``verify`` function exactly as docs/audit-verification.md prints it."""
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert code is not None
    namespace: dict[str, Any] = {"__name__": "audit_doc"}
    exec(code.group(1), namespace)
    return namespace["verify"]


def test_bad_input_is_one_line(state_dir: Path) -> None:
    asyncio.run(_seed(state_dir))
    result = runner.invoke(cli, ["retention", "hold", "release", "-t", "acme", "--reason", "x"])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0
    assert "no active legal hold" in result.output
    blank = runner.invoke(cli, ["retention", "hold", "set", "-t", "acme", "--reason", "  "])
    assert blank.exit_code == 1
    assert "reason must be" in blank.output
