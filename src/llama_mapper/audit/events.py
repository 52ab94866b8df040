"""The audit record of one mapping: labels, scores, ids and versions, never raw content.

An auditor must be able to show *what* the mapper decided and *with which* taxonomy,
frameworks, detector pack and model, without the evidence store becoming a second copy of
the sensitive text it classified. So an event carries only derived values plus a keyed
fingerprint (HMAC) of the raw output: whoever holds the key can prove that a given output
produced the event, and nobody can read the output back from the store.

:func:`MappingEvent.to_dict` is the one serialised form: it is what gets hashed into the
chain (see :mod:`llama_mapper.audit.chain`), stored as the row body and exported, so it is
kept stable (plain JSON types, floats always floats) and :meth:`MappingEvent.from_dict`
rejects anything that would not serialise back to the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeAlias

#: An HMAC digest in lowercase hex (SHA-256 or longer). Checking the shape keeps raw text
#: from being smuggled into the one field that is derived from the raw output.
_FINGERPRINT = re.compile(r"[0-9a-f]{64,128}")
_KINDS = frozenset({"mapping"})
_HEX64 = re.compile(r"[0-9a-f]{64}")
#: A kept metadata field's name: it is stored in clear (only its value is encrypted), so
#: it must come from configuration, and this shape keeps text out of it.
FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


@dataclass(frozen=True)
class MappingEvent:
    """One mapping decision as the evidence store keeps it (see the module docstring)."""

    event_id: str
    tenant_id: str
    request_id: str
    #: ISO-8601 UTC, kept exactly as given: the string is hashed, and range queries compare
    #: it as text, so producers should always write the same format.
    ts: str
    route: str
    detector: str
    detector_version: str | None
    labels: tuple[str, ...]
    scores: Mapping[str, float]
    confidence: float
    methods: Mapping[str, str]
    #: taxonomy, frameworks, detector_pack, model, score_rules (``None`` when not used).
    versions: Mapping[str, str | None]
    #: Sorted unique ``FRAMEWORK:ID`` references the labels map to.
    controls: tuple[str, ...]
    #: HMAC (hex) of the raw detector output and the version of the key that made it.
    output_fingerprint: str
    fingerprint_version: str
    kind: str = "mapping"
    #: Kept metadata, encrypted (see :mod:`llama_mapper.crypto`): ``{"fields": {name:
    #: {"nonce", "ct"}}}`` in base64. Hashed into the chain with the event; absent (and
    #: left out of :meth:`to_dict`, so older events hash as before) when nothing is kept.
    metadata: Mapping[str, Any] | None = None
    #: ``(kek_id, wrapped DEK)`` of :attr:`metadata`: stored in ``audit_deks``, never in
    #: the body, so re-wrapping under a new KEK leaves the chain hash unchanged. Only set
    #: on events about to be appended; events read back from the store carry ``None``.
    metadata_key: tuple[str, str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("event_id", "tenant_id", "request_id", "route", "detector"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string")
        _check_utc(self.ts)
        if self.kind not in _KINDS:
            raise ValueError(f"kind must be one of {sorted(_KINDS)}, not {self.kind!r}")
        if not _FINGERPRINT.fullmatch(self.output_fingerprint):
            raise ValueError("output_fingerprint must be a lowercase hex HMAC digest")
        if not isinstance(self.fingerprint_version, str) or not self.fingerprint_version:
            raise ValueError("fingerprint_version must be a non-empty string")
        if list(self.controls) != sorted(set(self.controls)):
            raise ValueError("controls must be sorted and unique")
        if self.metadata is not None:
            _check_sealed(self.metadata)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form that is hashed, stored and exported.

        Numbers are coerced to ``float`` so that ``1`` and ``1.0`` cannot hash differently,
        and sequences become lists so the form survives a JSON round trip unchanged.
        """
        return {
            "kind": self.kind,
            "event_id": self.event_id,
            "tenant_id": self.tenant_id,
            "request_id": self.request_id,
            "ts": self.ts,
            "route": self.route,
            "detector": self.detector,
            "detector_version": self.detector_version,
            "labels": list(self.labels),
            "scores": {str(k): float(v) for k, v in self.scores.items()},
            "confidence": float(self.confidence),
            "methods": {str(k): str(v) for k, v in self.methods.items()},
            "versions": {str(k): None if v is None else str(v) for k, v in self.versions.items()},
            "controls": list(self.controls),
            "output_fingerprint": self.output_fingerprint,
            "fingerprint_version": self.fingerprint_version,
            **({"metadata": _sealed_dict(self.metadata)} if self.metadata else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MappingEvent:
        """Rebuild an event from :meth:`to_dict` output; ``ValueError`` on any other shape.

        Strict on purpose: unknown keys or wrong types in a stored body mean the row was not
        written by this code, which verification must report rather than paper over.
        """
        if not isinstance(data, Mapping):
            raise ValueError("an event must be a JSON object")
        unknown = set(data) - _FIELDS - {"metadata"}
        missing = _FIELDS - set(data)
        if unknown or missing:
            raise ValueError(
                f"event fields differ: unknown {sorted(unknown)}, missing {sorted(missing)}"
            )
        return cls(
            event_id=_str(data, "event_id"),
            tenant_id=_str(data, "tenant_id"),
            request_id=_str(data, "request_id"),
            ts=_str(data, "ts"),
            route=_str(data, "route"),
            detector=_str(data, "detector"),
            detector_version=_opt_str(data["detector_version"], "detector_version"),
            labels=tuple(_str_list(data, "labels")),
            scores={k: _number(v, f"scores.{k}") for k, v in _object(data, "scores").items()},
            confidence=_number(data["confidence"], "confidence"),
            methods={k: _text(v, f"methods.{k}") for k, v in _object(data, "methods").items()},
            versions={
                k: _opt_str(v, f"versions.{k}") for k, v in _object(data, "versions").items()
            },
            controls=tuple(_str_list(data, "controls")),
            output_fingerprint=_str(data, "output_fingerprint"),
            fingerprint_version=_str(data, "fingerprint_version"),
            kind=_str(data, "kind"),
            metadata=_object(data, "metadata") if "metadata" in data else None,
        )


_FIELDS = frozenset(
    {
        "kind",
        "event_id",
        "tenant_id",
        "request_id",
        "ts",
        "route",
        "detector",
        "detector_version",
        "labels",
        "scores",
        "confidence",
        "methods",
        "versions",
        "controls",
        "output_fingerprint",
        "fingerprint_version",
    }
)


@dataclass(frozen=True)
class Tombstone:
    """The record a retention run leaves in the chain for the events it deleted.

    Appended at the head like any event, so the chain after it stays fully linked, and the
    surviving part of the chain (which starts at ``last_seq + 1``) is tied to it: that
    event's ``prev_hash`` must equal :attr:`last_hash`. Verification accepts a chain that
    starts right after the newest tombstone's range and nothing else (see
    :class:`~llama_mapper.audit.chain.ChainVerifier`). Holds no event data: seqs, a count,
    one hash, the cutoff and why.
    """

    event_id: str
    tenant_id: str
    #: ISO-8601 UTC, when the deletion happened.
    ts: str
    #: The deleted seq range ``[first_seq, last_seq]``; every row in it was deleted.
    first_seq: int
    last_seq: int
    count: int
    #: ``hash`` of event ``last_seq``: the ``prev_hash`` of the first surviving event.
    last_hash: str
    #: Events older than this (ISO-8601 UTC) were due for deletion.
    cutoff: str
    reason: str
    kind: str = "tombstone"

    def __post_init__(self) -> None:
        for name in ("event_id", "tenant_id", "reason"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string")
        _check_utc(self.ts)
        _check_utc(self.cutoff)
        if self.kind != "tombstone":
            raise ValueError("a tombstone's kind is 'tombstone'")
        for name in ("first_seq", "last_seq", "count"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer")
        if self.last_seq < self.first_seq or self.count != self.last_seq - self.first_seq + 1:
            raise ValueError("a tombstone covers first_seq..last_seq and counts every seq in it")
        if not _HEX64.fullmatch(self.last_hash):
            raise ValueError("last_hash must be a 64-digit lowercase hex hash")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "event_id": self.event_id,
            "tenant_id": self.tenant_id,
            "ts": self.ts,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "count": self.count,
            "last_hash": self.last_hash,
            "cutoff": self.cutoff,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tombstone:
        if not isinstance(data, Mapping) or set(data) != _TOMBSTONE_FIELDS:
            raise ValueError(f"a tombstone has exactly the fields {sorted(_TOMBSTONE_FIELDS)}")
        return cls(
            event_id=_str(data, "event_id"),
            tenant_id=_str(data, "tenant_id"),
            ts=_str(data, "ts"),
            first_seq=_int(data, "first_seq"),
            last_seq=_int(data, "last_seq"),
            count=_int(data, "count"),
            last_hash=_str(data, "last_hash"),
            cutoff=_str(data, "cutoff"),
            reason=_str(data, "reason"),
            kind=_str(data, "kind"),
        )


#: What a chain holds: mapping decisions and the tombstones of deleted ones.
ChainEvent: TypeAlias = MappingEvent | Tombstone

_TOMBSTONE_FIELDS = frozenset(
    {
        "kind",
        "event_id",
        "tenant_id",
        "ts",
        "first_seq",
        "last_seq",
        "count",
        "last_hash",
        "cutoff",
        "reason",
    }
)


def event_from_dict(data: Mapping[str, Any]) -> ChainEvent:
    """Rebuild any chain event from its ``to_dict`` form, by ``kind``; ``ValueError`` else."""
    if not isinstance(data, Mapping):
        raise ValueError("an event must be a JSON object")
    if data.get("kind") == "tombstone":
        return Tombstone.from_dict(data)
    return MappingEvent.from_dict(data)


def _check_sealed(metadata: Mapping[str, Any]) -> None:
    """Only the sealed shape is accepted, so a plaintext value cannot ride along."""
    if not isinstance(metadata, Mapping) or set(metadata) != {"fields"}:
        raise ValueError("metadata must be {'fields': {name: {'nonce', 'ct'}}}")
    fields = metadata["fields"]
    if not isinstance(fields, Mapping) or not fields:
        raise ValueError("metadata.fields must be a non-empty object")
    for name, sealed in fields.items():
        if not isinstance(name, str) or not FIELD_NAME.fullmatch(name):
            raise ValueError("metadata field names must be configured identifiers")
        if not isinstance(sealed, Mapping) or set(sealed) != {"nonce", "ct"}:
            raise ValueError(f"metadata.fields.{name} must be {{'nonce', 'ct'}}")
        for part in ("nonce", "ct"):
            value = sealed[part]
            if not isinstance(value, str) or not value or not _B64.fullmatch(value):
                raise ValueError(f"metadata.fields.{name}.{part} must be base64")


def _sealed_dict(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "fields": {
            str(name): {"nonce": str(sealed["nonce"]), "ct": str(sealed["ct"])}
            for name, sealed in metadata["fields"].items()
        }
    }


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be an integer")
    return value


def _check_utc(ts: object) -> None:
    if not isinstance(ts, str):
        raise ValueError("ts must be an ISO-8601 string")
    try:
        parsed = datetime.fromisoformat(ts)
    except ValueError:
        raise ValueError(f"ts {ts!r} is not ISO-8601") from None
    if parsed.utcoffset() != timedelta(0):
        raise ValueError(f"ts {ts!r} must be UTC (Z or +00:00)")


def _str(data: Mapping[str, Any], key: str) -> str:
    return _text(data[key], key)


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _opt_str(value: Any, key: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key} must be a string or null")
    return value


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number")
    return float(value)


def _object(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data[key]
    if not isinstance(value, Mapping):
        raise ValueError(f"{key} must be an object")
    return value


def _str_list(data: Mapping[str, Any], key: str) -> list[str]:
    value = data[key]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{key} must be a list of strings")
    return value
