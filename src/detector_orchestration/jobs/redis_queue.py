"""The durable job queue: Redis Streams with a consumer group, one stream per priority.

* ``put``: ``XADD <prefix>q:<priority>`` with the job id only (never content).
* ``get``: first, every ``claim_idle`` / 2, ``XAUTOCLAIM`` takes over deliveries idle for
  ``claim_idle_ms`` (their worker crashed: it stopped touching them), most urgent stream
  first; then a non-blocking ``XREADGROUP`` per stream in priority order, so critical and
  high are always read before normal and low; with nothing waiting, one blocking
  ``XREADGROUP`` over all streams (entries it returns beyond the first are kept, already
  this consumer's, and handed out next, most urgent first).
* ``touch``: ``XCLAIM ... 0 <id> JUSTID`` by the owner resets the entry's idle time.
* ``ack``: ``XACK`` + ``XDEL`` in one transaction: a finished job leaves no entry behind.
"""

from __future__ import annotations

import heapq
import os
import socket
import time
from typing import Any

from redis.exceptions import RedisError, ResponseError

from detector_orchestration.jobs.model import PRIORITIES
from detector_orchestration.jobs.queue import QueuedJob, QueueUnavailable, priority_rank


def default_consumer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class RedisJobQueue:
    def __init__(
        self,
        redis: Any,
        *,
        prefix: str,
        group: str,
        consumer: str | None = None,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
    ) -> None:
        self._redis = redis
        self._streams = {p: f"{prefix}q:{p}" for p in PRIORITIES}
        self._group = group
        self.consumer = consumer or default_consumer()
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms
        self.touch_interval_s: float | None = claim_idle_ms / 3000
        self._ready = False
        self._held: list[tuple[int, str, QueuedJob]] = []
        self._next_reclaim = 0.0

    async def _ensure_groups(self) -> None:
        if self._ready:
            return
        for stream in self._streams.values():
            try:
                await self._redis.xgroup_create(stream, self._group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._ready = True

    async def put(self, job_id: str, priority: str) -> None:
        try:
            await self._ensure_groups()
            await self._redis.xadd(self._streams[priority], {"job": job_id})
        except RedisError as exc:
            raise QueueUnavailable(f"job queue unavailable ({type(exc).__name__})") from None

    async def get(self) -> QueuedJob:
        try:
            await self._ensure_groups()
            while True:
                if self._held:
                    return heapq.heappop(self._held)[2]
                if time.monotonic() >= self._next_reclaim:
                    self._next_reclaim = time.monotonic() + self._claim_idle_ms / 2000
                    reclaimed = await self._reclaim()
                    if reclaimed is not None:
                        return reclaimed
                for stream in self._streams.values():
                    found = await self._read({stream: ">"}, block=None)
                    if found:
                        self._hold(found)
                        break
                else:
                    self._hold(await self._read({s: ">" for s in self._streams.values()}, True))
        except RedisError as exc:
            self._ready = False  # the server may have lost the groups (restart, flush)
            raise QueueUnavailable(f"job queue unavailable ({type(exc).__name__})") from None

    async def _reclaim(self) -> QueuedJob | None:
        for priority, stream in self._streams.items():
            reply = await self._redis.xautoclaim(
                stream, self._group, self.consumer, self._claim_idle_ms, "0-0", count=1
            )
            entries = reply[1]
            for entry_id, fields in entries:
                job_id = fields.get(b"job")
                if job_id is not None:
                    return QueuedJob(job_id.decode(), priority, _text(entry_id), reclaimed=True)
                await self._ack_entry(stream, _text(entry_id))  # not ours: drop it
        return None

    async def _read(self, streams: dict[str, str], block: bool | None) -> list[QueuedJob]:
        reply = await self._redis.xreadgroup(
            self._group,
            self.consumer,
            streams,
            count=1,
            block=self._block_ms if block else None,
        )
        found: list[QueuedJob] = []
        by_stream = {v: k for k, v in self._streams.items()}
        for stream, entries in reply or ():
            priority = by_stream[_text(stream)]
            for entry_id, fields in entries:
                job_id = fields.get(b"job")
                if job_id is None:
                    await self._ack_entry(_text(stream), _text(entry_id))
                    continue
                found.append(QueuedJob(job_id.decode(), priority, _text(entry_id)))
        return found

    def _hold(self, jobs: list[QueuedJob]) -> None:
        for job in jobs:
            heapq.heappush(self._held, (priority_rank(job.priority), job.token, job))

    async def ack(self, job: QueuedJob) -> None:
        try:
            await self._ack_entry(self._streams[job.priority], job.token)
        except RedisError as exc:
            raise QueueUnavailable(f"job queue unavailable ({type(exc).__name__})") from None

    async def _ack_entry(self, stream: str, entry_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(stream, self._group, entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()

    async def touch(self, job: QueuedJob) -> None:
        try:
            await self._redis.xclaim(
                self._streams[job.priority],
                self._group,
                self.consumer,
                0,
                [job.token],
                justid=True,
            )
        except RedisError as exc:
            raise QueueUnavailable(f"job queue unavailable ({type(exc).__name__})") from None

    async def depth(self) -> dict[str, int]:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for stream in self._streams.values():
                    pipe.xlen(stream)
                counts = await pipe.execute()
        except RedisError as exc:
            raise QueueUnavailable(f"job queue unavailable ({type(exc).__name__})") from None
        return {p: int(n) for p, n in zip(self._streams, counts, strict=True)}

    async def aclose(self) -> None:
        await self._redis.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
