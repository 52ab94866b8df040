"""The object-store interface every backend implements, its keys and its domain errors.

Anchors, exports and (later) reports and model artifacts are whole small objects written
once and read back by key, so the interface is five verbs, not a file system: ``put``
(optionally write-once, optionally under a retention lock), ``get``, ``exists``, ``list``
by prefix and ``delete`` where the object allows it. Callers are async; a blocking backend
(boto3, ``fsync``) runs its calls in a worker thread.

Errors are domain errors with one-line, secret-free messages, so the CLI prints them as
they are and the API turns :class:`ObjectStoreUnavailable` into ``503 BACKEND_UNAVAILABLE``
(it *is* a :class:`~llama_mapper.errors.BackendUnavailable`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from llama_mapper.errors import BackendUnavailable

#: One key segment: no separators, no leading dot (so no ``..``, no hidden temp files).
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._=-]{0,127}")
MAX_KEY_CHARS = 512


class ObjectStoreError(Exception):
    """Base of every object-store failure; the message is one safe line."""


class InvalidObjectKey(ObjectStoreError, ValueError):
    """A key that could escape the store's folder or prefix, or is not portable."""


class ObjectNotFound(ObjectStoreError, KeyError):
    """No object under that key."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "object not found"


class ObjectExists(ObjectStoreError, FileExistsError):
    """A write-once put found the key taken: nothing was overwritten."""


class ObjectLocked(ObjectStoreError, PermissionError):
    """A delete of a write-once (or retention-locked) object was refused."""


class ObjectStoreUnavailable(ObjectStoreError, BackendUnavailable):
    """The backend cannot serve: refused credentials, missing bucket, unreachable endpoint.

    ``reason`` is a short machine-readable cause (``credentials``, ``access_denied``,
    ``no_bucket``, ``unreachable``, ``error``) for tests, logs and ``/ready``.
    """

    def __init__(self, message: str, reason: str = "error") -> None:
        super().__init__(message)  # MapperError's: sets .message for the ErrorBody
        self.reason = reason


def check_key(key: str) -> str:
    """``key`` if it is ``segment/segment/...`` of safe segments; :class:`InvalidObjectKey`."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS:
        raise InvalidObjectKey("an object key is 1 to 512 characters")
    if not all(_SEGMENT.fullmatch(part) for part in key.split("/")):
        raise InvalidObjectKey(
            f"invalid object key {key[:80]!r}: segments of letters, digits, '_', '.', '=', '-'"
            ", no empty segment, none starting with '.' or '-'"
        )
    return key


def check_prefix(prefix: str) -> str:
    """A listing prefix: empty, or a key (prefix) optionally ending in ``/``."""
    if prefix == "":
        return prefix
    check_key(prefix.removesuffix("/"))
    return prefix


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object as a listing reports it."""

    key: str
    size: int


@dataclass(frozen=True)
class Protection:
    """What write-once means on this backend, for ``/ready``, the CLI and the docs.

    ``locked`` is true only where the storage itself refuses deletion for a retention
    period even to its administrators (S3 Object Lock in COMPLIANCE mode); otherwise
    write-once is enforced by this code and by file modes, which an administrator of the
    host or the bucket can undo.
    """

    mechanism: str
    locked: bool
    detail: str

    def describe(self) -> str:
        return f"{self.mechanism} ({self.detail})"


@runtime_checkable
class ObjectStore(Protocol):
    """Whole objects by key. Implementations are safe to share between tasks."""

    #: ``"local"`` or ``"s3"``, for messages and ``/ready``.
    backend: str

    async def put(
        self, key: str, data: bytes, *, write_once: bool = False, retain: bool = False
    ) -> ObjectInfo:
        """Store ``data`` under ``key``.

        ``write_once``: fail with :class:`ObjectExists` if the key exists (atomically where
        the backend can), and refuse later deletes. ``retain`` (implies ``write_once``):
        also put the object under the backend's retention lock where it has one.
        """
        ...

    async def get(self, key: str) -> bytes:
        """The object's bytes; :class:`ObjectNotFound` if there is none."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order."""
        ...

    async def delete(self, key: str) -> None:
        """Remove a plain object; :class:`ObjectLocked` for a write-once one,
        :class:`ObjectNotFound` if absent."""
        ...

    async def protection(self) -> Protection:
        """What write-once means here; raises :class:`ObjectStoreUnavailable` when the
        backend cannot be reached (so it doubles as the readiness probe)."""
        ...
