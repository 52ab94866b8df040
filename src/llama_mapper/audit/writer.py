"""Write-behind writer for evidence events.

Request handlers must not pay one database round trip per audit event, so events are queued
in memory and a single background task appends them to the store in batches. The queue is
bounded (``max_queue``) so a slow or failing store turns into backpressure or load shedding
instead of unbounded memory growth. Two durability levels are offered:

* ``submit`` (durability=async): enqueue and return. If the process dies before the flush the
  event is lost; a failed append is retried (in order) until ``stop()``'s timeout.
* ``submit_and_wait`` (durability=sync): return only once the batch containing the event is
  committed, or raise the store's error so the caller can fail the request instead of claiming
  evidence that does not exist.

Only asyncio is used (no threads), so the writer lives on the event loop of the API. Logs go to
the ``llama_mapper.audit`` logger and carry counts and exception type names only, never event
content or exception messages, because evidence payloads and driver error messages (which often
echo bound parameters) may contain personal data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar

__all__ = ["EventSink", "EventWriter", "QueueFull", "WriterStats", "WriterStopped"]

logger = logging.getLogger("llama_mapper.audit")

E = TypeVar("E")
E_contra = TypeVar("E_contra", contravariant=True)


class EventSink(Protocol[E_contra]):
    """What the writer needs from the store: one call that durably appends a batch.

    A structural type so the writer does not depend on the concrete ``EventStore`` (and can be
    tested without a database). ``append`` must be all-or-nothing for a batch; the return value
    is ignored.
    """

    async def append(self, events: Sequence[E_contra]) -> Sequence[object]: ...


class QueueFull(Exception):
    """The queue is full in ``"shed"`` mode; the API maps this to 503 and a metric."""


class WriterStopped(Exception):
    """The writer no longer accepts events (``stop()`` was called), or shut down before a
    synchronous event could be written."""


@dataclass
class WriterStats:
    """A snapshot of the writer's counters, for metrics and health checks.

    ``queued`` counts events accepted but not yet committed (including a batch being retried);
    ``failed_batches`` counts failed ``append`` calls (each retry counts); ``failed`` counts
    events given up on: synchronous events whose batch failed (the caller got the error) and
    events still unwritten when ``stop()`` timed out. ``last_error`` is the exception type name
    only, because messages may echo event content.
    """

    queued: int
    written: int
    shed: int
    failed_batches: int
    last_error: str | None
    failed: int = 0


@dataclass(eq=False)
class _Item(Generic[E]):
    """A queued event with the loop time it was queued and, for sync submits, its waiter."""

    event: E
    enqueued_at: float
    waiter: asyncio.Future[None] | None = None


class EventWriter(Generic[E]):
    """Batches events into ``sink.append`` calls from one background task, in FIFO order."""

    def __init__(
        self,
        sink: EventSink[E],
        *,
        max_queue: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.05,
        backpressure: Literal["block", "shed"] = "block",
        retry_delay: float = 0.5,
        on_written: Callable[[int], None] | None = None,
        on_shed: Callable[[int], None] | None = None,
    ) -> None:
        if max_queue < 1 or batch_size < 1:
            raise ValueError("max_queue and batch_size must be at least 1")
        if flush_interval < 0 or retry_delay < 0:
            raise ValueError("flush_interval and retry_delay must not be negative")
        if backpressure not in ("block", "shed"):
            raise ValueError(f"unknown backpressure mode {backpressure!r}")
        self._sink = sink
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._backpressure = backpressure
        self._retry_delay = retry_delay
        self._on_written = on_written
        self._on_shed = on_shed

        self._queue: deque[_Item[E]] = deque()
        # The batch taken from the queue and not yet committed. It still counts against
        # max_queue so a failing store cannot make memory grow past the bound.
        self._batch: list[_Item[E]] = []
        self._wakeup = asyncio.Event()  # flusher: events arrived, a batch filled, or stop
        self._room = asyncio.Event()  # blocked producers: room freed, or stop
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._stopped = asyncio.Event()

        self._written = 0
        self._shed = 0
        self._failed_batches = 0
        self._failed = 0
        self._last_error: str | None = None

    # ------------------------------------------------------------------ public API

    @property
    def depth(self) -> int:
        """Events accepted but not yet committed (queued plus the batch in flight)."""
        return len(self._queue) + len(self._batch)

    def stats(self) -> WriterStats:
        """Return a snapshot of the counters."""
        return WriterStats(
            queued=self.depth,
            written=self._written,
            shed=self._shed,
            failed_batches=self._failed_batches,
            last_error=self._last_error,
            failed=self._failed,
        )

    async def start(self) -> None:
        """Start the background flusher (idempotent while running).

        A writer whose ``stop()`` has finished starts again: an app's lifespan can run more
        than once in one process (test clients run it per request), and each run must record.
        """
        if self._stopping and self._stopped.is_set():
            self._stopping = False
            self._stopped = asyncio.Event()
            self._task = None
        if self._task is None and not self._stopping:
            self._task = asyncio.create_task(self._run(), name="llama-mapper-audit-writer")

    async def submit(self, event: E) -> None:
        """Queue ``event`` and return without waiting for the write (durability=async).

        When the queue is full, ``"block"`` mode waits for the flusher to free room and
        ``"shed"`` mode raises ``QueueFull`` at once so the API can answer 503.
        """
        await self._enqueue(event, None)

    async def submit_many(self, events: Sequence[E]) -> None:
        """:meth:`submit` for a batch's events, in order, with one wake-up of the flusher.

        When the whole batch fits, it is queued without a round through the event loop per
        event (``/map/batch`` queues up to a few hundred at once); otherwise events are
        submitted one by one, with the usual blocking or shedding.
        """
        if self._stopping:
            raise WriterStopped("the event writer is stopped")
        if self._task is None:
            await self.start()
        if self.depth + len(events) > self._max_queue:
            for event in events:
                await self._enqueue(event, None)
            return
        now = asyncio.get_running_loop().time()
        was_empty = not self._queue
        self._queue.extend(_Item(event, now) for event in events)
        if events and (was_empty or len(self._queue) >= self._batch_size):
            self._wakeup.set()

    async def submit_and_wait(self, event: E) -> None:
        """Queue ``event`` and return once it is committed (durability=sync).

        If its batch fails, the writer retries once at once (a transient blip should not fail
        the request) and then raises the store's exception here; the event is not retried
        further, because the caller is told it was not written and may retry itself.
        Raises ``WriterStopped`` if the writer shuts down before the event is written.
        """
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._enqueue(event, waiter)
        await waiter

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting events, flush what is queued, and end the flusher.

        Failed batches keep being retried until ``timeout`` seconds have passed; whatever is
        still unwritten then is counted in ``stats().failed`` and logged as a count, and its
        sync waiters get ``WriterStopped``. Calling ``stop()`` again waits for the first call.
        """
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        self._wakeup.set()
        self._room.set()  # blocked producers wake up and raise WriterStopped
        try:
            if self._task is None and self.depth:
                # Events were queued before start(); flush them rather than drop them.
                self._task = asyncio.create_task(self._run(), name="llama-mapper-audit-writer")
            if self._task is not None:
                done, _ = await asyncio.wait({self._task}, timeout=timeout)
                if not done:
                    self._task.cancel()
                # Retrieve the outcome so a crashed flusher (already logged) or the
                # cancellation does not surface as "exception never retrieved".
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
            self._abandon_remaining()
        finally:
            self._stopped.set()

    # ------------------------------------------------------------------ producers

    async def _enqueue(self, event: E, waiter: asyncio.Future[None] | None) -> None:
        if self._stopping:
            raise WriterStopped("the event writer is stopped")
        if self._task is None:
            await self.start()
        while self.depth >= self._max_queue:
            if self._backpressure == "shed":
                self._shed += 1
                self._call(self._on_shed, 1)
                raise QueueFull(f"evidence queue is full ({self._max_queue} events)")
            self._room.clear()
            await self._room.wait()
            if self._stopping:
                raise WriterStopped("the event writer is stopped")
        loop = asyncio.get_running_loop()
        self._queue.append(_Item(event, loop.time(), waiter))
        # Wake the flusher only when it has something new to decide on: the first event
        # (start the linger clock) or a full batch (flush now instead of lingering).
        if len(self._queue) == 1 or len(self._queue) >= self._batch_size:
            self._wakeup.set()

    # ------------------------------------------------------------------ flusher

    async def _run(self) -> None:
        """Flusher loop: collect a batch, write it (with retries), repeat until drained."""
        try:
            while True:
                if not self._batch:
                    await self._collect()
                    if not self._queue:
                        return  # only reached when stopping and drained
                    n = min(self._batch_size, len(self._queue))
                    self._batch = [self._queue.popleft() for _ in range(n)]
                await self._write_batch()
        except Exception:  # a bug here must not silently stop all audit writes
            logger.exception("audit writer crashed; %d events unwritten", self.depth)
            raise

    async def _collect(self) -> None:
        """Wait until there is a batch worth writing.

        That is: a full batch, or the oldest queued event has waited ``flush_interval``, or
        the writer is stopping (then flush at once). Returns with an empty queue only when
        stopping.
        """
        loop = asyncio.get_running_loop()
        while not self._queue:
            if self._stopping:
                return
            self._wakeup.clear()
            await self._wakeup.wait()
        while len(self._queue) < self._batch_size and not self._stopping:
            remaining = self._queue[0].enqueued_at + self._flush_interval - loop.time()
            if remaining <= 0:
                return
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)

    async def _write_batch(self) -> None:
        """Append ``self._batch`` with one ``sink.append`` call per attempt until it commits.

        Async events are retried every ``retry_delay`` (in order, never dropped) until
        ``stop()`` gives up. Sync events get one immediate retry and are then failed back to
        their callers and removed, so the rest of the batch keeps its order.
        """
        attempt = 0
        while self._batch:
            attempt += 1
            try:
                await self._sink.append([item.event for item in self._batch])
            except Exception as exc:
                self._failed_batches += 1
                self._last_error = type(exc).__name__
                logger.warning(
                    "audit append of %d events failed (%s), attempt %d",
                    len(self._batch),
                    type(exc).__name__,
                    attempt,
                )
                if any(item.waiter is not None for item in self._batch):
                    if attempt == 1:
                        continue  # one immediate retry for batches with sync waiters
                    self._fail_sync_waiters(exc)
                    if not self._batch:
                        return
                await asyncio.sleep(self._retry_delay)
            else:
                n = len(self._batch)
                for item in self._batch:
                    if item.waiter is not None and not item.waiter.done():
                        item.waiter.set_result(None)
                self._batch = []
                self._written += n
                self._room.set()
                self._call(self._on_written, n)

    def _fail_sync_waiters(self, exc: Exception) -> None:
        """Hand ``exc`` to the sync waiters in the batch and drop their events from it."""
        kept: list[_Item[E]] = []
        dropped = 0
        for item in self._batch:
            if item.waiter is None:
                kept.append(item)
                continue
            dropped += 1
            if not item.waiter.done():
                item.waiter.set_exception(exc)
        self._batch = kept
        self._failed += dropped
        self._room.set()
        logger.error("audit append failed for %d sync events; callers notified", dropped)

    def _abandon_remaining(self) -> None:
        """After stop(): count what could not be written and release its sync waiters."""
        remaining = [*self._batch, *self._queue]
        self._batch = []
        self._queue.clear()
        if not remaining:
            return
        self._failed += len(remaining)
        for item in remaining:
            if item.waiter is not None and not item.waiter.done():
                item.waiter.set_exception(
                    WriterStopped("the event writer stopped before the event was written")
                )
        logger.error("audit writer stopped with %d events unwritten", len(remaining))

    @staticmethod
    def _call(callback: Callable[[int], None] | None, n: int) -> None:
        """Run a metrics callback; a broken callback must not break the write path."""
        if callback is None:
            return
        try:
            callback(n)
        except Exception:
            logger.exception("audit writer callback failed")
