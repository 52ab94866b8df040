"""A circuit breaker per dependency: closed -> open -> half-open (one probe) -> closed/open.

Orch keeps one per detector, the learned tier's HTTP backend one per model server.

It counts returned failures and timeouts alike (the executor records both). After
``failure_threshold`` consecutive failures it opens and refuses calls for ``reset_after``
seconds; then exactly one caller gets the probe (half-open) while everyone else is still
refused, and the probe's outcome closes or re-opens it. Not thread-safe by design: one
event loop owns it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        failure_threshold: int = 5,
        reset_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_after = reset_after
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_out = False

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_after:
            return BreakerState.HALF_OPEN
        return self._state

    def allow(self) -> bool:
        """May a call go out now? In half-open, only the first caller (the probe) may."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probe_out:
            self._state = BreakerState.HALF_OPEN
            self._probe_out = True
            return True
        return False

    def record_success(self) -> None:
        if self._state is BreakerState.OPEN:
            return  # a call that started before the circuit opened: only the probe decides
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._probe_out = False

    def record_failure(self) -> None:
        if self._state is BreakerState.OPEN:
            return
        if self._state is BreakerState.HALF_OPEN or self._probe_out:
            self._open()
            return
        self._failures += 1
        if self._failures >= self.failure_threshold:
            self._open()

    def release_probe(self) -> None:
        """A probe that ended without an outcome (cancelled): let the next caller probe."""
        if self._probe_out:
            self._probe_out = False

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._failures = 0
        self._probe_out = False
