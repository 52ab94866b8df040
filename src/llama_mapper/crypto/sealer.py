"""Sealing kept metadata on the write path.

Per event, only the keys a tenant chose to keep (``audit.keep_metadata``) survive; the rest
of ``MapperPayload.metadata`` is dropped before the event exists. Values are checked with
the raw-content guard's default limits even when a tenant turned its guard off, so text
shaped like content is refused instead of stored, encrypted or not.

Data keys: a fresh DEK per tenant is reused for at most ``dek_seconds`` or ``dek_uses``
events (a "per batch" key): with the transit backend every new DEK is one Vault round trip,
which must not happen per request. Reuse is safe: nonces are random per field and the
associated data binds each ciphertext to its event. Each event still stores its own copy
of the wrapped DEK, so retention and re-wrap work per event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from llama_mapper.crypto.envelope import new_dek, seal_fields
from llama_mapper.crypto.kek import KeyWrapper
from llama_mapper.privacy.guard import GuardLimits, check_raw_content


@dataclass
class _TenantKey:
    dek: bytes
    kek_id: str
    wrapped: str
    expires: float
    uses_left: int


class MetadataSealer:
    def __init__(
        self,
        wrapper: KeyWrapper,
        *,
        dek_seconds: float = 60.0,
        dek_uses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._wrapper = wrapper
        self._dek_seconds = dek_seconds
        self._dek_uses = dek_uses
        self._clock = clock
        self._keys: dict[str, _TenantKey] = {}
        self._lock = threading.Lock()

    def seal(
        self,
        tenant_id: str,
        event_id: str,
        metadata: Mapping[str, Any] | None,
        keep: Iterable[str],
    ) -> tuple[dict[str, Any], tuple[str, str]] | None:
        """``(sealed body metadata, (kek_id, wrapped DEK))``, or ``None`` if nothing is kept.

        Raises :class:`~llama_mapper.privacy.guard.RawContentError` for a kept value that
        looks like content.
        """
        if not metadata:
            return None
        kept = {name: metadata[name] for name in keep if name in metadata}
        if not kept:
            return None
        check_raw_content(kept, GuardLimits(), path="metadata")
        key = self._tenant_key(tenant_id)
        return seal_fields(key.dek, tenant_id, event_id, kept), (key.kek_id, key.wrapped)

    def _tenant_key(self, tenant_id: str) -> _TenantKey:
        now = self._clock()
        with self._lock:
            key = self._keys.get(tenant_id)
            if key is not None and key.expires > now and key.uses_left > 0:
                key.uses_left -= 1
                return key
        dek = new_dek()
        kek_id, wrapped = self._wrapper.wrap(dek, tenant_id)  # outside the lock: may be remote
        key = _TenantKey(dek, kek_id, wrapped, now + self._dek_seconds, self._dek_uses - 1)
        with self._lock:
            self._keys[tenant_id] = key
        return key
