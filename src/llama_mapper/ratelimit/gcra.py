"""GCRA (generic cell rate algorithm) arithmetic shared by every rate-limit backend.

A bucket is one number, its *theoretical arrival time* (TAT): the moment the bucket would be
empty again if nothing else arrived. GCRA needs no timer, no refill job and no counter per
window, so one key per bucket and one atomic read-and-write suffice — which is what lets the
Redis backend do the whole decision in a single Lua script. The Lua script in
:mod:`llama_mapper.ratelimit.backends` mirrors :func:`evaluate` exactly; keep them in step.

With emission interval ``T = period / rate`` and tolerance ``tau = T * burst``, a request of
cost ``n`` moves the TAT to ``max(tat, now) + n * T`` and is allowed when that lies no more
than ``tau`` ahead of ``now``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from llama_mapper.config.settings import Limit

# Slack for floating-point noise: Redis server time is seconds since the epoch as a double,
# whose last bit is worth ~2e-7 s, so exact comparisons would flicker. 10 µs is far below any
# useful emission interval and never lets a whole extra request through.
EPSILON_SECONDS = 1e-5


@dataclass(frozen=True)
class Quota:
    """``rate`` units per ``period_seconds``, of which at most ``burst`` may arrive at once."""

    rate: int
    period_seconds: float
    burst: int

    def __post_init__(self) -> None:
        # Refused here, once, rather than as a division by zero inside a backend.
        if self.rate < 1:
            raise ValueError("rate must be at least 1")
        if not self.period_seconds > 0 or math.isinf(self.period_seconds):
            raise ValueError("period_seconds must be a positive finite number")
        if self.burst < 1:
            raise ValueError("burst must be at least 1")

    @classmethod
    def from_limit(cls, limit: Limit) -> Quota:
        """The quota a configured :class:`Limit` describes; burst defaults to the rate.

        Every request asks for its quotas, so equal limits share one (immutable) Quota.
        """
        burst = limit.burst if limit.burst is not None else limit.rate
        if cls is Quota:
            return _shared_quota(limit.rate, limit.period_seconds, burst)
        return cls(rate=limit.rate, period_seconds=limit.period_seconds, burst=burst)

    # Cached (they are asked for on every check; the dataclass is frozen, so they never
    # go stale): cached_property writes the instance dict, which frozen allows.
    @functools.cached_property
    def interval(self) -> float:
        """Seconds one unit of cost occupies the bucket (the emission interval ``T``)."""
        return self.period_seconds / self.rate

    @functools.cached_property
    def tolerance(self) -> float:
        """How far ahead of now the TAT may run: a full bucket is ``burst`` intervals."""
        return self.interval * self.burst

    @functools.cached_property
    def policy(self) -> str:
        """The ``RateLimit-Policy`` header value, so clients can learn the quota itself."""
        value = f"{self.rate};w={int(self.period_seconds)}"
        if self.burst != self.rate:
            value += f";burst={self.burst}"
        return value


@functools.lru_cache(maxsize=1024)
def _shared_quota(rate: int, period_seconds: float, burst: int) -> Quota:
    return Quota(rate=rate, period_seconds=period_seconds, burst=burst)


@dataclass(frozen=True)
class Decision:
    """The verdict on one request, with what the client needs to pace itself.

    ``limit`` is the bucket's capacity (its burst), so ``remaining`` never exceeds it.
    ``retry_after_seconds`` is set when denied, except when the cost exceeds the burst: such
    a request can never pass, and a retry hint would only make the client wait in vain.
    ``degraded`` marks a verdict reached by the failure mode because the backend was down.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float
    retry_after_seconds: float | None
    policy: str
    degraded: bool = False


@dataclass(frozen=True)
class BucketState:
    """One bucket's evaluation: the TAT to store if the request goes ahead, and its verdict."""

    allowed: bool
    new_tat: float
    decision: Decision


def evaluate(quota: Quota, stored_tat: float | None, now: float, cost: int) -> BucketState:
    """Evaluate ``cost`` against one bucket whose stored TAT is ``stored_tat`` (None: full)."""
    interval = quota.interval
    tolerance = quota.tolerance
    tat = now if stored_tat is None else max(stored_tat, now)
    new_tat = tat + cost * interval
    allowed = new_tat - now <= tolerance + EPSILON_SECONDS
    if allowed:
        # What is left *after* this request is charged.
        remaining = _whole_units(tolerance - (new_tat - now), interval)
        reset = new_tat - now
        retry: float | None = None
    else:
        # Nothing is charged, so report the bucket as it stands.
        remaining = _whole_units(tolerance - (tat - now), interval)
        reset = tat - now
        retry = None if cost > quota.burst else max(new_tat - now - tolerance, 0.0)
    decision = Decision(
        allowed=allowed,
        limit=quota.burst,
        remaining=remaining,
        reset_seconds=max(reset, 0.0),
        retry_after_seconds=retry,
        policy=quota.policy,
    )
    return BucketState(allowed=allowed, new_tat=new_tat, decision=decision)


def allowed_decision(
    quotas: Sequence[Quota], stored_tats: Sequence[float], now: float, cost: int
) -> Decision | None:
    """The decision :func:`evaluate` + :func:`most_restrictive` reach when every bucket
    allows ``cost``, or ``None`` when one does not (then use those two).

    The common case of a shared backend's check, computed without a Decision and a
    BucketState per bucket: only the reported (tightest) bucket's Decision is built.
    A property test holds it to the general path.
    """
    best: tuple[int, float, Quota] | None = None
    for quota, stored in zip(quotas, stored_tats, strict=True):
        interval = quota.interval
        tolerance = quota.tolerance
        new_tat = max(stored, now) + cost * interval
        if not new_tat - now <= tolerance + EPSILON_SECONDS:
            return None
        remaining = _whole_units(tolerance - (new_tat - now), interval)
        reset = new_tat - now
        # most_restrictive: least remaining, ties broken by the longest reset (first wins).
        if best is None or (remaining, -reset) < (best[0], -best[1]):
            best = (remaining, reset, quota)
    if best is None:
        raise ValueError("at least one bucket is required")
    remaining, reset, quota = best
    return Decision(
        allowed=True,
        limit=quota.burst,
        remaining=remaining,
        reset_seconds=max(reset, 0.0),
        retry_after_seconds=None,
        policy=quota.policy,
    )


def _whole_units(seconds: float, interval: float) -> int:
    return max(math.floor((seconds + EPSILON_SECONDS) / interval), 0)


def most_restrictive(decisions: Sequence[Decision], *, allowed: bool) -> Decision:
    """The single decision to report for a multi-bucket check.

    When denied, the bucket that makes the client wait longest (a never-passing cost counts
    as forever); when allowed, the one with the least left (ties: the longest reset), so the
    headers never promise more than the tightest bucket will give.
    """
    if not decisions:
        raise ValueError("at least one bucket is required")
    if not allowed:
        denied = [d for d in decisions if not d.allowed] or list(decisions)
        chosen = max(
            denied,
            key=lambda d: math.inf if d.retry_after_seconds is None else d.retry_after_seconds,
        )
        if chosen.allowed:
            # Cannot happen with consistent inputs; never report "allowed" for a denial.
            chosen = Decision(
                allowed=False,
                limit=chosen.limit,
                remaining=chosen.remaining,
                reset_seconds=chosen.reset_seconds,
                retry_after_seconds=chosen.reset_seconds,
                policy=chosen.policy,
            )
        return chosen
    return min(decisions, key=lambda d: (d.remaining, -d.reset_seconds))
