"""The rate limiter the API calls: backend + failure mode + health reporting.

A shared backend (Redis) can go away; the limiter must then still answer at once, because
hanging or erroring every request over a limiter outage would turn a side concern into a
full outage. Operators choose what an outage means: ``fail_open`` (serve, unlimited) or
``fail_closed`` (refuse with a short retry). Either way the verdict is marked ``degraded``,
a warning is logged at most once per interval (an outage must not flood the logs), and
``on_degraded`` is told about each transition so a metric and ``/ready`` can reflect it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Literal, cast

from llama_mapper.ratelimit.backends import Bucket, RateLimitBackend, TimedRateLimitBackend
from llama_mapper.ratelimit.gcra import Decision

logger = logging.getLogger("llama_mapper.ratelimit")

FailureMode = Literal["fail_open", "fail_closed"]

# What a fail_closed denial asks the client to wait: short, because the backend usually
# comes back quickly and clients should not be locked out for longer than the outage.
FAIL_CLOSED_RETRY_SECONDS = 1.0


class RateLimiter:
    """Checks requests against one or more buckets; never raises on backend failure.

    ``timeout_seconds`` bounds each backend call (the Redis client's own retries could
    otherwise hold a request for seconds); ``None`` leaves it to the client's timeouts.
    ``clock`` is only for tests of the log throttling.
    """

    def __init__(
        self,
        backend: RateLimitBackend,
        failure_mode: FailureMode = "fail_open",
        on_degraded: Callable[[bool], None] | None = None,
        log_interval_seconds: float = 60.0,
        *,
        timeout_seconds: float | None = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_mode not in ("fail_open", "fail_closed"):
            raise ValueError(f"unknown failure mode {failure_mode!r}")
        self._backend = backend
        self._failure_mode: FailureMode = failure_mode
        self._on_degraded = on_degraded
        self._log_interval = log_interval_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        # A backend that bounds its own calls is handed the timeout: cheaper than an
        # asyncio.timeout around every check.
        self._timed = getattr(backend, "honours_timeout", False) is True
        self._degraded = False
        self._last_warning: float | None = None
        self._suppressed = 0
        self._reported_outage = False

    @property
    def backend(self) -> RateLimitBackend:
        return self._backend

    @property
    def failure_mode(self) -> FailureMode:
        return self._failure_mode

    def degraded(self) -> bool:
        """Whether the last backend call failed (the verdicts come from the failure mode)."""
        return self._degraded

    async def check(self, buckets: Sequence[Bucket], cost: int) -> Decision:
        """Charge ``cost`` to every bucket (all or none) and return the most restrictive verdict.

        Raises ``ValueError`` only for caller mistakes (no bucket, negative cost); any backend
        failure becomes a ``degraded`` verdict from the failure mode.
        """
        if not buckets:
            raise ValueError("at least one bucket is required")
        if cost < 0:
            raise ValueError("cost must not be negative")
        try:
            if self._timed:
                timed = cast(TimedRateLimitBackend, self._backend)
                decision = await timed.acquire_many(buckets, cost, timeout=self._timeout)
            else:
                async with asyncio.timeout(self._timeout):
                    decision = await self._backend.acquire_many(buckets, cost)
        except Exception as exc:  # any failure of the backend is an outage, by design
            self._mark_down(exc)
            return self._fallback(buckets, cost)
        self._mark_up()
        return decision

    def _fallback(self, buckets: Sequence[Bucket], cost: int) -> Decision:
        # Report the tightest configured quota so headers stay plausible during an outage.
        quota = min((q for _, q in buckets), key=lambda q: (q.burst, -q.interval))
        if self._failure_mode == "fail_open":
            return Decision(
                allowed=True,
                limit=quota.burst,
                remaining=max(quota.burst - cost, 0),
                reset_seconds=0.0,
                retry_after_seconds=None,
                policy=quota.policy,
                degraded=True,
            )
        return Decision(
            allowed=False,
            limit=quota.burst,
            remaining=0,
            reset_seconds=FAIL_CLOSED_RETRY_SECONDS,
            retry_after_seconds=FAIL_CLOSED_RETRY_SECONDS,
            policy=quota.policy,
            degraded=True,
        )

    def _mark_down(self, exc: BaseException) -> None:
        now = self._clock()
        # Only the exception's type: its message could carry a key name or a host.
        reason = type(exc).__name__
        verdict = "allowing" if self._failure_mode == "fail_open" else "refusing"
        if self._last_warning is None or now - self._last_warning >= self._log_interval:
            extra = (
                f" ({self._suppressed} more failures since last report)" if self._suppressed else ""
            )
            logger.warning(
                "rate-limit backend %s unavailable (%s); %s requests (%s)%s",
                self._backend.name,
                reason,
                verdict,
                self._failure_mode,
                extra,
            )
            self._last_warning = now
            self._suppressed = 0
            self._reported_outage = True
        else:
            self._suppressed += 1
        if not self._degraded:
            self._degraded = True
            self._notify(True)

    def _mark_up(self) -> None:
        if not self._degraded:
            return
        self._degraded = False
        # Logged only for an outage that was itself reported, so a flapping backend stays
        # within one warning (and one recovery line) per interval.
        if self._reported_outage:
            logger.info("rate-limit backend %s available again", self._backend.name)
        self._reported_outage = False
        self._notify(False)

    def _notify(self, down: bool) -> None:
        if self._on_degraded is None:
            return
        try:
            self._on_degraded(down)
        except Exception:  # a broken metrics hook must not break request handling
            logger.exception("rate-limit on_degraded callback failed")
