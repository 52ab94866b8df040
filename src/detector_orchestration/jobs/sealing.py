"""Seal what a job carries of the content (the request, the redacted text) at rest.

The mapper's envelope encryption, reused as is: a fresh AES-256-GCM data key per job,
wrapped by the KEK ``jobs.payload_key_secret`` (a versioned secret, or a Vault/OpenBao
transit key), with associated data binding the tenant, the job id and the field name, so
a sealed value copied into another job or tenant does not open. A queue or store at rest
(Redis) only ever sees ciphertext and the wrapped key.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from llama_mapper.crypto import (
    DecryptionError,
    KeyWrapper,
    LocalKeyWrapper,
    open_fields,
    seal_fields,
)
from llama_mapper.crypto.envelope import new_dek


class PayloadSealer:
    def __init__(self, wrapper: KeyWrapper) -> None:
        self._wrapper = wrapper
        # A transit KEK is one Vault round trip per call: keep it off the event loop. A
        # local one is a hash and an AES call, cheaper than the thread hop.
        self._remote = not isinstance(wrapper, LocalKeyWrapper)

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args) if self._remote else fn(*args)

    async def seal(self, tenant_id: str, job_id: str, name: str, value: Any) -> str:
        """One JSON string: the wrapped data key and the sealed value."""
        dek = new_dek()
        kek_id, wrapped = await self._call(self._wrapper.wrap, dek, tenant_id)
        sealed = seal_fields(dek, tenant_id, job_id, {name: value})
        return orjson.dumps({"kek_id": kek_id, "dek": wrapped, **sealed}).decode()

    async def open(self, tenant_id: str, job_id: str, name: str, sealed: str) -> Any:
        """The value; :class:`DecryptionError` when it cannot be opened (fail closed)."""
        try:
            doc = orjson.loads(sealed)
            kek_id, wrapped = doc["kek_id"], doc["dek"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise DecryptionError("sealed job data is malformed") from None
        dek: bytes = await self._call(self._wrapper.unwrap, kek_id, wrapped, tenant_id)
        return open_fields(dek, tenant_id, job_id, doc)[name]
