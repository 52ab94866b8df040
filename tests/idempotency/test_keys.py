"""Scope names and fingerprints: digests only, stable across harmless reformatting."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from llama_mapper.idempotency import fingerprint, scope_key, valid_idempotency_key


def test_fingerprint_is_canonical_json() -> None:
    a = fingerprint(b'{"b": 1, "a": {"y": [1, 2], "x": null}}')
    b = fingerprint(b'{"a":{"x":null,"y":[1,2]},"b":1}')
    assert a == b
    assert a == hashlib.sha256(b'{"a":{"x":null,"y":[1,2]},"b":1}').hexdigest()
    assert fingerprint(b'{"a": 1}') != fingerprint(b'{"a": 2}')
    assert fingerprint(b"[1,2]") != fingerprint(b"[2,1]")  # order of lists matters


def test_fingerprint_falls_back_to_raw_bytes() -> None:
    raw = b"\xff\xfenot json"
    assert fingerprint(raw) == hashlib.sha256(raw).hexdigest()
    assert fingerprint(b"") == hashlib.sha256(b"").hexdigest()
    huge = b'{"n": 123456789012345678901234567890}'  # beyond a double's precision
    assert fingerprint(huge) == hashlib.sha256(huge).hexdigest()
    assert fingerprint(huge) != fingerprint(b'{"n": 123456789012345678901234567891}')


@given(st.binary(max_size=200))
def test_fingerprint_never_raises(body: bytes) -> None:
    value = fingerprint(body)
    assert len(value) == 64
    int(value, 16)


def test_scope_key_hashes_the_client_key() -> None:
    key = "order-42:\r\nSET x"
    scope = scope_key("acme", "/v1/map", key)
    assert key not in scope
    assert scope == f"acme:%2Fv1%2Fmap:{hashlib.sha256(key.encode()).hexdigest()}"
    # Separators in the tenant or route cannot make two scopes collide.
    assert scope_key("a:b", "c", "k") != scope_key("a", "b:c", "k")
    assert scope_key("t", "/r", "k1") != scope_key("t", "/r", "k2")
    assert scope_key("t1", "/r", "k") != scope_key("t2", "/r", "k")


def test_valid_idempotency_key() -> None:
    assert valid_idempotency_key("a")
    assert valid_idempotency_key("x" * 255)
    assert valid_idempotency_key("9f1c-4b2a ~!")
    assert not valid_idempotency_key("")
    assert not valid_idempotency_key("x" * 256)
    assert not valid_idempotency_key("tab\there")
    assert not valid_idempotency_key("new\nline")
    assert not valid_idempotency_key("caf\u00e9")
    assert not valid_idempotency_key("\x7f")
