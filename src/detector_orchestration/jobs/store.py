"""Where job state lives: the job document (no content) and its sealed payload.

Every change is a compare-and-set on the status (:meth:`JobStore.transition`): a worker
starts a job only if it is still queued (or running, when reclaimed), records a result
only if it is still running, and a cancel wins over a result that comes later. That one
rule keeps the API, several workers and several replicas consistent without locks.

* :class:`MemoryJobStore`: a dict (embedded installs; one event loop, so each call is
  atomic).
* :class:`RedisJobStore`: one hash per job (``status``, ``doc``, ``payload``) with a TTL
  (``active_ttl`` while active, ``result_ttl`` once finished); the compare-and-set is
  one Lua script.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any, Protocol

from redis.exceptions import RedisError

from detector_orchestration.jobs.model import Job, JobStatus
from detector_orchestration.jobs.queue import QueueUnavailable

#: What :meth:`JobStore.transition` answers when there is no such job (expired, never).
MISSING = "missing"


class JobStore(Protocol):
    async def create(self, job: Job, payload: str, ttl_s: int) -> None: ...

    async def get(self, job_id: str) -> Job | None: ...

    async def payload(self, job_id: str) -> str | None: ...

    async def transition(
        self, job: Job, allowed_from: Collection[JobStatus], *, drop_payload: bool, ttl_s: int
    ) -> str | None:
        """Store ``job`` if the stored status is one of ``allowed_from``: ``None``; else
        the stored status (or :data:`MISSING`), and nothing changes."""
        ...

    async def aclose(self) -> None: ...


class MemoryJobStore:
    def __init__(self, max_jobs: int = 100_000) -> None:
        self._jobs: dict[str, tuple[Job, str | None, float]] = {}
        self._max_jobs = max_jobs

    def _live(self, job_id: str) -> tuple[Job, str | None, float] | None:
        entry = self._jobs.get(job_id)
        if entry is not None and entry[2] <= time.monotonic():
            del self._jobs[job_id]
            return None
        return entry

    def _prune(self) -> None:
        now = time.monotonic()
        for job_id in [k for k, (_, _, expires) in self._jobs.items() if expires <= now]:
            del self._jobs[job_id]
        while len(self._jobs) >= self._max_jobs:  # oldest first (insertion order)
            del self._jobs[next(iter(self._jobs))]

    async def create(self, job: Job, payload: str, ttl_s: int) -> None:
        if len(self._jobs) >= self._max_jobs:
            self._prune()
        self._jobs[job.job_id] = (_copy(job), payload, time.monotonic() + ttl_s)

    async def get(self, job_id: str) -> Job | None:
        entry = self._live(job_id)
        return _copy(entry[0]) if entry is not None else None

    async def payload(self, job_id: str) -> str | None:
        entry = self._live(job_id)
        return entry[1] if entry is not None else None

    async def transition(
        self, job: Job, allowed_from: Collection[JobStatus], *, drop_payload: bool, ttl_s: int
    ) -> str | None:
        entry = self._live(job.job_id)
        if entry is None:
            return MISSING
        current, payload, _ = entry
        if current.status not in allowed_from:
            return current.status.value
        kept = None if drop_payload else payload
        self._jobs[job.job_id] = (_copy(job), kept, time.monotonic() + ttl_s)
        return None

    async def aclose(self) -> None:
        return None


def _copy(job: Job) -> Job:
    """Callers mutate the jobs they get: the store keeps its own copy."""
    return Job.loads(job.dumps())


# KEYS[1] the job's hash; ARGV: new status, doc, drop payload (1/0), ttl, allowed...
_TRANSITION = """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return 'missing' end
for i = 5, #ARGV do
  if ARGV[i] == current then
    redis.call('HSET', KEYS[1], 'status', ARGV[1], 'doc', ARGV[2])
    if ARGV[3] == '1' then redis.call('HDEL', KEYS[1], 'payload') end
    redis.call('EXPIRE', KEYS[1], ARGV[4])
    return ''
  end
end
return current
"""


class RedisJobStore:
    def __init__(self, redis: Any, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}job:"
        self._transition = redis.register_script(_TRANSITION)

    def _key(self, job_id: str) -> str:
        return self._prefix + job_id

    async def create(self, job: Job, payload: str, ttl_s: int) -> None:
        key = self._key(job.job_id)
        mapping = {"status": job.status.value, "doc": job.dumps(), "payload": payload}
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping=mapping)
                pipe.expire(key, ttl_s)
                await pipe.execute()
        except RedisError as exc:
            raise _unavailable(exc) from None

    async def get(self, job_id: str) -> Job | None:
        try:
            doc = await self._redis.hget(self._key(job_id), "doc")
        except RedisError as exc:
            raise _unavailable(exc) from None
        return Job.loads(doc) if doc is not None else None

    async def payload(self, job_id: str) -> str | None:
        try:
            value = await self._redis.hget(self._key(job_id), "payload")
        except RedisError as exc:
            raise _unavailable(exc) from None
        return value.decode() if isinstance(value, bytes) else value

    async def transition(
        self, job: Job, allowed_from: Collection[JobStatus], *, drop_payload: bool, ttl_s: int
    ) -> str | None:
        args = [job.status.value, job.dumps(), "1" if drop_payload else "0", ttl_s]
        try:
            reply = await self._transition(
                keys=[self._key(job.job_id)], args=[*args, *(s.value for s in allowed_from)]
            )
        except RedisError as exc:
            raise _unavailable(exc) from None
        text = reply.decode() if isinstance(reply, bytes) else str(reply or "")
        return text or None

    async def aclose(self) -> None:
        return None  # the queue owns the shared connection


def _unavailable(exc: Exception) -> QueueUnavailable:
    return QueueUnavailable(f"job store unavailable ({type(exc).__name__})")
