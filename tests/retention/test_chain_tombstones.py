"""The pure chain rules for a chain cut by retention (no database)."""

from __future__ import annotations

import dataclasses

import pytest
from tests.audit.store_support import make_event

from llama_mapper.audit.chain import (
    GENESIS_HASH,
    ChainVerifier,
    StoredEvent,
    chain_hash,
    verify_chain,
    verify_whole_chain,
)
from llama_mapper.audit.events import ChainEvent, Tombstone, event_from_dict


def _chain(events: list[ChainEvent], prev: str = GENESIS_HASH, seq: int = 0) -> list[StoredEvent]:
    stored = []
    for event in events:
        seq += 1
        digest = chain_hash(prev, event)
        stored.append(StoredEvent(seq, prev, digest, event))
        prev = digest
    return stored


def _tombstone(first: int, last: int, last_hash: str, n: int = 0) -> Tombstone:
    return Tombstone(
        event_id=f"t{n}",
        tenant_id="acme",
        ts="2026-12-01T00:00:00Z",
        first_seq=first,
        last_seq=last,
        count=last - first + 1,
        last_hash=last_hash,
        cutoff="2025-10-27T00:00:00Z",
        reason="retention: 400 days (default policy)",
    )


def _cut_chain(deleted: int = 3, total: int = 6) -> list[StoredEvent]:
    full = _chain([make_event("acme", n) for n in range(total)])
    head = full[-1]
    tomb = _chain([_tombstone(1, deleted, full[deleted - 1].hash)], head.hash, head.seq)
    return full[deleted:] + tomb


def test_a_cut_chain_verifies_only_from_right_after_its_tombstone() -> None:
    chain = _cut_chain()
    assert verify_whole_chain(chain).ok
    assert not verify_chain(chain).ok  # the plain check still wants seq 1
    missing = verify_whole_chain(chain[1:])
    assert (missing.ok, missing.first_broken_seq) == (False, 4)
    assert verify_chain(chain[1:], chain[1].prev_hash).ok  # a --since range: trusted start


def test_tombstones_must_match_and_name_only_deleted_seqs() -> None:
    chain = _cut_chain()
    tomb = chain[-1]
    assert isinstance(tomb.event, Tombstone)
    # Claims to have deleted a kept event (and its hash recomputes): refused.
    greedy = dataclasses.replace(tomb.event, last_seq=4, count=4)
    forged = StoredEvent(tomb.seq, tomb.prev_hash, chain_hash(tomb.prev_hash, greedy), greedy)
    assert not verify_whole_chain([*chain[:-1], forged]).ok
    # A newer tombstone appended without deleting anything: the chain no longer starts
    # where the newest deletion says, so it breaks at the start it expects (seq 6).
    bogus = _chain([_tombstone(1, 5, "ab" * 32, 1)], tomb.hash, tomb.seq)
    result = verify_whole_chain([*chain, *bogus])
    assert (result.ok, result.first_broken_seq) == (False, 6)
    with pytest.raises(TypeError):
        ChainVerifier.after_deletion(chain[0])


def test_tombstone_shape_is_strict() -> None:
    tomb = _tombstone(1, 3, "ab" * 32)
    assert event_from_dict(tomb.to_dict()) == tomb
    cases = [
        ({"count": 2}, "counts every seq"),
        ({"last_seq": 0}, "positive"),
        ({"last_hash": "xy"}, "last_hash"),
        ({"cutoff": "yesterday"}, "ISO-8601"),
    ]
    for change, problem in cases:
        with pytest.raises(ValueError, match=problem):
            event_from_dict({**tomb.to_dict(), **change})
    with pytest.raises(ValueError, match="exactly the fields"):
        event_from_dict({**tomb.to_dict(), "extra": 1})
    # A mapping event cannot pose as a tombstone, nor carry plaintext metadata.
    with pytest.raises(ValueError, match="kind must be"):
        event_from_dict({**make_event("acme", 1).to_dict(), "kind": "note"})
    with pytest.raises(ValueError, match="metadata must be"):
        event_from_dict({**make_event("acme", 1).to_dict(), "metadata": {"ticket": "T-1"}})


def test_events_without_metadata_hash_as_before() -> None:
    event = make_event("acme", 1)
    assert "metadata" not in event.to_dict()
    sealed = {"fields": {"ticket": {"nonce": "AAAA", "ct": "BBBB"}}}
    kept = dataclasses.replace(event, metadata=sealed, metadata_key=("local:x", "w1"))
    assert kept.to_dict()["metadata"] == sealed
    # The wrapped key is not part of the hashed form: re-wrapping keeps the hash.
    rewrapped = dataclasses.replace(kept, metadata_key=("local:y", "w2"))
    assert chain_hash(GENESIS_HASH, kept) == chain_hash(GENESIS_HASH, rewrapped)
    assert event_from_dict(kept.to_dict()) == kept
