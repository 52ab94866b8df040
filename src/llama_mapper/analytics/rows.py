"""Turn a committed chain row into one ClickHouse row: derived values only, never content.

The chain row's ``body`` is the canonical event JSON. Only the fields listed in
:data:`COLUMNS` are copied out of it, one by one, so whatever else a body might hold (a
future field, a field another event kind adds) never reaches analytics by accident.

Pure and tolerant on purpose: the shipper must never stall on one row. A ``mapping`` body
that does not parse as a :class:`~llama_mapper.audit.events.MappingEvent`, and any kind this
code does not know, ship as a bare row of ids and time (kind ``other``) and are counted, so
the cursor keeps moving and ``mapper audit verify`` remains the place where bad rows are
reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from llama_mapper.audit.events import MappingEvent

#: Kinds shipped under their own name; every other kind ships as ``other``.
KNOWN_KINDS = frozenset({"mapping", "tombstone"})
OTHER_KIND = "other"
#: ``versions`` keys that get a column of their own (all keys are kept in ``versions``).
VERSION_COLUMNS = {
    "taxonomy": "taxonomy_version",
    "frameworks": "frameworks_version",
    "detector_pack": "detector_pack_version",
    "model": "model_version",
}

#: Insert order of the ClickHouse ``events`` columns (see :mod:`llama_mapper.analytics.ddl`).
COLUMNS = (
    "tenant_id",
    "ts",
    "seq",
    "event_id",
    "kind",
    "request_id",
    "route",
    "detector",
    "detector_version",
    "labels",
    "scores",
    "methods",
    "confidence",
    "controls",
    "taxonomy_version",
    "frameworks_version",
    "detector_pack_version",
    "model_version",
    "versions",
    "output_fingerprint",
    "fingerprint_version",
)


@dataclass(frozen=True)
class ChainRow:
    """The columns of one ``audit_events`` row the shipper reads."""

    tenant_id: str
    seq: int
    event_id: str
    ts: str
    kind: str
    detector: str
    body: str


@dataclass
class Converted:
    """Rows ready to insert, and how many chain rows shipped as ``other`` or not at all."""

    rows: list[tuple[Any, ...]]
    other: int = 0
    skipped: int = 0


def convert(chain_rows: list[ChainRow]) -> Converted:
    """ClickHouse rows for ``chain_rows`` (in order); see the module docstring."""
    result = Converted(rows=[])
    for chain_row in chain_rows:
        ts = parse_ts(chain_row.ts)
        if ts is None:
            result.skipped += 1  # no time, no partition: nothing meaningful to ship
            continue
        event = _mapping_event(chain_row)
        if event is not None:
            result.rows.append(_full_row(chain_row, ts, event))
            continue
        kind = chain_row.kind if chain_row.kind in KNOWN_KINDS - {"mapping"} else OTHER_KIND
        result.other += kind == OTHER_KIND
        result.rows.append(_bare_row(chain_row, ts, kind))
    return result


def parse_ts(value: str) -> datetime | None:
    """The event time as an aware UTC datetime; ``None`` when it is not ISO-8601."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _mapping_event(chain_row: ChainRow) -> MappingEvent | None:
    if chain_row.kind != "mapping":
        return None
    try:
        data = orjson.loads(chain_row.body)
        event = MappingEvent.from_dict(data)
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None
    if event.tenant_id != chain_row.tenant_id or event.kind != "mapping":
        return None
    return event


def _full_row(chain_row: ChainRow, ts: datetime, event: MappingEvent) -> tuple[Any, ...]:
    labels = list(event.labels)
    versions = {key: value for key, value in event.versions.items() if value is not None}
    return (
        chain_row.tenant_id,
        ts,
        chain_row.seq,
        event.event_id,
        "mapping",
        event.request_id,
        event.route,
        event.detector,
        event.detector_version or "",
        labels,
        [float(event.scores.get(label, 0.0)) for label in labels],
        [str(event.methods.get(label, "")) for label in labels],
        float(event.confidence),
        list(event.controls),
        *(_version(versions, key) for key in VERSION_COLUMNS),
        versions,
        event.output_fingerprint,
        event.fingerprint_version,
    )


def _bare_row(chain_row: ChainRow, ts: datetime, kind: str) -> tuple[Any, ...]:
    """Ids and time only: an unknown body is never copied, not even in part."""
    return (
        chain_row.tenant_id,
        ts,
        chain_row.seq,
        chain_row.event_id,
        kind,
        "",
        "",
        chain_row.detector if kind != OTHER_KIND else "",
        "",
        [],
        [],
        [],
        0.0,
        [],
        "",
        "",
        "",
        "",
        {},
        "",
        "",
    )


def _version(versions: Mapping[str, str], key: str) -> str:
    return versions.get(key, "")
