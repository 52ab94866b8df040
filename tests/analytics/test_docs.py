"""Every example query in docs/analytics.md runs against the real engine and answers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from tests.analytics.support import KEEP_DAYS, embedded_target
from tests.audit.store_support import make_event
from tests.db.support import migrated_engine

from llama_mapper.analytics import run_query, ship
from llama_mapper.analytics.ddl import create_events
from llama_mapper.audit import EventStore
from llama_mapper.config.settings import AnalyticsSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "analytics.md"


def _examples() -> list[str]:
    text = DOC.read_text()
    start = text.index("## Example queries")
    blocks = re.findall(r"```sql\n(.*?)```", text[start:], re.DOTALL)
    statements = [s.strip() for block in blocks for s in block.split(";")]
    return [
        s for s in statements if s and not all(line.startswith("--") for line in s.splitlines())
    ]


def test_documented_schema_is_the_real_one() -> None:
    documented = re.search(
        r"```sql\n(CREATE TABLE mapper\.events.*?)```", DOC.read_text(), re.DOTALL
    )
    assert documented is not None
    columns = re.findall(r"^\s+(\w+) ", documented.group(1), re.MULTILINE)
    real = re.findall(r"^\s+(\w+) ", create_events("mapper", 400), re.MULTILINE)
    assert columns == real
    clauses = (
        "PARTITION BY toYYYYMM(ts)",
        "ORDER BY (tenant_id, ts, seq, event_id)",
        "TTL toDateTime(ts) + toIntervalDay(400)",
        "ENGINE = ReplacingMergeTree",
    )
    for clause in clauses:
        assert clause in documented.group(1)
        assert clause in create_events("mapper", 400)


async def test_documented_queries_run(tmp_path: Path) -> None:
    target = embedded_target(tmp_path)
    async with migrated_engine("sqlite", tmp_path) as engine:
        await EventStore(engine).append([make_event("acme", n) for n in range(1, 6)])
        await ship(engine, target, retention_days=KEEP_DAYS, batch_size=100)
    examples = _examples()
    assert len(examples) >= 6
    for sql in examples:
        result = run_query(target, sql)
        # The last example looks at the past week; the seeded events are older.
        assert result.rows or "INTERVAL 7 DAY" in sql, sql
    labels = run_query(target, examples[1])
    assert sorted(labels.rows) == [("HARM.VIOLENCE", 5), ("PII.EMAIL", 5)]


def test_a_ttl_past_datetimes_end_is_refused() -> None:
    """ts + TTL beyond 2106 wraps into the past in ClickHouse and would drop every row."""
    with pytest.raises(ValueError, match="between 1 and 25000"):
        create_events("mapper", 40_000)
    with pytest.raises(ValidationError):
        AnalyticsSettings(retention_days=40_000)
