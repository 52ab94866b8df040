"""The per-tenant hash chain that makes the evidence store tamper-evident.

Each event's hash covers the previous event's hash and the event's canonical bytes, so
changing, deleting, inserting or reordering any stored event breaks every later link. The
procedure is deliberately simple (SHA-256 over ``prev_hash + "\\n" + canonical JSON``) so an
auditor can re-run it offline from an export without this package (see
``docs/audit-verification.md``).

What the chain cannot show on its own: that the newest events were not cut off together
with the head row. Anchoring heads outside the database closes that gap later.

Retention deletes the *oldest* events of a chain and appends a
:class:`~llama_mapper.audit.events.Tombstone` naming the deleted seq range and the hash of
the last deleted event. A chain may then start right after the newest tombstone's range,
linked to its ``last_hash`` (:meth:`ChainVerifier.after_deletion`); any other gap still
breaks verification.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson

from llama_mapper.audit.events import ChainEvent, Tombstone

#: ``prev_hash`` of the first event of every tenant's chain.
GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class StoredEvent:
    """An event with its place in the tenant's chain."""

    seq: int
    prev_hash: str
    hash: str
    event: ChainEvent


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    #: Events examined, including the broken one when ``ok`` is false.
    checked: int
    first_broken_seq: int | None
    reason: str


def canonical_bytes(event: ChainEvent) -> bytes:
    """The exact bytes that are hashed: sorted-key compact JSON of :meth:`to_dict`.

    orjson's float formatting (shortest round-trip) is part of the format, which is why the
    offline procedure uses orjson too rather than the standard ``json`` module.
    """
    return orjson.dumps(event.to_dict(), option=orjson.OPT_SORT_KEYS)


def chain_hash(prev_hash: str, event: ChainEvent) -> str:
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
        #: Where retention cut the chain: ``(seq, deleted range end, last hash)`` of the
        #: tombstone the first event must follow; checked again when that row is fed.
        self.boundary: tuple[int, int, str] | None = None
        #: Whether the start is known (seq 1 or a boundary): only then can a tombstone's
        #: range be checked against it; a range check (``--since``) trusts its first link.
        self.from_start = expected_prev == GENESIS_HASH

    @classmethod
    def after_deletion(cls, tombstone: StoredEvent) -> ChainVerifier:
        """A verifier for a chain whose oldest events were deleted by retention.

        ``tombstone`` is the tenant's newest tombstone (read ahead of the chain, since it
        sits near the head): the chain must start at its ``last_seq + 1`` with
        ``prev_hash`` equal to its ``last_hash``, and when the row at the tombstone's seq
        is fed it must be this very tombstone, so a tombstone read from an edited row or
        an edited index column cannot vouch for a gap.
        """
        event = tombstone.event
        if not isinstance(event, Tombstone):
            raise TypeError("after_deletion needs a tombstone")
        verifier = cls(event.last_hash)
        verifier.expected_seq = event.last_seq + 1
        verifier.boundary = (tombstone.seq, event.last_seq, tombstone.hash)
        verifier.from_start = True
        return verifier

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
        if not self._tombstone_fits(stored):
            return False
        self.expected_seq = stored.seq + 1
        self.expected_prev = stored.hash
        self.last = stored
        return True

    def _tombstone_fits(self, stored: StoredEvent) -> bool:
        """A tombstone may only name seqs that are gone; the boundary one must be the one
        the verifier started from."""
        event = stored.event
        boundary = self.boundary
        if boundary is not None and stored.seq == boundary[0] and stored.hash != boundary[2]:
            return self.fail(stored.seq, "the deletion this chain starts after was changed")
        if not isinstance(event, Tombstone):
            return True
        limit = self.boundary[1] if self.boundary is not None else 0
        if event.last_seq >= stored.seq or (self.from_start and event.last_seq > limit):
            return self.fail(stored.seq, "tombstone names seqs that were not deleted")
        return True

    def fail(self, seq: int, reason: str) -> bool:
        self.failure = VerifyResult(False, self.checked, seq, reason)
        return False

    def result(self) -> VerifyResult:
        if self.failure is not None:
            return self.failure
        return VerifyResult(True, self.checked, None, "ok")


def newest_tombstone(events: Iterable[StoredEvent]) -> StoredEvent | None:
    """The tombstone with the highest seq (the latest retention run), if any."""
    newest: StoredEvent | None = None
    for stored in events:
        if isinstance(stored.event, Tombstone) and (newest is None or stored.seq > newest.seq):
            newest = stored
    return newest


def verify_whole_chain(events: Sequence[StoredEvent]) -> VerifyResult:
    """Verify a tenant's whole surviving chain: from seq 1, or from right after the newest
    tombstone when retention has deleted its oldest events."""
    tombstone = newest_tombstone(events)
    verifier = ChainVerifier() if tombstone is None else ChainVerifier.after_deletion(tombstone)
    for stored in events:
        if not verifier.feed(stored):
            break
    return verifier.result()


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
