"""AES-GCM field sealing: round trip, and every wrong key or context fails closed."""

from __future__ import annotations

import base64
import copy

import pytest

from llama_mapper.crypto import DecryptionError, open_fields, seal_fields
from llama_mapper.crypto.envelope import new_dek

VALUES = {"ticket": "TCK-4471-SECRET", "priority": 3, "escalated": True, "note": None}


def test_round_trip_keeps_types() -> None:
    dek = new_dek()
    sealed = seal_fields(dek, "acme", "ev1", VALUES)
    assert set(sealed["fields"]) == set(VALUES)
    assert "TCK-4471" not in repr(sealed)
    assert open_fields(dek, "acme", "ev1", sealed) == VALUES
    # Fresh nonces: sealing the same values twice gives different ciphertexts.
    again = seal_fields(dek, "acme", "ev1", VALUES)
    assert again["fields"]["ticket"] != sealed["fields"]["ticket"]


@pytest.mark.parametrize(
    ("dek_change", "tenant", "event_id"),
    [
        ("other dek", "acme", "ev1"),
        (None, "other-tenant", "ev1"),
        (None, "acme", "ev2"),
    ],
)
def test_wrong_key_or_context_fails_closed(
    dek_change: str | None, tenant: str, event_id: str
) -> None:
    dek = new_dek()
    sealed = seal_fields(dek, "acme", "ev1", VALUES)
    key = new_dek() if dek_change else dek
    with pytest.raises(DecryptionError) as caught:
        open_fields(key, tenant, event_id, sealed)
    assert "TCK" not in str(caught.value)
    assert str(caught.value) == "kept metadata could not be decrypted"


def test_moved_or_altered_ciphertexts_fail() -> None:
    dek = new_dek()
    sealed = seal_fields(dek, "acme", "ev1", {"a": "x1", "b": "x2"})
    swapped = copy.deepcopy(sealed)
    swapped["fields"]["a"], swapped["fields"]["b"] = sealed["fields"]["b"], sealed["fields"]["a"]
    with pytest.raises(DecryptionError):
        open_fields(dek, "acme", "ev1", swapped)  # field names are bound too
    flipped = copy.deepcopy(sealed)
    raw = bytearray(base64.b64decode(flipped["fields"]["a"]["ct"]))
    raw[0] ^= 1
    flipped["fields"]["a"]["ct"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(DecryptionError):
        open_fields(dek, "acme", "ev1", flipped)
    with pytest.raises(DecryptionError):
        open_fields(dek, "acme", "ev1", {"fields": {"a": {"nonce": "!!", "ct": "??"}}})
