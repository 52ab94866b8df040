"""Where GCRA buckets live: in this process (the embedded default) or in Redis (shared).

Both backends charge several buckets (say a key's and its tenant's) *all or none*: a request
refused by one bucket must not eat into another, or a tenant at its limit would silently
drain each of its keys' allowances on requests that never ran.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from llama_mapper.ratelimit.gcra import (
    EPSILON_SECONDS,
    Decision,
    Quota,
    allowed_decision,
    evaluate,
    most_restrictive,
)
from llama_mapper.storage.redis_batch import RedisBatcher

Bucket = tuple[str, Quota]


class RateLimitUnavailable(Exception):
    """The shared backend could not be reached or answered nonsense.

    The :class:`~llama_mapper.ratelimit.limiter.RateLimiter` turns it into its failure mode;
    it is raised (rather than each client library's own errors) so callers handle one type.
    """


@runtime_checkable
class RateLimitBackend(Protocol):
    """Storage for GCRA buckets; ``now`` is injectable so tests can drive the clock."""

    name: str

    async def acquire(
        self, key: str, quota: Quota, cost: int, now: float | None = None
    ) -> Decision:
        """Charge ``cost`` to one bucket if it allows it."""
        ...

    async def acquire_many(
        self, buckets: Sequence[Bucket], cost: int, now: float | None = None
    ) -> Decision:
        """Charge ``cost`` to every bucket if all allow it, to none otherwise."""
        ...

    async def healthy(self) -> bool:
        """Whether the backend answers now (for readiness probes)."""
        ...


class TimedRateLimitBackend(RateLimitBackend, Protocol):
    """A backend that enforces a per-call ``timeout`` itself (``honours_timeout = True``).

    Past the timeout the call raises; the limiter treats that like any backend failure.
    """

    honours_timeout: bool

    async def acquire_many(
        self,
        buckets: Sequence[Bucket],
        cost: int,
        now: float | None = None,
        *,
        timeout: float | None = None,
    ) -> Decision: ...


def _check_args(buckets: Sequence[Bucket], cost: int) -> None:
    # Programming errors, refused before anything is charged.
    if not buckets:
        raise ValueError("at least one bucket is required")
    if cost < 0:
        raise ValueError("cost must not be negative")


class MemoryBackend:
    """Buckets in a dict: exact for one process, shared by nothing.

    Every operation runs without awaiting, so it is atomic on the event loop; a lock also
    makes it safe to share across threads. The dict is bounded: a bucket whose TAT has
    passed is full again and carries no information, so it is dropped for free; past
    ``max_keys`` the least recently used bucket goes too, which can only make the limiter
    more lenient for that one identity, never stricter.
    """

    name = "memory"
    honours_timeout = True  # it never waits, so every call is within any timeout

    def __init__(self, *, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._max_keys = max_keys
        self._tats: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tats)

    async def acquire(
        self, key: str, quota: Quota, cost: int, now: float | None = None
    ) -> Decision:
        return await self.acquire_many([(key, quota)], cost, now)

    async def acquire_many(
        self,
        buckets: Sequence[Bucket],
        cost: int,
        now: float | None = None,
        *,
        timeout: float | None = None,
    ) -> Decision:
        _check_args(buckets, cost)
        # Monotonic: a wall-clock step must not refill or freeze every bucket at once.
        at = time.monotonic() if now is None else now
        with self._lock:
            states = [evaluate(quota, self._tats.get(key), at, cost) for key, quota in buckets]
            allowed = all(state.allowed for state in states)
            if allowed:
                for (key, _), state in zip(buckets, states, strict=True):
                    if state.new_tat > at:
                        self._tats[key] = state.new_tat
                        self._tats.move_to_end(key)
                    else:
                        self._tats.pop(key, None)
            self._evict(at)
        return most_restrictive([s.decision for s in states], allowed=allowed)

    def _evict(self, now: float) -> None:
        # The oldest-touched buckets sit at the front; a few refilled ones are dropped on
        # every call so memory shrinks when traffic does, and the cap is enforced after.
        for _ in range(2):
            if not self._tats:
                return
            key, tat = next(iter(self._tats.items()))
            if tat > now:
                break
            del self._tats[key]
        while len(self._tats) > self._max_keys:
            self._tats.popitem(last=False)

    async def healthy(self) -> bool:
        return True


# KEYS: one per bucket. ARGV[1]: cost; ARGV[2]: now in seconds, or '' for the server clock;
# then per bucket its emission interval and burst. Returns {verdict, now, tat per bucket} as
# strings (a Lua number reply would be truncated to an integer). The arithmetic mirrors
# gcra.evaluate; Python recomputes each bucket's details from the returned TATs.
_GCRA_LUA = """
local cost = tonumber(ARGV[1])
local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[2])
end
local eps = tonumber(ARGV[3])
local n = #KEYS
local tats = {}
local new_tats = {}
local allowed = 1
for i = 1, n do
  local interval = tonumber(ARGV[2 + 2 * i])
  local burst = tonumber(ARGV[3 + 2 * i])
  local stored = redis.call('GET', KEYS[i])
  local tat = now
  if stored then
    tat = math.max(tonumber(stored), now)
  end
  tats[i] = tat
  new_tats[i] = tat + cost * interval
  if new_tats[i] - now > interval * burst + eps then
    allowed = 0
  end
end
if allowed == 1 then
  for i = 1, n do
    local ttl_ms = math.ceil((new_tats[i] - now) * 1000)
    if ttl_ms > 0 then
      redis.call('SET', KEYS[i], string.format('%.17g', new_tats[i]), 'PX', ttl_ms)
    end
  end
end
local reply = {tostring(allowed), string.format('%.17g', now)}
for i = 1, n do
  reply[#reply + 1] = string.format('%.17g', tats[i])
end
return reply
"""


class RedisBackend:
    """Buckets in Redis, shared by every replica, decided by one atomic Lua script.

    The script reads the clock with ``TIME`` on the server so replicas whose own clocks
    disagree still agree on every bucket, and gives each key a TTL of its time to full
    refill, so idle identities cost no memory. All buckets of one check are read and written
    inside that script, so with Redis Cluster they must share a hash slot (put a ``{tag}``
    in ``prefix``); a single Redis or a replicated primary needs nothing.
    """

    name = "redis"
    honours_timeout = True  # the batcher's connection enforces it

    def __init__(
        self, redis: Redis, prefix: str = "lm:rl:", batcher: RedisBatcher | None = None
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        # Checks of concurrent requests share one round trip (see RedisBatcher).
        self._batcher = batcher or RedisBatcher(redis)
        self._sha = self._batcher.script(_GCRA_LUA)

    async def acquire(
        self, key: str, quota: Quota, cost: int, now: float | None = None
    ) -> Decision:
        return await self.acquire_many([(key, quota)], cost, now)

    async def acquire_many(
        self,
        buckets: Sequence[Bucket],
        cost: int,
        now: float | None = None,
        *,
        timeout: float | None = None,
    ) -> Decision:
        _check_args(buckets, cost)
        keys = [self._prefix + key for key, _ in buckets]
        args: list[str] = [str(cost), "" if now is None else repr(float(now)), _EPSILON_ARG]
        for _, quota in buckets:
            args += _quota_args(quota)
        try:
            reply = await self._batcher.evalsha(self._sha, keys, args, timeout=timeout)
        except (RedisError, OSError) as exc:
            raise RateLimitUnavailable(f"redis rate-limit backend: {type(exc).__name__}") from exc
        try:
            verdict, server_now, *tats = reply
            allowed = _number(verdict) == 1
            at = _number(server_now)
            stored = [_number(tat) for tat in tats]
            if len(stored) != len(buckets):
                raise ValueError("one TAT per bucket expected")
            quotas = [quota for _, quota in buckets]
            if allowed:
                fast = allowed_decision(quotas, stored, at, cost)
                if fast is not None:
                    return fast
            states = [
                evaluate(quota, tat, at, cost) for quota, tat in zip(quotas, stored, strict=True)
            ]
        except (TypeError, ValueError) as exc:
            raise RateLimitUnavailable("redis rate-limit backend: malformed reply") from exc
        return most_restrictive([s.decision for s in states], allowed=allowed)

    async def healthy(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False


_EPSILON_ARG = repr(EPSILON_SECONDS)


@functools.lru_cache(maxsize=1024)
def _quota_args(quota: Quota) -> tuple[str, str]:
    """The script's per-bucket arguments, formatted once per distinct quota."""
    return repr(quota.interval), str(quota.burst)


def _number(value: object) -> float:
    """A number from a reply item: bytes, or str from a client that decodes replies."""
    if isinstance(value, bytes | str):
        return float(value)
    raise TypeError("unexpected reply item")
