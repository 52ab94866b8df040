"""Canonical form, chain hash and verification of the evidence chain (no database)."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from tests.audit.store_support import make_event

from llama_mapper.audit import (
    GENESIS_HASH,
    MappingEvent,
    StoredEvent,
    canonical_bytes,
    chain_hash,
    verify_chain,
)


def _chain(n: int = 5) -> list[StoredEvent]:
    stored, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        event = make_event("t1", seq)
        digest = chain_hash(prev, event)
        stored.append(StoredEvent(seq, prev, digest, event))
        prev = digest
    return stored


def _with_score(event: MappingEvent, score: float) -> MappingEvent:
    return dataclasses.replace(event, scores={**event.scores, "PII.EMAIL": score})


def test_canonical_bytes_do_not_depend_on_key_order_or_int_vs_float() -> None:
    a = make_event("t1", 1)
    b = dataclasses.replace(
        a,
        scores={"HARM.VIOLENCE": 0.25, "PII.EMAIL": 0.5},
        methods=dict(reversed(a.methods.items())),
    )
    assert canonical_bytes(a) == canonical_bytes(b)
    assert canonical_bytes(dataclasses.replace(a, confidence=1)) == canonical_bytes(
        dataclasses.replace(a, confidence=1.0)
    )
    shuffled = dict(reversed(a.to_dict().items()))
    assert MappingEvent.from_dict(shuffled) == a
    assert canonical_bytes(MappingEvent.from_dict(shuffled)) == canonical_bytes(a)


def test_chain_hash_known_answer() -> None:
    event = make_event("t1", 1)
    expected_json = (
        '{"confidence":0.9,"controls":["GDPR:Art.32","SOC2:CC6.1"],"detector":"llama-guard",'
        '"detector_version":"3.1","event_id":"t1-ev-1","fingerprint_version":"k1",'
        '"kind":"mapping","labels":["HARM.VIOLENCE","PII.EMAIL"],'
        '"methods":{"HARM.VIOLENCE":"fuzzy","PII.EMAIL":"direct"},'
        f'"output_fingerprint":"{hashlib.sha256(b"out-1").hexdigest()}",'
        '"request_id":"req-1","route":"/map",'
        '"scores":{"HARM.VIOLENCE":0.25,"PII.EMAIL":0.5},"tenant_id":"t1",'
        '"ts":"2026-01-01T00:00:01Z",'
        '"versions":{"frameworks":"2026.1","model":null,"taxonomy":"2026.1"}}'
    )
    assert canonical_bytes(event) == expected_json.encode()
    expected = hashlib.sha256(("0" * 64 + "\n" + expected_json).encode()).hexdigest()
    assert chain_hash(GENESIS_HASH, event) == expected
    # Pinned, so any change to the canonical form is a deliberate, visible one.
    assert expected == "a2094bd23d7dd74c6dccfb3bd401bf21b512da3152e48d07c094f8125b29b200"


def test_intact_chain_verifies() -> None:
    result = verify_chain(_chain())
    assert (result.ok, result.checked, result.first_broken_seq) == (True, 5, None)
    assert verify_chain([]).ok


def test_a_range_verifies_from_its_first_prev_hash() -> None:
    chain = _chain()
    assert not verify_chain(chain[2:]).ok  # does not start at the genesis
    result = verify_chain(chain[2:], expected_prev=chain[2].prev_hash)
    assert result.ok
    assert result.checked == 3


def test_changed_score_is_found() -> None:
    chain = _chain()
    chain[2] = dataclasses.replace(chain[2], event=_with_score(chain[2].event, 0.99))
    result = verify_chain(chain)
    assert (result.ok, result.first_broken_seq) == (False, 3)
    assert "hash" in result.reason


def test_deleted_event_is_found() -> None:
    chain = _chain()
    del chain[1]
    result = verify_chain(chain)
    assert (result.ok, result.first_broken_seq) == (False, 2)
    assert "expected seq 2" in result.reason


def test_deleted_first_event_is_found() -> None:
    result = verify_chain(_chain()[1:])
    assert (result.ok, result.first_broken_seq) == (False, 1)


def test_reordered_events_are_found() -> None:
    chain = _chain()
    chain[1], chain[2] = chain[2], chain[1]
    result = verify_chain(chain)
    assert (result.ok, result.first_broken_seq) == (False, 2)


def test_changed_prev_hash_is_found() -> None:
    chain = _chain()
    chain[3] = dataclasses.replace(chain[3], prev_hash="f" * 64)
    result = verify_chain(chain)
    assert (result.ok, result.first_broken_seq) == (False, 4)
    assert "prev_hash" in result.reason


def test_recomputed_hash_without_relinking_breaks_the_next_link() -> None:
    chain = _chain()
    forged = _with_score(chain[1].event, 0.99)
    chain[1] = dataclasses.replace(
        chain[1], event=forged, hash=chain_hash(chain[1].prev_hash, forged)
    )
    result = verify_chain(chain)
    assert (result.ok, result.first_broken_seq) == (False, 3)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("output_fingerprint", "the raw detector output"),
        ("ts", "2026-01-01T00:00:00+02:00"),
        ("ts", "yesterday"),
        ("controls", ("SOC2:CC6.1", "GDPR:Art.32")),
        ("kind", "other"),
        ("tenant_id", ""),
    ],
)
def test_invalid_events_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(make_event("t1", 1), **{field: value})


def test_from_dict_is_strict() -> None:
    data = make_event("t1", 1).to_dict()
    with pytest.raises(ValueError, match="unknown"):
        MappingEvent.from_dict({**data, "raw_text": "secret"})
    with pytest.raises(ValueError, match="must be a number"):
        MappingEvent.from_dict({**data, "scores": {"PII.EMAIL": "high"}})
    with pytest.raises(ValueError, match="list of strings"):
        MappingEvent.from_dict({**data, "labels": "PII.EMAIL"})
