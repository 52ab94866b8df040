"""Idempotency records: "this key is being handled" and then "this was the answer".

A request carrying an ``Idempotency-Key`` first calls :meth:`IdempotencyStore.begin`. Exactly
one concurrent caller gets ``STARTED`` and runs the request; the others see ``IN_FLIGHT`` (or
``REPLAY`` once it completed). The in-flight marker is a *lease* that expires on its own, so a
process that crashed mid-request does not block the key until the record's TTL. A retry with
the same key but a different body is a client bug and gets ``MISMATCH``.

Records hold the response (whose body contains no raw content by design) and the request's
SHA-256 fingerprint, never the request itself.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from llama_mapper.storage.redis_batch import RedisBatcher

T = TypeVar("T")

DEFAULT_LEASE_SECONDS = 60.0
_IN_FLIGHT = "in_flight"
_DONE = "done"


@dataclass(frozen=True)
class StoredResponse:
    """A response as replayed: status, body bytes and the headers worth repeating."""

    status: int
    body: bytes
    headers: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        # JSON cannot carry bytes; base64 keeps any body byte-exact.
        return {
            "status": self.status,
            "body": base64.b64encode(self.body).decode("ascii"),
            "headers": dict(self.headers),
        }

    @classmethod
    def from_dict(cls, data: Any) -> StoredResponse:
        if not isinstance(data, dict):
            raise ValueError("stored response is not an object")
        status, body, headers = data.get("status"), data.get("body"), data.get("headers")
        if (
            not isinstance(status, int)
            or not isinstance(body, str)
            or not isinstance(headers, dict)
        ):
            raise ValueError("stored response is malformed")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
            raise ValueError("stored response headers are malformed")
        return cls(status=status, body=base64.b64decode(body, validate=True), headers=headers)

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, raw: bytes | str) -> StoredResponse:
        return cls.from_dict(orjson.loads(raw))


class Outcome(enum.Enum):
    """What :meth:`IdempotencyStore.begin` found."""

    STARTED = "started"  # the caller owns the key now: run the request, then complete/abandon
    REPLAY = "replay"  # already completed with the same request: return the stored response
    MISMATCH = "mismatch"  # the key was used for a different request
    IN_FLIGHT = "in_flight"  # the same request is running elsewhere right now


@dataclass(frozen=True)
class Begin:
    outcome: Outcome
    response: StoredResponse | None = None


class IdempotencyUnavailable(Exception):
    """The store could not be reached or held a record it cannot read.

    The API maps it to a retryable 503: running the request without the guarantee the client
    asked for could execute it twice.
    """


@runtime_checkable
class IdempotencyStore(Protocol):
    async def begin(self, scope: str, fingerprint: str, ttl_seconds: int) -> Begin:
        """Claim ``scope`` for this request, or report what already holds it.

        ``ttl_seconds`` is the record's lifetime; the in-flight lease is the shorter of it
        and the store's lease.
        """
        ...

    async def complete(
        self, scope: str, fingerprint: str, response: StoredResponse, ttl_seconds: int
    ) -> None:
        """Store the response for replay, unless the key now belongs to another request."""
        ...

    async def abandon(self, scope: str, fingerprint: str) -> None:
        """Drop our in-flight marker (the request failed retryably) so a retry can run."""
        ...

    async def healthy(self) -> bool: ...


def _record(state: str, fp: str, response: StoredResponse | None = None) -> bytes:
    data: dict[str, Any] = {"v": 1, "state": state, "fp": fp}
    if response is not None:
        data["response"] = response.to_dict()
    return orjson.dumps(data)


def _classify(raw: bytes | str, fp: str) -> Begin:
    """The outcome for an existing record; ``ValueError`` when it is unreadable."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError("idempotency record is not JSON") from exc
    if not isinstance(data, dict):
        raise ValueError("idempotency record is not an object")
    if data.get("fp") != fp:
        return Begin(Outcome.MISMATCH)
    state = data.get("state")
    if state == _IN_FLIGHT:
        return Begin(Outcome.IN_FLIGHT)
    if state == _DONE:
        return Begin(Outcome.REPLAY, StoredResponse.from_dict(data.get("response")))
    raise ValueError("idempotency record has an unknown state")


def _lease(lease_seconds: float, ttl_seconds: int) -> float:
    return min(lease_seconds, float(ttl_seconds))


@dataclass
class _Entry:
    state: str
    fp: str
    response: StoredResponse | None
    expires_at: float
    size: int


class MemoryIdempotencyStore:
    """Records in a dict, for a single process.

    Operations never await, so each is atomic on the event loop (a lock covers threads).
    Bounded by ``max_entries`` and ``max_bytes`` of stored bodies: past either, the oldest
    records go first — a forgotten record only means a retry runs again, which is the same
    as a retry after the TTL.
    """

    def __init__(
        self,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        max_entries: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if lease_seconds <= 0 or max_entries < 1 or max_bytes < 1:
            raise ValueError("lease_seconds, max_entries and max_bytes must be positive")
        self._lease_seconds = lease_seconds
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    async def begin(self, scope: str, fingerprint: str, ttl_seconds: int) -> Begin:
        with self._lock:
            now = self._clock()
            entry = self._live(scope, now)
            if entry is None:
                expires = now + _lease(self._lease_seconds, ttl_seconds)
                self._put(scope, _Entry(_IN_FLIGHT, fingerprint, None, expires, 0), now)
                return Begin(Outcome.STARTED)
            if entry.fp != fingerprint:
                return Begin(Outcome.MISMATCH)
            if entry.state == _IN_FLIGHT:
                return Begin(Outcome.IN_FLIGHT)
            return Begin(Outcome.REPLAY, entry.response)

    async def complete(
        self, scope: str, fingerprint: str, response: StoredResponse, ttl_seconds: int
    ) -> None:
        with self._lock:
            now = self._clock()
            entry = self._live(scope, now)
            if entry is not None and (entry.fp != fingerprint or entry.state != _IN_FLIGHT):
                return  # someone else's now, or already completed: the first answer stands
            size = len(response.body) + sum(len(k) + len(v) for k, v in response.headers.items())
            self._put(scope, _Entry(_DONE, fingerprint, response, now + ttl_seconds, size), now)

    async def abandon(self, scope: str, fingerprint: str) -> None:
        with self._lock:
            entry = self._live(scope, self._clock())
            if entry is not None and entry.fp == fingerprint and entry.state == _IN_FLIGHT:
                self._drop(scope)

    async def healthy(self) -> bool:
        return True

    def _live(self, scope: str, now: float) -> _Entry | None:
        entry = self._entries.get(scope)
        if entry is not None and entry.expires_at <= now:
            self._drop(scope)
            return None
        return entry

    def _put(self, scope: str, entry: _Entry, now: float) -> None:
        self._drop(scope)
        self._entries[scope] = entry
        self._bytes += entry.size
        # Sweep a few expired records from the oldest end on every write, then enforce caps.
        for _ in range(4):
            oldest_scope, oldest = next(iter(self._entries.items()))
            if oldest_scope == scope or oldest.expires_at > now:
                break
            self._drop(oldest_scope)
        while len(self._entries) > 1 and (
            len(self._entries) > self._max_entries or self._bytes > self._max_bytes
        ):
            self._drop(next(iter(self._entries)))

    def _drop(self, scope: str) -> None:
        entry = self._entries.pop(scope, None)
        if entry is not None:
            self._bytes -= entry.size


# Compare-and-set on the stored JSON (Redis bundles cjson). ARGV[1]: our fingerprint.
_COMPLETE_LUA = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, record = pcall(cjson.decode, current)
  if not ok or type(record) ~= 'table' or record['fp'] ~= ARGV[1]
      or record['state'] ~= 'in_flight' then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""

_ABANDON_LUA = """
local current = redis.call('GET', KEYS[1])
if not current then
  return 0
end
local ok, record = pcall(cjson.decode, current)
if ok and type(record) == 'table' and record['fp'] == ARGV[1]
    and record['state'] == 'in_flight' then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisIdempotencyStore:
    """Records in Redis, shared by every replica.

    ``begin`` is ``SET NX PX`` (claim with a lease) and, when taken, a ``GET`` of what holds
    the key; ``complete`` and ``abandon`` are Lua compare-and-set scripts so they never
    overwrite or delete a record another request now owns. Every failure, including a call
    exceeding ``timeout_seconds``, raises :class:`IdempotencyUnavailable`.
    """

    def __init__(
        self,
        redis: Redis,
        prefix: str = "lm:idem:",
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        timeout_seconds: float | None = 2.0,
        batcher: RedisBatcher | None = None,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self._redis = redis
        self._prefix = prefix
        self._lease_seconds = lease_seconds
        self._timeout = timeout_seconds
        # Commands of concurrent requests share one round trip (see RedisBatcher).
        self._batcher = batcher or RedisBatcher(redis)
        self._complete = self._batcher.script(_COMPLETE_LUA)
        self._abandon = self._batcher.script(_ABANDON_LUA)

    async def begin(self, scope: str, fingerprint: str, ttl_seconds: int) -> Begin:
        key = self._prefix + scope
        lease_ms = max(math.ceil(_lease(self._lease_seconds, ttl_seconds) * 1000), 1)
        marker = _record(_IN_FLIGHT, fingerprint)
        # The record can expire between a refused SET NX and the GET; then claim again.
        timeout = self._timeout
        for _ in range(3):
            claim = self._batcher.execute("SET", key, marker, "NX", "PX", lease_ms, timeout=timeout)
            if await self._batched(claim):
                return Begin(Outcome.STARTED)
            raw = await self._batched(self._batcher.execute("GET", key, timeout=timeout))
            if raw is None:
                continue
            try:
                return _classify(raw, fingerprint)
            except ValueError as exc:
                raise IdempotencyUnavailable("unreadable idempotency record") from exc
        raise IdempotencyUnavailable("idempotency record kept changing")

    async def complete(
        self, scope: str, fingerprint: str, response: StoredResponse, ttl_seconds: int
    ) -> None:
        record = _record(_DONE, fingerprint, response)
        await self._batched(
            self._batcher.evalsha(
                self._complete,
                [self._prefix + scope],
                [fingerprint, record, ttl_seconds],
                timeout=self._timeout,
            )
        )

    async def abandon(self, scope: str, fingerprint: str) -> None:
        await self._batched(
            self._batcher.evalsha(
                self._abandon, [self._prefix + scope], [fingerprint], timeout=self._timeout
            )
        )

    async def healthy(self) -> bool:
        try:
            return bool(await self._call(self._redis.ping()))
        except IdempotencyUnavailable:
            return False

    async def _batched(self, operation: Awaitable[T]) -> T:
        """A batcher call, which enforces ``timeout_seconds`` itself."""
        try:
            return await operation
        except (RedisError, OSError) as exc:
            raise IdempotencyUnavailable(f"redis idempotency store: {type(exc).__name__}") from exc

    async def _call(self, operation: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self._timeout):
                return await operation
        except (RedisError, OSError) as exc:
            # Only the type: a client error message may echo a key name.
            raise IdempotencyUnavailable(f"redis idempotency store: {type(exc).__name__}") from exc
