"""The job queue contract, and the in-process queue of an embedded install.

A queue carries job ids only (the job's state and sealed payload live in the
:mod:`.store`), in priority order. A delivery stays the worker's until it is acked; a
durable queue (:mod:`.redis_queue`) hands an unacked delivery of a crashed worker to
another one, which is why the worker calls :meth:`JobQueue.touch` while it works.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import Protocol

from detector_orchestration.jobs.model import PRIORITIES


class QueueUnavailable(Exception):
    """The queue's backend cannot be reached; the message names no job content."""


@dataclass(frozen=True)
class QueuedJob:
    job_id: str
    priority: str
    #: The backend's handle of this delivery (a stream entry id); "" in memory.
    token: str = ""
    #: Taken over from a worker that stopped answering (crash, kill, lost host).
    reclaimed: bool = False


class JobQueue(Protocol):
    #: How often :meth:`touch` must be called while working; ``None``: never.
    touch_interval_s: float | None

    async def put(self, job_id: str, priority: str) -> None: ...

    async def get(self) -> QueuedJob:
        """The most urgent waiting job; waits for one. :class:`QueueUnavailable`."""
        ...

    async def ack(self, job: QueuedJob) -> None:
        """Done with it (finished, cancelled or gone): it is never delivered again."""
        ...

    async def touch(self, job: QueuedJob) -> None:
        """Still working on it: a durable queue must not hand it to another worker."""
        ...

    async def depth(self) -> dict[str, int]:
        """Jobs waiting or being worked on, per priority."""
        ...

    async def aclose(self) -> None: ...


def priority_rank(priority: str) -> int:
    return PRIORITIES.index(priority) if priority in PRIORITIES else len(PRIORITIES)


class MemoryJobQueue:
    """An asyncio priority queue: FIFO within a priority; lost with the process."""

    touch_interval_s: float | None = None

    def __init__(self) -> None:
        self._queue: asyncio.PriorityQueue[tuple[int, int, str, str]] = asyncio.PriorityQueue()
        self._order = itertools.count()
        self._depth = dict.fromkeys(PRIORITIES, 0)

    async def put(self, job_id: str, priority: str) -> None:
        self._depth[priority] += 1
        self._queue.put_nowait((priority_rank(priority), next(self._order), job_id, priority))

    async def get(self) -> QueuedJob:
        _, _, job_id, priority = await self._queue.get()
        return QueuedJob(job_id, priority)

    async def ack(self, job: QueuedJob) -> None:
        self._depth[job.priority] -= 1

    async def touch(self, job: QueuedJob) -> None:
        return None

    async def depth(self) -> dict[str, int]:
        return dict(self._depth)

    async def aclose(self) -> None:
        return None
