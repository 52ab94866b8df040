"""The ClickHouse schema of shipped evidence: one ``events`` table, the same SQL everywhere.

One row per event with its labels as parallel arrays (``labels[i]`` scored ``scores[i]``,
found by ``methods[i]``), so the common questions are one ``GROUP BY`` away: events per
tenant and day, ``arrayJoin(labels)`` per label, ``arrayJoin(controls)`` per control,
``has(labels, 'OTHER.Unknown')`` for the unknown rate, ``quantiles`` over ``scores``.

* ``ReplacingMergeTree`` keyed by ``(tenant_id, ts, seq, event_id)``: shipping an event twice
  (after a crash between the insert and the cursor update) leaves one row once parts merge,
  and ``FINAL`` gives exact counts at any time.
* ``PARTITION BY toYYYYMM(ts)`` and ``TTL ts + retention``: old months drop as whole parts.
* Only keyed hashes, labels, scores, versions and controls; never raw detector output.
"""

from __future__ import annotations

import re

TABLE = "events"
MAX_RETENTION_DAYS = 25_000
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_COLUMNS_DDL = """
    tenant_id LowCardinality(String),
    ts DateTime64(6, 'UTC'),
    seq UInt64,
    event_id String,
    kind LowCardinality(String),
    request_id String,
    route LowCardinality(String),
    detector LowCardinality(String),
    detector_version LowCardinality(String),
    labels Array(LowCardinality(String)),
    scores Array(Float64),
    methods Array(LowCardinality(String)),
    confidence Float64,
    controls Array(LowCardinality(String)),
    taxonomy_version LowCardinality(String),
    frameworks_version LowCardinality(String),
    detector_pack_version LowCardinality(String),
    model_version LowCardinality(String),
    versions Map(LowCardinality(String), String),
    output_fingerprint String,
    fingerprint_version LowCardinality(String),
    shipped_at DateTime64(3, 'UTC') DEFAULT now64(3)
"""


def identifier(name: str) -> str:
    """``name`` if it is a plain identifier; ``ValueError`` otherwise (it is spliced into DDL)."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid ClickHouse database name")
    return name


def create_database(database: str) -> str:
    return f"CREATE DATABASE IF NOT EXISTS {identifier(database)}"


def ttl_clause(retention_days: int) -> str:
    if not 1 <= retention_days <= MAX_RETENTION_DAYS:
        # Past DateTime's end (2106) the TTL wraps around into the past: every row would
        # be dropped at once.
        raise ValueError(f"retention_days must be between 1 and {MAX_RETENTION_DAYS}")
    return f"toDateTime(ts) + toIntervalDay({int(retention_days)})"


def create_events(database: str, retention_days: int) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {identifier(database)}.{TABLE} ({_COLUMNS_DDL})\n"
        "ENGINE = ReplacingMergeTree\n"
        "PARTITION BY toYYYYMM(ts)\n"
        "PRIMARY KEY (tenant_id, ts)\n"
        "ORDER BY (tenant_id, ts, seq, event_id)\n"
        f"TTL {ttl_clause(retention_days)}"
    )


def modify_ttl(database: str, retention_days: int) -> str:
    """Applied when ``analytics.retention_days`` changed since the table was created."""
    return f"ALTER TABLE {identifier(database)}.{TABLE} MODIFY TTL {ttl_clause(retention_days)}"


def delete_range(database: str) -> str:
    """Lightweight delete of a tenant's seq range (parameters ``t``, ``first``, ``last``)."""
    return (
        f"DELETE FROM {identifier(database)}.{TABLE} WHERE tenant_id = {{t:String}} "  # noqa: S608 - identifier() checked
        "AND seq BETWEEN {first:UInt64} AND {last:UInt64}"
    )


def table_ttl_query(database: str) -> tuple[str, dict[str, str]]:
    """The table's current engine definition (it contains the TTL expression)."""
    return (
        "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        {"db": identifier(database), "t": TABLE},
    )
