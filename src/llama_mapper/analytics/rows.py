"""Turn a committed chain row into one ClickHouse row: derived values only, never content.

The chain row's ``body`` is the canonical event JSON. Only the fields listed in
:data:`COLUMNS` are copied out of it, one by one, so whatever else a body might hold (a
future field, a field another event kind adds) never reaches analytics by accident.

Pure and tolerant on purpose: the shipper must never stall on one row. A ``mapping`` body
without the shape of :meth:`~llama_mapper.audit.events.MappingEvent.to_dict`, and any kind this
code does not know, ship as a bare row of ids and time (kind ``other``) and are counted, so
the cursor keeps moving and ``mapper audit verify`` remains the place where bad rows are
reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeGuard

import orjson

#: The shape MappingEvent requires of the fingerprint (hex HMAC), checked again here so a
#: tampered row cannot carry text into the one field derived from the raw output.
_FINGERPRINT = re.compile(r"[0-9a-f]{64,128}")
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
    #: ``(tenant, first_seq, last_seq)`` of every tombstone: ranges retention deleted from
    #: the chain, to be deleted from ClickHouse too.
    deletions: list[tuple[str, int, int]] = field(default_factory=list)


def convert(chain_rows: list[ChainRow]) -> Converted:
    """ClickHouse rows for ``chain_rows`` (in order); see the module docstring."""
    result = Converted(rows=[])
    for chain_row in chain_rows:
        ts = parse_ts(chain_row.ts)
        if ts is None:
            result.skipped += 1  # no time, no partition: nothing meaningful to ship
            continue
        row = _mapping_row(chain_row, ts)
        if row is not None:
            result.rows.append(row)
            continue
        kind = chain_row.kind if chain_row.kind in KNOWN_KINDS - {"mapping"} else OTHER_KIND
        if kind == "tombstone":
            deleted = _tombstone_range(chain_row)
            if deleted is not None:
                result.deletions.append((chain_row.tenant_id, *deleted))
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


def _mapping_row(chain_row: ChainRow, ts: datetime) -> tuple[Any, ...] | None:
    """The full row of a well-formed ``mapping`` body; ``None`` for anything else.

    The shape checks are those of :meth:`MappingEvent.from_dict` that matter here (types a
    ClickHouse insert would choke on, the fingerprint being a hex digest, the body belonging
    to the row's tenant), done inline: a full rebuild of every event would be most of the
    shipping cost. Only the fields named here are read; nothing else leaves the body.
    """
    if chain_row.kind != "mapping":
        return None
    try:
        data = orjson.loads(chain_row.body)
        if (
            not isinstance(data, dict)
            or data.get("kind") != "mapping"
            or data.get("tenant_id") != chain_row.tenant_id
            or not _FINGERPRINT.fullmatch(_text(data["output_fingerprint"]))
        ):
            return None
        labels = _texts(data["labels"])
        scores = _mapping(data["scores"])
        methods = _mapping(data["methods"])
        versions = {
            _text(key): _text(value)
            for key, value in _mapping(data["versions"]).items()
            if value is not None
        }
        version = data["detector_version"]
        return (
            chain_row.tenant_id,
            ts,
            chain_row.seq,
            _text(data["event_id"]),
            "mapping",
            _text(data["request_id"]),
            _text(data["route"]),
            _text(data["detector"]),
            "" if version is None else _text(version),
            labels,
            [_number(scores.get(label, 0.0)) for label in labels],
            [_text(methods.get(label, "")) for label in labels],
            _number(data["confidence"]),
            _texts(data["controls"]),
            *(versions.get(key, "") for key in VERSION_COLUMNS),
            versions,
            data["output_fingerprint"],
            _text(data["fingerprint_version"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


def _tombstone_range(chain_row: ChainRow) -> tuple[int, int] | None:
    """The seq range a tombstone says retention deleted; ``None`` if the body is not one."""
    try:
        data = orjson.loads(chain_row.body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("tenant_id") != chain_row.tenant_id:
        return None
    first, last = data.get("first_seq"), data.get("last_seq")
    if not (_seq(first) and _seq(last)) or last < first or last >= chain_row.seq:
        return None  # a tombstone only covers events before it
    return first, last


def _seq(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def _texts(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TypeError("not a list of strings")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("not a number")
    return float(value)


def _mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError("not an object")
    return value


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
