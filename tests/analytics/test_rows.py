"""Chain rows become ClickHouse rows: named fields only, and odd rows never stop shipping."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from tests.audit.store_support import make_event

from llama_mapper.analytics.rows import COLUMNS, ChainRow, convert
from llama_mapper.audit import canonical_bytes


def _chain_row(
    body: bytes | str, *, kind: str = "mapping", ts: str = "2026-01-01T00:00:01Z"
) -> ChainRow:
    text = body.decode() if isinstance(body, bytes) else body
    return ChainRow("acme", 1, "acme-ev-1", ts, kind, "llama-guard", text)


def test_a_mapping_event_becomes_one_full_row() -> None:
    event = make_event("acme", 1)
    [row] = convert([_chain_row(canonical_bytes(event))]).rows
    values = dict(zip(COLUMNS, row, strict=True))
    assert values["ts"] == datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert values["labels"] == ["HARM.VIOLENCE", "PII.EMAIL"]
    assert values["scores"] == [0.25, 0.5]  # aligned with labels, not with the score dict
    assert values["methods"] == ["fuzzy", "direct"]
    assert values["model_version"] == ""  # None in the event
    assert values["versions"] == {"taxonomy": "2026.1", "frameworks": "2026.1"}
    assert values["output_fingerprint"] == event.output_fingerprint


def test_fields_it_does_not_name_are_never_copied() -> None:
    body = orjson.loads(canonical_bytes(make_event("acme", 1)))
    body["raw_output"] = "078-05-1120 alice@example.com"  # a field some future code might add
    converted = convert([_chain_row(orjson.dumps(body))])
    assert len(converted.rows) == 1
    assert "078-05-1120" not in str(converted.rows)


def _changed(**changes: object) -> bytes:
    body = orjson.loads(canonical_bytes(make_event("acme", 1)))
    body.update(changes)
    return orjson.dumps(body)


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[1, 2]",
        _changed(labels="PII.EMAIL"),
        _changed(scores={"PII.EMAIL": "high"}),
        _changed(confidence=True),
        _changed(output_fingerprint="078-05-1120 is the SSN"),  # text in the hash field
        _changed(tenant_id="someone-else"),  # a body moved between tenants
        _changed(kind="tombstone"),
    ],
)
def test_malformed_mapping_bodies_ship_bare(body: bytes | str) -> None:
    converted = convert([_chain_row(body)])
    assert converted.other == 1
    [row] = converted.rows
    values = dict(zip(COLUMNS, row, strict=True))
    assert (values["kind"], values["event_id"], values["labels"]) == ("other", "acme-ev-1", [])
    assert "078-05-1120" not in str(row)


def test_kinds_and_times() -> None:
    rows = [
        _chain_row('{"covers": "x"}', kind="tombstone"),
        _chain_row("{}", kind="something-new"),
        _chain_row(canonical_bytes(make_event("acme", 1)), ts="yesterday"),
    ]
    converted = convert(rows)
    assert [r[COLUMNS.index("kind")] for r in converted.rows] == ["tombstone", "other"]
    assert (converted.other, converted.skipped) == (1, 1)
