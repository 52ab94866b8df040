"""Runs the planned detectors concurrently under one deadline.

Per detector, in this order: the circuit breaker may refuse the call (``circuit_open``);
the bulkhead caps concurrent calls (waiting for a slot spends the deadline, not more);
each attempt gets ``min(detector timeout, time left)``; a retryable failure or a timeout
is retried after a jittered exponential backoff, only if the backoff still fits in the
deadline. This is the only retry layer: clients make one attempt each. Every failed
attempt, returned error and timeout alike, counts against the breaker; running out of
time while waiting for a bulkhead slot does not (that is this process's congestion).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from detector_orchestration.detectors.base import Detector, DetectorError, DetectorOutput
from detector_orchestration.executor.backoff import Backoff
from detector_orchestration.executor.deadline import Deadline
from llama_mapper.resilience.breaker import CircuitBreaker


class RunStatus(StrEnum):
    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    CIRCUIT_OPEN = "circuit_open"
    UNSUPPORTED = "unsupported_content_type"
    NOT_REGISTERED = "not_registered"


@dataclass(frozen=True)
class Planned:
    detector: Detector
    timeout_s: float
    retries: int


@dataclass
class DetectorRun:
    name: str
    status: RunStatus
    latency_ms: float = 0.0
    attempts: int = 0
    #: A safe message (no content, no raw detector text).
    error: str | None = None
    output: DetectorOutput | None = None
    version: str | None = None
    pack: str | None = None
    cached: bool = False
    #: Each attempt's duration, for the benchmark's "slowest detector" figure.
    attempt_ms: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.OK

    def as_dict(self) -> dict[str, object]:
        return {
            "detector": self.name,
            "status": self.status.value,
            "latency_ms": round(self.latency_ms, 3),
            "attempts": self.attempts,
            "error": self.error,
            "version": self.version,
            "cached": self.cached,
        }


@dataclass
class ExecutorConfig:
    breaker_failures: int = 5
    breaker_reset_s: float = 30.0
    bulkhead: int = 32
    backoff: Backoff = field(default_factory=Backoff)


Observer = Callable[[DetectorRun], None]


class Executor:
    def __init__(
        self,
        config: ExecutorConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_run: Observer | None = None,
    ) -> None:
        self.config = config or ExecutorConfig()
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}
        self._bulkheads: dict[str, asyncio.Semaphore] = {}
        self._on_run = on_run

    def breaker(self, name: str) -> CircuitBreaker:
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = CircuitBreaker(
                self.config.breaker_failures, self.config.breaker_reset_s, clock=self._clock
            )
            self._breakers[name] = breaker
        return breaker

    def _bulkhead(self, name: str) -> asyncio.Semaphore:
        semaphore = self._bulkheads.get(name)
        if semaphore is None:
            semaphore = asyncio.Semaphore(self.config.bulkhead)
            self._bulkheads[name] = semaphore
        return semaphore

    async def run_all(
        self, planned: Sequence[Planned], content: str, content_type: str, deadline: Deadline
    ) -> list[DetectorRun]:
        if not planned:
            return []
        if len(planned) == 1:
            return [await self.run_one(planned[0], content, content_type, deadline)]
        return list(
            await asyncio.gather(
                *(self.run_one(p, content, content_type, deadline) for p in planned)
            )
        )

    async def run_one(
        self, plan: Planned, content: str, content_type: str, deadline: Deadline
    ) -> DetectorRun:
        detector = plan.detector
        run = DetectorRun(
            detector.name, RunStatus.ERROR, version=detector.version, pack=detector.pack
        )
        started = self._clock()
        try:
            await self._attempts(plan, run, content, content_type, deadline)
        finally:
            run.latency_ms = (self._clock() - started) * 1000
            if self._on_run is not None:
                self._on_run(run)
        return run

    async def _attempts(
        self, plan: Planned, run: DetectorRun, content: str, content_type: str, deadline: Deadline
    ) -> None:
        detector = plan.detector
        if detector.content_types and content_type not in detector.content_types:
            run.status, run.error = RunStatus.UNSUPPORTED, f"does not accept {content_type}"
            return
        breaker = self.breaker(detector.name)
        bulkhead = self._bulkhead(detector.name)
        for attempt in range(1, plan.retries + 2):
            if not breaker.allow():
                if run.attempts == 0:
                    run.status, run.error = RunStatus.CIRCUIT_OPEN, "circuit open"
                return  # keep the last attempt's status and error
            budget = deadline.cap(plan.timeout_s)
            if budget <= 0:
                breaker.release_probe()
                run.status, run.error = RunStatus.TIMEOUT, "request deadline exhausted"
                return
            run.attempts = attempt
            outcome = await self._attempt(detector, bulkhead, content, content_type, budget, run)
            if outcome is None:
                breaker.record_success()
                run.status, run.error = RunStatus.OK, None
                return
            run.status, run.error = outcome.status, outcome.message
            if outcome.counts:
                breaker.record_failure()
            else:
                breaker.release_probe()  # our own congestion says nothing about the detector
            if not outcome.retryable or attempt > plan.retries:
                return
            delay = self.config.backoff.delay(attempt)
            if delay >= deadline.remaining():
                return
            await asyncio.sleep(delay)

    async def _attempt(
        self,
        detector: Detector,
        bulkhead: asyncio.Semaphore,
        content: str,
        content_type: str,
        budget: float,
        run: DetectorRun,
    ) -> _Failure | None:
        """``None`` on success (output stored on ``run``), else what went wrong.

        Waiting for a bulkhead slot spends the attempt's budget, but a wait that runs out
        is this process's congestion, not the detector's failure: it does not count
        against the breaker and is not retried (the next attempt would queue again).
        """
        began = self._clock()
        try:
            try:
                async with asyncio.timeout(budget):
                    await bulkhead.acquire()
            except TimeoutError:
                return _Failure(RunStatus.TIMEOUT, "no free slot (bulkhead full)", False, False)
            try:
                left = budget - (self._clock() - began)
                async with asyncio.timeout(max(left, 0.0)):
                    run.output = await detector.detect(content, content_type)
            finally:
                bulkhead.release()
        except TimeoutError:
            return _Failure(RunStatus.TIMEOUT, f"timed out after {budget * 1000:.0f} ms", True)
        except DetectorError as exc:
            return _Failure(RunStatus.ERROR, _safe(str(exc)), exc.retryable)
        except asyncio.CancelledError:
            self.breaker(detector.name).release_probe()
            raise
        except Exception as exc:  # a bug in a detector must not fail the whole request
            return _Failure(RunStatus.ERROR, f"detector raised {type(exc).__name__}", False)
        finally:
            run.attempt_ms.append((self._clock() - began) * 1000)
        return None


@dataclass(frozen=True)
class _Failure:
    status: RunStatus
    message: str
    retryable: bool
    #: Whether it counts against the detector's circuit breaker.
    counts: bool = True


def _safe(message: str) -> str:
    """Detector errors are written not to quote content; still bound their size."""
    return message if len(message) <= 200 else message[:197] + "..."
