"""The types every secret backend shares, and the cache that makes rotation need no restart.

A secret value must never reach a log, a traceback or a ``repr``: request handlers log
exceptions freely, so :class:`SecretError` is built only from the secret's *name*, the
backend and a fixed reason, and :class:`Secret` leaves its value out of ``repr``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar, runtime_checkable

Clock = Callable[[], float]
K = TypeVar("K")
V = TypeVar("V")

#: Names become file names and URL path segments, so only this conservative set is allowed:
#: no separators, no leading dot (no ``..``, no hidden files).
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class Secret:
    """One version of a secret.

    ``version`` is what a stored derivative (a peppered hash, an encrypted column) must
    remember so that it can still be checked after the secret is rotated.
    """

    name: str
    value: str = field(repr=False)
    version: str


class SecretError(Exception):
    """A secret could not be read or used.

    The message names the secret and the backend so that an operator can act on it, and
    never contains a value or a credential, so it is safe to log and to chain.
    """

    def __init__(self, name: str, backend: str = "", reason: str = "") -> None:
        """``SecretError(name, backend, reason)``; a lone argument is taken as the message.

        The one-argument form keeps test doubles and other providers simple; providers in
        this package always pass all three so the message has one shape.
        """
        if not backend:
            message, name, reason = name, "", name
        elif name:
            message = f"secret {name!r} ({backend} backend): {reason}"
        else:
            message = f"{backend} secrets backend: {reason}"
        super().__init__(message)
        self.name = name
        self.backend = backend
        self.reason = reason


@runtime_checkable
class SecretProvider(Protocol):
    """Where the mapper's secrets (peppers, passwords, HMAC keys) come from.

    Implementations are thread-safe: they are called from request handlers.
    """

    backend: str

    def get(self, name: str, version: str | None = None) -> Secret:
        """The latest version (cached for ``cache_seconds``), or exactly ``version``."""
        ...

    def keyed_hash(self, key_name: str, data: bytes) -> tuple[str, str]:
        """``(hex HMAC-SHA256 of data, key version)``; store both to verify later."""
        ...

    def verify_keyed_hash(self, key_name: str, data: bytes, digest: str, version: str) -> bool:
        """Whether ``digest`` is the keyed hash of ``data`` under key version ``version``."""
        ...

    def health(self) -> str:
        """``"ok"`` or a short reason; never raises (readiness probes call it)."""
        ...


def check_name(name: str, backend: str) -> None:
    """Refuse names that could escape the secrets folder or the Vault path."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = name[:40] if isinstance(name, str) else type(name).__name__
        raise SecretError(
            shown, backend, "invalid secret name (allowed: letters, digits, '_', '.', '-')"
        )


class TTLCache(Generic[K, V]):
    """A tiny thread-safe cache whose entries expire ``ttl`` seconds after they were stored.

    Expiry, not invalidation, is what picks up a rotated secret: no process has to be told.
    """

    def __init__(self, ttl: float, clock: Clock = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._items: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            expires, value = item
            if self._clock() >= expires:
                del self._items[key]
                return None
            return value

    def put(self, key: K, value: V) -> None:
        if self._ttl <= 0:
            return
        with self._lock:
            self._items[key] = (self._clock() + self._ttl, value)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
