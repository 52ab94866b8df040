"""AES-256-GCM sealing of kept metadata values under a data key (DEK).

Each field gets its own random 96-bit nonce, and its associated data binds the tenant, the
event id and the field name, so a ciphertext copied into another event, tenant or field
fails to open instead of being shown in the wrong place. Values are JSON-encoded first
(metadata values are strings, numbers, booleans or null). Failures raise
:class:`DecryptionError` with a fixed message: never a value, never key material.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

DEK_BYTES = 32
NONCE_BYTES = 12
_AAD_PREFIX = b"llama-mapper/metadata/v1"


class DecryptionError(ValueError):
    """Sealed data could not be opened: wrong key, wrong context, or altered bytes."""


def new_dek() -> bytes:
    return AESGCM.generate_key(bit_length=8 * DEK_BYTES)


def field_aad(tenant_id: str, event_id: str, name: str) -> bytes:
    return b"\x00".join((_AAD_PREFIX, tenant_id.encode(), event_id.encode(), name.encode()))


def seal_fields(
    dek: bytes, tenant_id: str, event_id: str, values: Mapping[str, Any]
) -> dict[str, Any]:
    """``{"fields": {name: {"nonce", "ct"}}}`` (base64) for the event body."""
    cipher = AESGCM(dek)
    fields: dict[str, dict[str, str]] = {}
    for name in sorted(values):
        nonce = os.urandom(NONCE_BYTES)
        plaintext = orjson.dumps(values[name])
        sealed = cipher.encrypt(nonce, plaintext, field_aad(tenant_id, event_id, name))
        fields[name] = {"nonce": _b64(nonce), "ct": _b64(sealed)}
    return {"fields": fields}


def open_fields(
    dek: bytes, tenant_id: str, event_id: str, sealed: Mapping[str, Any]
) -> dict[str, Any]:
    """The plaintext values of :func:`seal_fields` output; :class:`DecryptionError` else."""
    try:
        cipher = AESGCM(dek)
        values: dict[str, Any] = {}
        for name, item in sealed["fields"].items():
            nonce = base64.b64decode(item["nonce"], validate=True)
            data = base64.b64decode(item["ct"], validate=True)
            plaintext = cipher.decrypt(nonce, data, field_aad(tenant_id, event_id, name))
            values[name] = orjson.loads(plaintext)
    except (InvalidTag, KeyError, TypeError, ValueError, binascii.Error):
        raise DecryptionError("kept metadata could not be decrypted") from None
    return values


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
