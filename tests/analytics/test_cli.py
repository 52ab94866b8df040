"""`mapper analytics sync | status | query` on the embedded SQLite database and chDB."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.analytics.support import closed_port_url, embedded_target
from tests.audit.store_support import make_event
from typer.testing import CliRunner

from llama_mapper.analytics import QueryFailed, open_session, run_query
from llama_mapper.analytics.query import _settings
from llama_mapper.audit import EventStore
from llama_mapper.cli.main import app as cli
from llama_mapper.storage.db.engine import SQLITE_FILE, create_engine
from llama_mapper.storage.db.migrate import upgrade

runner = CliRunner()


async def _seed(db: Path, tenant: str, first: int, last: int) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        await upgrade(engine)
        await EventStore(engine).append([make_event(tenant, n) for n in range(first, last + 1)])
    finally:
        await engine.dispose()


@pytest.fixture
def seeded(state_dir: Path) -> Path:
    state_dir.mkdir(parents=True, exist_ok=True)
    db = state_dir / SQLITE_FILE
    asyncio.run(_seed(db, "acme", 1, 12))
    asyncio.run(_seed(db, "other", 1, 3))
    return db


def _invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, ["analytics", *args])
    return result.exit_code, result.stdout, result.stderr


def test_sync_status_query(seeded: Path, state_dir: Path) -> None:
    code, out, _ = _invoke("status")
    assert code == 0, out
    assert "acme    12        0           12" in out
    code, out, _ = _invoke("sync")
    assert code == 0, out
    assert "shipped 15 events to chdb:" in out
    assert "(acme 12, other 3)" in out
    code, out, _ = _invoke("status", "--json")
    status = json.loads(out)
    assert status["backend"] == "chdb"
    assert [(t["tenant"], t["cursor_seq"], t["behind"]) for t in status["tenants"]] == [
        ("acme", 12, 0),
        ("other", 3, 0),
    ]
    # A new command is a new process as far as the cursor is concerned: only new events go.
    asyncio.run(_seed(seeded, "acme", 13, 14))
    code, out, _ = _invoke("sync", "--json")
    assert json.loads(out)["shipped"] == {"acme": 2}
    code, out, _ = _invoke("sync", "--full", "--tenant", "acme")
    assert "shipped 14 events" in out
    sql = "SELECT tenant_id, count() AS events FROM events FINAL GROUP BY tenant_id ORDER BY 1"
    code, out, _ = _invoke("query", "--sql", sql, "--json")
    assert code == 0, out
    assert json.loads(out) == {
        "columns": ["tenant_id", "events"],
        "rows": [{"tenant_id": "acme", "events": 14}, {"tenant_id": "other", "events": 3}],
        "truncated": False,
    }
    code, out, _ = _invoke("query", "--sql", sql)
    assert out.splitlines()[0].split() == ["tenant_id", "events"]
    assert out.splitlines()[2].split() == ["acme", "14"]


def test_tenant_filter_applies_to_every_read_of_the_table(seeded: Path) -> None:
    assert _invoke("sync")[0] == 0
    sql = (
        "WITH per AS (SELECT tenant_id, count() AS n FROM events FINAL GROUP BY tenant_id) "
        "SELECT tenant_id, n, (SELECT count() FROM mapper.events) AS total FROM per"
    )
    code, out, _ = _invoke("query", "--sql", sql, "--tenant", "other", "--json")
    assert code == 0, out
    assert json.loads(out)["rows"] == [{"tenant_id": "other", "n": 3, "total": 3}]
    quoted = "x' OR tenant_id != '"  # a tenant id is a literal, never SQL
    code, out, _ = _invoke(
        "query", "--sql", "SELECT count() AS n FROM events", "-t", quoted, "--json"
    )
    assert json.loads(out)["rows"] == [{"n": 0}]


def test_max_rows_truncates(seeded: Path) -> None:
    assert _invoke("sync")[0] == 0
    _code, out, _err = _invoke(
        "query", "--sql", "SELECT seq FROM events ORDER BY seq", "--max-rows", "4", "--json"
    )
    result = json.loads(out)
    assert len(result["rows"]) == 4
    assert result["truncated"] is True


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("INSERT INTO events (tenant_id) VALUES ('x')", "query refused: only SELECT or WITH"),
        ("DROP TABLE events", "query refused: only SELECT or WITH queries are allowed, not DROP"),
        ("SELECT 1; DROP TABLE events", "query refused: only one statement is allowed"),
        ("SELECT * FROM evnts", "query failed: Unknown table expression identifier 'evnts'"),
        ("SELECT FROM WHERE", "query failed: Syntax error"),
        # Past the scanner, ClickHouse's own read-only mode refuses table functions.
        ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "readonly mode"),
    ],
)
def test_bad_queries_are_one_line_errors(seeded: Path, sql: str, message: str) -> None:
    assert _invoke("sync")[0] == 0
    code, out, err = _invoke("query", "--sql", sql)
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert message in err
    assert "Traceback" not in err
    code, out, _ = _invoke("query", "--sql", "SELECT count() AS n FROM events", "--json")
    assert json.loads(out)["rows"] == [{"n": 15}]  # nothing was written or dropped


def test_clickhouse_enforces_read_only_itself(tmp_path: Path) -> None:
    """The second lock, without the scanner: the query settings make ClickHouse refuse."""
    target = embedded_target(tmp_path)
    run_query(target, "SELECT 1")  # creates the schema
    with open_session(target, wait=10) as session:
        for statement in (
            "INSERT INTO mapper.events (tenant_id, ts, seq) VALUES ('x', now(), 1)",
            "DROP TABLE mapper.events",
            "SELECT 1 SETTINGS readonly = 0",
        ):
            with pytest.raises(Exception, match="readonly mode"):
                session.query(statement, settings=_settings(target, None, 10))
    with pytest.raises(QueryFailed, match="readonly"):
        run_query(target, "SELECT * FROM url('http://127.0.0.1:1/x', 'CSV', 'a String')")
    with open_session(target, wait=10) as session:
        assert session.query("SELECT count() FROM mapper.events")[1] == [(0,)]


def test_a_busy_embedded_engine_is_one_clear_line(seeded: Path, state_dir: Path) -> None:
    target = embedded_target(state_dir)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from llama_mapper.analytics import open_session\n"
         "from tests.analytics.support import embedded_target\n"
         "from pathlib import Path\n"
         "with open_session(embedded_target(Path(sys.argv[1])), wait=10):\n"
         "    print('held', flush=True)\n"
         "    sys.stdin.readline()\n",
         str(state_dir)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        result = runner.invoke(
            cli,
            ["analytics", "query", "--sql", "SELECT 1"],
            env={"LLAMA_MAPPER_ANALYTICS__LOCK_TIMEOUT_SECONDS": "0.3"},
        )
        assert result.exit_code == 1
        assert f"is in use by process {holder.pid}" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    finally:
        assert holder.stdin is not None
        holder.communicate("\n", timeout=30)
    assert target.lock_file is not None
    code, out, _ = _invoke("sync")  # released: works again
    assert code == 0, out


def test_unreachable_clickhouse_is_one_line_and_status_still_answers(
    seeded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLAMA_MAPPER_ANALYTICS__URL", closed_port_url())
    code, out, err = _invoke("sync")
    assert code == 1
    assert err.startswith("error: analytics unavailable: ClickHouse at http://127.0.0.1:")
    assert err.strip().endswith("/mapper: Connection refused")
    assert len(err.strip().splitlines()) == 1
    code, out, _ = _invoke("status", "--json")
    assert code == 0
    assert [t["behind"] for t in json.loads(out)["tenants"]] == [12, 3]
    code, out, err = _invoke("query", "--sql", "SELECT 1")
    assert code == 1
    assert "analytics unavailable" in err


def test_a_password_in_the_url_is_refused(seeded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMA_MAPPER_ANALYTICS__URL", "http://u:hunter2@127.0.0.1:8123/db")
    code, _out, err = _invoke("sync")
    assert code == 1
    assert "must not contain a password" in err
    assert "hunter2" not in err
