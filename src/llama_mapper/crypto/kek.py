"""Key-encryption keys (KEKs): wrap, unwrap and re-wrap data keys, by key id.

A wrapped DEK is stored with the id of the KEK version that wrapped it (``kek_id``), so
rotating the KEK never strands old data: unwrap looks that version up, and re-wrap moves
a DEK to the newest version without touching the ciphertexts it protects.

* :class:`LocalKeyWrapper` (env/file secrets, the embedded default): the KEK is the named
  secret; version ``v`` becomes ``kek_id = "local:v"`` and the AES-256-GCM key is
  ``sha256(domain + value)``. Rotate by installing a new value and moving the old one to
  ``..._PREVIOUS`` / ``<name>.previous`` (see :mod:`llama_mapper.secrets.env`).
* :class:`TransitKeyWrapper` (Vault/OpenBao): the KEK is a transit key of that name; the
  DEK is sent to ``encrypt``/``decrypt``/``rewrap`` and the key never leaves Vault.
  ``kek_id = "vault:vN"``. Rotate with ``bao write -f transit/keys/<name>/rotate``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from llama_mapper.crypto.envelope import NONCE_BYTES, DecryptionError
from llama_mapper.secrets import SecretError, SecretProvider, VaultSecretProvider

_LOCAL_DOMAIN = b"llama-mapper/kek/v1\x00"
_TRANSIT_ID = re.compile(r"vault:(v[1-9][0-9]*):[A-Za-z0-9+/=]+")


class KeyWrapper(Protocol):
    """Wraps data keys under the newest KEK version and unwraps under any known one."""

    def wrap(self, dek: bytes, tenant_id: str) -> tuple[str, str]:
        """``(kek_id, wrapped)``."""
        ...

    def unwrap(self, kek_id: str, wrapped: str, tenant_id: str) -> bytes:
        """The DEK; :class:`DecryptionError` (fail closed) when it cannot be unwrapped."""
        ...

    def rewrap(self, kek_id: str, wrapped: str, tenant_id: str) -> tuple[str, str] | None:
        """The DEK wrapped under the newest KEK, or ``None`` if it already is."""
        ...


class LocalKeyWrapper:
    """KEK versions from a SecretProvider secret (see the module docstring)."""

    def __init__(self, secrets: SecretProvider, name: str) -> None:
        self._secrets = secrets
        self._name = name

    def _key(self, version: str | None) -> tuple[str, AESGCM]:
        secret = self._secrets.get(self._name, version)
        key = hashlib.sha256(_LOCAL_DOMAIN + secret.value.encode()).digest()
        return f"local:{secret.version}", AESGCM(key)

    def wrap(self, dek: bytes, tenant_id: str) -> tuple[str, str]:
        kek_id, cipher = self._key(None)
        nonce = os.urandom(NONCE_BYTES)
        wrapped = nonce + cipher.encrypt(nonce, dek, _dek_aad(tenant_id, kek_id))
        return kek_id, base64.b64encode(wrapped).decode("ascii")

    def unwrap(self, kek_id: str, wrapped: str, tenant_id: str) -> bytes:
        if not kek_id.startswith("local:"):
            raise DecryptionError(f"data key was wrapped by another KEK backend ({_kind(kek_id)})")
        try:
            _, cipher = self._key(kek_id.removeprefix("local:"))
            raw = base64.b64decode(wrapped, validate=True)
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _dek_aad(tenant_id, kek_id))
        except SecretError:
            raise DecryptionError(f"KEK version {kek_id} is not available") from None
        except (InvalidTag, ValueError, binascii.Error):
            raise DecryptionError("data key could not be unwrapped") from None

    def rewrap(self, kek_id: str, wrapped: str, tenant_id: str) -> tuple[str, str] | None:
        newest, _ = self._key(None)
        if kek_id == newest:
            return None
        return self.wrap(self.unwrap(kek_id, wrapped, tenant_id), tenant_id)


class TransitKeyWrapper:
    """KEK versions of a Vault/OpenBao transit key (see the module docstring)."""

    def __init__(self, vault: VaultSecretProvider, name: str) -> None:
        self._vault = vault
        self._name = name

    def wrap(self, dek: bytes, tenant_id: str) -> tuple[str, str]:
        wrapped = self._vault.transit_encrypt(self._name, dek)
        return _transit_id(wrapped), wrapped

    def unwrap(self, kek_id: str, wrapped: str, tenant_id: str) -> bytes:
        if not kek_id.startswith("vault:") or _transit_id(wrapped) != kek_id:
            raise DecryptionError("data key does not match its transit key id")
        try:
            return self._vault.transit_decrypt(self._name, wrapped)
        except SecretError:
            raise DecryptionError(f"transit refused to unwrap the data key ({kek_id})") from None

    def rewrap(self, kek_id: str, wrapped: str, tenant_id: str) -> tuple[str, str] | None:
        rewrapped = self._vault.transit_rewrap(self._name, wrapped)
        new_id = _transit_id(rewrapped)
        return None if new_id == kek_id else (new_id, rewrapped)


def key_wrapper(secrets: SecretProvider, name: str) -> KeyWrapper:
    """Transit with the Vault backend, the named secret otherwise."""
    if isinstance(secrets, VaultSecretProvider):
        return TransitKeyWrapper(secrets, name)
    return LocalKeyWrapper(secrets, name)


def _dek_aad(tenant_id: str, kek_id: str) -> bytes:
    return b"\x00".join((_LOCAL_DOMAIN, tenant_id.encode(), kek_id.encode()))


def _transit_id(ciphertext: str) -> str:
    match = _TRANSIT_ID.fullmatch(ciphertext)
    if match is None:
        raise DecryptionError("not a transit ciphertext")
    return f"vault:{match.group(1)}"


def _kind(kek_id: str) -> str:
    return kek_id.split(":", 1)[0][:16]
