"""The per-tenant hash chain that makes the evidence store tamper-evident.

Each event's hash covers the previous event's hash and the event's canonical bytes, so
changing, deleting, inserting or reordering any stored event breaks every later link. The
procedure is deliberately simple (SHA-256 over ``prev_hash + "\\n" + canonical JSON``) so an
auditor can re-run it offline from an export without this package (see
``docs/audit-verification.md``).

What the chain cannot show on its own: that the newest events were not cut off together
with the head row. Anchoring heads outside the database closes that gap later.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from llama_mapper.audit.events import MappingEvent

#: ``prev_hash`` of the first event of every tenant's chain.
GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class StoredEvent:
    """An event with its place in the tenant's chain."""

    seq: int
    prev_hash: str
    hash: str
    event: MappingEvent


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    #: Events examined, including the broken one when ``ok`` is false.
    checked: int
    first_broken_seq: int | None
    reason: str


def canonical_bytes(event: MappingEvent) -> bytes:
    """The exact bytes that are hashed: sorted-key compact JSON of :meth:`to_dict`.

    orjson's float formatting (shortest round-trip) is part of the format, which is why the
    offline procedure uses orjson too rather than the standard ``json`` module.
    """
    return orjson.dumps(event.to_dict(), option=orjson.OPT_SORT_KEYS)


def chain_hash(prev_hash: str, event: MappingEvent) -> str:
    """``sha256(prev_hash + "\\n" + canonical_bytes(event))`` as lowercase hex."""
    return body_hash(prev_hash, canonical_bytes(event))


def body_hash(prev_hash: str, body: bytes) -> str:
    """:func:`chain_hash` for an event already serialized (the store keeps the same bytes)."""
    return hashlib.sha256(prev_hash.encode() + b"\n" + body).hexdigest()


class ChainVerifier:
    """Checks a chain one event at a time, so a long chain can be streamed, not loaded.

    The first event must link to ``expected_prev``; when that is :data:`GENESIS_HASH` it
    must also be seq 1. After that every seq must follow the previous one, every
    ``prev_hash`` must equal the previous ``hash`` and every ``hash`` must recompute.
    """

    def __init__(self, expected_prev: str = GENESIS_HASH) -> None:
        self.expected_prev = expected_prev
        self.expected_seq: int | None = 1 if expected_prev == GENESIS_HASH else None
        self.checked = 0
        self.last: StoredEvent | None = None
        self.failure: VerifyResult | None = None

    def feed(self, stored: StoredEvent) -> bool:
        """Check ``stored``; ``False`` (and :attr:`failure` set) once the chain is broken."""
        if self.failure is not None:
            return False
        self.checked += 1
        if self.expected_seq is not None and stored.seq != self.expected_seq:
            return self.fail(
                self.expected_seq, f"expected seq {self.expected_seq}, found seq {stored.seq}"
            )
        if stored.prev_hash != self.expected_prev:
            return self.fail(stored.seq, "prev_hash does not link to the previous event")
        if chain_hash(stored.prev_hash, stored.event) != stored.hash:
            return self.fail(stored.seq, "hash does not match the event's content")
        self.expected_seq = stored.seq + 1
        self.expected_prev = stored.hash
        self.last = stored
        return True

    def fail(self, seq: int, reason: str) -> bool:
        self.failure = VerifyResult(False, self.checked, seq, reason)
        return False

    def result(self) -> VerifyResult:
        if self.failure is not None:
            return self.failure
        return VerifyResult(True, self.checked, None, "ok")


def verify_chain(events: Iterable[StoredEvent], expected_prev: str = GENESIS_HASH) -> VerifyResult:
    """Verify ``events`` (in the order given) as one unbroken piece of a chain.

    For a whole chain leave ``expected_prev`` at :data:`GENESIS_HASH`. For a range that
    starts later (e.g. ``--since``), pass the ``prev_hash`` of the first event: the link
    into the range is then taken on trust, but everything inside it is fully checked.
    """
    verifier = ChainVerifier(expected_prev)
    for stored in events:
        if not verifier.feed(stored):
            break
    return verifier.result()
