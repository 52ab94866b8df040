"""One global deadline per request; every timeout inside it is capped by what is left."""

from __future__ import annotations

import time
from collections.abc import Callable


class Deadline:
    def __init__(self, budget_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.started = clock()
        self.expires = self.started + budget_s

    def remaining(self) -> float:
        return max(0.0, self.expires - self._clock())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def cap(self, timeout_s: float) -> float:
        return min(timeout_s, self.remaining())
