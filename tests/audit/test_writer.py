"""EventWriter: batching, ordering, backpressure, sync durability, retries and shutdown.

The sink here is a test double of our own ``EventSink`` protocol (not of a server): it records
each ``append`` call and can be told to fail a number of times, forever, or to be slow.
Assertions are on counts and order only; timeouts are generous so slow CI does not flake.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest

from llama_mapper.audit.writer import EventSink, EventWriter, QueueFull, WriterStopped

TIMEOUT = 5.0


class SinkError(Exception):
    pass


class MemorySink:
    """Records committed batches; fails the next ``fail_times`` appends, or all of them."""

    def __init__(
        self, *, fail_times: int = 0, fail_always: bool = False, delay: float = 0.0
    ) -> None:
        self.batches: list[list[int]] = []
        self.calls = 0
        self.fail_times = fail_times
        self.fail_always = fail_always
        self.delay = delay
        self.gate: asyncio.Event | None = None  # when set, append waits for it

    @property
    def events(self) -> list[int]:
        return [e for batch in self.batches for e in batch]

    async def append(self, events: Sequence[int]) -> Sequence[object]:
        self.calls += 1
        # Decided on entry, so a test can arm failures while an append waits on the gate.
        fail = self.fail_always or self.fail_times > 0
        if fail:
            self.fail_times -= 1
        if self.gate is not None:
            await self.gate.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        if fail:
            raise SinkError("boom")
        self.batches.append(list(events))
        return list(events)


def _check_protocol(sink: MemorySink) -> EventSink[int]:
    return sink  # mypy: MemorySink satisfies EventSink[int]


async def _until(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def test_batches_of_batch_size() -> None:
    sink = MemorySink()
    written: list[int] = []
    writer = EventWriter(sink, batch_size=100, flush_interval=1.0, on_written=written.append)
    await writer.start()
    for i in range(1000):
        await writer.submit(i)
    await _until(lambda: len(sink.events) == 1000)
    await writer.stop()
    assert len(sink.batches) == 10
    assert all(len(b) == 100 for b in sink.batches)
    assert sink.events == list(range(1000))
    assert sum(written) == 1000
    stats = writer.stats()
    assert stats.written == 1000
    assert stats.queued == 0
    assert stats.failed == 0


async def test_lone_event_flushed_without_stop() -> None:
    sink = MemorySink()
    writer = EventWriter(sink, batch_size=500, flush_interval=0.05)
    await writer.start()
    await writer.submit(7)
    # Flushed by the interval alone, without a full batch or stop().
    await _until(lambda: sink.events == [7])
    assert writer.depth == 0
    await writer.stop()


async def test_fifo_with_concurrent_producers() -> None:
    sink = MemorySink(delay=0.001)
    writer = EventWriter(sink, batch_size=7, max_queue=20, flush_interval=0.01)
    await writer.start()

    async def produce(base: int) -> None:
        for i in range(200):
            await writer.submit(base + i)

    await asyncio.gather(*(produce(k * 1000) for k in range(5)))
    await writer.stop()
    events = sink.events
    assert len(events) == 1000
    for k in range(5):
        mine = [e for e in events if k * 1000 <= e < (k + 1) * 1000]
        assert mine == [k * 1000 + i for i in range(200)]


async def test_block_mode_waits_for_room() -> None:
    sink = MemorySink()
    sink.gate = asyncio.Event()
    writer = EventWriter(sink, max_queue=3, batch_size=3, flush_interval=0.0)
    await writer.start()
    for i in range(3):
        await writer.submit(i)
    blocked = asyncio.create_task(writer.submit(3))
    await asyncio.sleep(0.05)
    assert not blocked.done()  # queue full: the producer waits
    assert writer.depth == 3
    sink.gate.set()  # the flush commits and frees room
    await asyncio.wait_for(blocked, TIMEOUT)
    await writer.stop()
    assert sink.events == [0, 1, 2, 3]


async def test_shed_mode_raises_queue_full_and_counts() -> None:
    sink = MemorySink()
    sink.gate = asyncio.Event()
    shed: list[int] = []
    writer = EventWriter(
        sink,
        max_queue=2,
        batch_size=2,
        flush_interval=0.0,
        backpressure="shed",
        on_shed=shed.append,
    )
    await writer.start()
    await writer.submit(0)
    await writer.submit(1)
    with pytest.raises(QueueFull):
        await writer.submit(2)
    with pytest.raises(QueueFull):
        await writer.submit(3)
    assert writer.stats().shed == 2
    assert sum(shed) == 2
    sink.gate.set()
    await writer.stop()
    assert sink.events == [0, 1]


async def test_submit_and_wait_returns_after_commit() -> None:
    sink = MemorySink(delay=0.02)
    writer = EventWriter(sink, batch_size=500, flush_interval=0.01)
    await writer.start()
    await writer.submit(1)
    await asyncio.wait_for(writer.submit_and_wait(2), TIMEOUT)
    assert sink.events == [1, 2]
    await writer.stop()


async def test_submit_and_wait_raises_on_failing_sink() -> None:
    sink = MemorySink(fail_always=True)
    writer = EventWriter(sink, flush_interval=0.0, retry_delay=0.01)
    await writer.start()
    with pytest.raises(SinkError):
        await asyncio.wait_for(writer.submit_and_wait(1), TIMEOUT)
    assert sink.calls == 2  # the first try and one immediate retry
    stats = writer.stats()
    assert stats.failed == 1
    assert stats.failed_batches == 2
    assert stats.last_error == "SinkError"
    assert writer.depth == 0
    await writer.stop(timeout=1.0)


async def test_submit_and_wait_survives_one_transient_failure() -> None:
    sink = MemorySink(fail_times=1)
    writer = EventWriter(sink, flush_interval=0.0, retry_delay=10.0)
    await writer.start()
    # The immediate retry succeeds, so the long retry_delay is never waited.
    await asyncio.wait_for(writer.submit_and_wait(1), TIMEOUT)
    assert sink.events == [1]
    await writer.stop()


async def test_failed_sync_events_leave_async_events_queued_in_order() -> None:
    sink = MemorySink()
    sink.gate = asyncio.Event()
    writer = EventWriter(sink, batch_size=10, flush_interval=0.0, retry_delay=0.01)
    await writer.start()
    await writer.submit(0)
    await _until(lambda: sink.calls == 1)  # the flusher took [0] and waits on the gate
    await writer.submit(1)
    sync = asyncio.create_task(writer.submit_and_wait(2))
    await _until(lambda: writer.depth == 3)  # [0] in flight, 1 and 2 queued
    await writer.submit(3)
    sink.fail_times = 2  # the batch [1, 2, 3] fails twice: first try and immediate retry
    sink.gate.set()
    await asyncio.sleep(0)
    with pytest.raises(SinkError):
        await asyncio.wait_for(sync, TIMEOUT)
    await writer.stop()
    assert 2 not in sink.events
    assert sink.events == [0, 1, 3]


async def test_retries_transient_failures_without_loss_or_reordering() -> None:
    sink = MemorySink(fail_times=3)
    writer = EventWriter(sink, batch_size=10, flush_interval=0.0, retry_delay=0.01)
    await writer.start()
    for i in range(50):
        await writer.submit(i)
    await _until(lambda: len(sink.events) == 50)
    await writer.stop()
    assert sink.events == list(range(50))
    stats = writer.stats()
    assert stats.failed_batches == 3
    assert stats.written == 50
    assert stats.failed == 0
    assert stats.last_error == "SinkError"


async def test_stop_flushes_everything_queued() -> None:
    sink = MemorySink(delay=0.001)
    writer = EventWriter(sink, batch_size=64, flush_interval=10.0)
    await writer.start()
    for i in range(1000):
        await writer.submit(i)
    await writer.stop(timeout=TIMEOUT)
    assert sink.events == list(range(1000))
    assert writer.depth == 0
    assert writer.stats().failed == 0


async def test_stop_flushes_events_queued_before_start() -> None:
    sink = MemorySink()
    writer = EventWriter(sink, flush_interval=10.0)
    await writer.submit(1)  # starts the flusher lazily
    await writer.stop()
    assert sink.events == [1]


async def test_submit_after_stop_raises() -> None:
    writer = EventWriter(MemorySink())
    await writer.start()
    await writer.stop()
    with pytest.raises(WriterStopped):
        await writer.submit(1)
    with pytest.raises(WriterStopped):
        await writer.submit_and_wait(1)
    await writer.stop()  # idempotent


async def test_blocked_producer_released_by_stop() -> None:
    sink = MemorySink(fail_always=True)
    writer = EventWriter(sink, max_queue=1, flush_interval=0.0, retry_delay=0.01)
    await writer.start()
    await writer.submit(0)
    blocked = asyncio.create_task(writer.submit(1))
    await asyncio.sleep(0.02)
    assert not blocked.done()
    await writer.stop(timeout=0.1)
    with pytest.raises(WriterStopped):
        await asyncio.wait_for(blocked, TIMEOUT)


async def test_stop_with_failing_sink_times_out_and_counts_unwritten(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = MemorySink(fail_always=True)
    writer = EventWriter(sink, batch_size=10, flush_interval=0.0, retry_delay=0.01)
    await writer.start()
    for i in range(25):
        await writer.submit(i)
    waiter = asyncio.create_task(writer.submit_and_wait(99))
    await asyncio.sleep(0.05)
    with caplog.at_level("ERROR", logger="llama_mapper.audit"):
        await asyncio.wait_for(writer.stop(timeout=0.3), TIMEOUT)
    with pytest.raises((WriterStopped, SinkError)):
        await asyncio.wait_for(waiter, TIMEOUT)
    stats = writer.stats()
    assert stats.written == 0
    assert stats.failed == 26  # 25 async events unwritten + the sync one
    assert stats.queued == 0
    assert writer.depth == 0
    assert "25 events unwritten" in caplog.text or "26 events unwritten" in caplog.text
    # Counts only: no event content in the logs.
    assert "99" not in caplog.text


async def test_stop_cancels_a_hung_append() -> None:
    sink = MemorySink()
    sink.gate = asyncio.Event()  # never set: append hangs
    writer = EventWriter(sink, flush_interval=0.0)
    await writer.start()
    await writer.submit(1)
    await asyncio.wait_for(writer.stop(timeout=0.1), TIMEOUT)
    assert writer.stats().failed == 1


def test_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        EventWriter(MemorySink(), batch_size=0)
    with pytest.raises(ValueError, match="backpressure"):
        EventWriter(MemorySink(), backpressure="drop")  # type: ignore[arg-type]


async def test_a_stopped_writer_can_be_started_again() -> None:
    sink = MemorySink()
    writer = EventWriter(sink, flush_interval=0.01)
    await writer.start()
    await writer.submit_and_wait(1)
    await writer.stop()
    await writer.start()  # e.g. an app lifespan that runs twice
    await writer.submit_and_wait(2)
    await writer.stop()
    assert sink.events == [1, 2]
