"""Tenant-scoped cache of detector results, keyed without ever holding the content.

The key is ``<prefix><tenant>:<bundle>@<policy version>:<detector set digest>:<key
version>:<HMAC-SHA256 of the content>``; the HMAC key comes from the SecretProvider, so a
leaked cache cannot be brute-forced back to short contents. Values are the detectors'
native outputs and spans (offsets and vendor labels), exactly what the mapper would see.
Memory (LRU with TTL) is the embedded default; Redis is the shared production backend.
A cache failure never fails a request: it is a miss.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from llama_mapper.secrets import SecretProvider

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger("detector_orchestration.cache")


class ResultCache(Protocol):
    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl_s: int) -> None: ...


class MemoryCache:
    name = "memory"

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < time.monotonic():
            self._data.pop(key, None)
            return None
        self._data.move_to_end(key)
        return value

    async def put(self, key: str, value: bytes, ttl_s: int) -> None:
        self._data[key] = (time.monotonic() + ttl_s, value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)


class RedisCache:
    name = "redis"

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self.redis.get(key)
        except Exception as exc:  # a cache outage is a miss, never a failed request
            logger.warning("result cache unavailable", extra={"error_type": type(exc).__name__})
            return None
        return value if isinstance(value, bytes) else None

    async def put(self, key: str, value: bytes, ttl_s: int) -> None:
        try:
            await self.redis.set(key, value, ex=ttl_s)
        except Exception as exc:
            logger.warning("result cache unavailable", extra={"error_type": type(exc).__name__})


class CacheKeys:
    """Builds cache keys; the content enters only through the keyed hash."""

    def __init__(self, secrets: SecretProvider, secret_name: str, prefix: str) -> None:
        self.secrets = secrets
        self.secret_name = secret_name
        self.prefix = prefix

    def key(
        self,
        *,
        tenant_id: str,
        bundle: str,
        policy_version: str,
        detectors: Sequence[str],
        content: str,
        content_type: str,
    ) -> str:
        detector_set = hashlib.sha256("\0".join(sorted(detectors)).encode()).hexdigest()[:16]
        digest, version = self.secrets.keyed_hash(
            self.secret_name, content_type.encode() + b"\0" + content.encode()
        )
        return (
            f"{self.prefix}{tenant_id}:{bundle}@{policy_version}:{detector_set}:{version}:{digest}"
        )
