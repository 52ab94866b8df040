"""Runs queued jobs: the worker pool of one process, and what it does with one job.

Per delivery: load the job; a finished one only has its webhook finished; else mark it
running (compare-and-set, so a cancelled job never starts), open the sealed request, run
it through the same :class:`~detector_orchestration.service.Orchestrator` as a sync call
(retryable failures again, up to ``max_attempts`` runs in all, crashes included), record
the result (only if still running: a cancel wins), drop the sealed payload, seal the
redacted text, send the webhook, and only then ack the delivery. A worker that dies at any
point leaves the delivery unacked for another worker to reclaim and resume.

Logs carry the job id, status and error codes: never content, never a URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from detector_orchestration.config import JobSettings
from detector_orchestration.executor.backoff import Backoff
from detector_orchestration.jobs.model import (
    ACTIVE,
    Delivery,
    Job,
    JobStatus,
    WebhookState,
    now_iso,
)
from detector_orchestration.jobs.queue import JobQueue, QueuedJob, QueueUnavailable
from detector_orchestration.jobs.sealing import PayloadSealer
from detector_orchestration.jobs.store import JobStore
from detector_orchestration.jobs.webhook import WebhookSender
from detector_orchestration.metrics import OrchMetrics
from detector_orchestration.schemas import OrchestrateRequest
from detector_orchestration.service import Orchestrator
from llama_mapper.crypto import DecryptionError
from llama_mapper.errors import MapperError

logger = logging.getLogger("detector_orchestration.jobs")
REQUEST_FIELD = "request"
REDACTED_FIELD = "redacted_content"


@dataclass
class JobParts:
    """What both the API side and the workers of one process use."""

    settings: JobSettings
    store: JobStore
    queue: JobQueue
    sealer: PayloadSealer
    sender: WebhookSender
    orchestrator: Orchestrator
    metrics: OrchMetrics
    retry_backoff: Backoff

    async def view(self, job: Job) -> dict[str, Any]:
        """The client's view, the redacted text opened for the job's own tenant."""
        redacted = None
        if job.sealed_redacted is not None:
            try:
                redacted = await self.sealer.open(
                    job.tenant_id, job.job_id, REDACTED_FIELD, job.sealed_redacted
                )
            except DecryptionError:
                logger.warning("job result unreadable", extra={"job_id": job.job_id})
        return job.view(redacted)


class JobRunner:
    def __init__(self, parts: JobParts) -> None:
        self.parts = parts
        self.store = parts.store
        self.settings = parts.settings

    async def handle(self, queued: QueuedJob) -> None:
        heartbeat = None
        if self.parts.queue.touch_interval_s is not None:
            heartbeat = asyncio.create_task(self._heartbeat(queued))
        try:
            await self._process(queued)
            await self.parts.queue.ack(queued)
        except QueueUnavailable as exc:
            # Not acked: a durable queue hands the job out again once Redis is back.
            extra = {"job_id": queued.job_id, "error": str(exc)}
            logger.warning("job backend unavailable", extra=extra)
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat

    async def _heartbeat(self, queued: QueuedJob) -> None:
        interval = self.parts.queue.touch_interval_s
        assert interval is not None
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(QueueUnavailable):
                await self.parts.queue.touch(queued)

    async def _process(self, queued: QueuedJob) -> None:
        metrics = self.parts.metrics
        job = await self.store.get(queued.job_id)
        if job is None:
            return  # expired or never stored
        if queued.reclaimed:
            metrics.jobs.labels("reclaimed").inc()
        if job.finished:
            if job.webhook is WebhookState.PENDING:
                await self._notify(job)  # the previous worker died before it was sent
            return
        if job.attempts >= self.settings.max_attempts:
            message = f"the job was started {job.attempts} times without finishing"
            error = _error("JOB_ATTEMPTS_EXHAUSTED", message, job.job_id)
            await self._finish(job, JobStatus.FAILED, error=error, result_status=500)
            return
        first_start = job.started_at is None
        job.status, job.attempts = JobStatus.RUNNING, job.attempts + 1
        job.started_at = job.started_at or now_iso()
        job.touch()
        if await self._save(job, ACTIVE) is not None:
            return  # cancelled meanwhile
        metrics.jobs.labels("started").inc()
        if first_start:
            metrics.job_wait.observe(_seconds_between(job.created_at, job.started_at))
        request = await self._request(job)
        if request is None:
            message = "the job's sealed request could not be opened"
            error = _error("PAYLOAD_UNREADABLE", message, job.job_id)
            await self._finish(job, JobStatus.FAILED, error=error, result_status=500)
            return
        await self._run(job, request)

    async def _request(self, job: Job) -> OrchestrateRequest | None:
        sealed = await self.store.payload(job.job_id)
        if sealed is None:
            return None
        try:
            raw = await self.parts.sealer.open(job.tenant_id, job.job_id, REQUEST_FIELD, sealed)
            return OrchestrateRequest.model_validate(raw).model_copy(
                update={"processing_mode": "sync", "callback_url": None}
            )
        except (DecryptionError, ValidationError, KeyError):
            return None

    async def _run(self, job: Job, request: OrchestrateRequest) -> None:
        while True:
            try:
                outcome = await self.parts.orchestrator.orchestrate(request, request_id=job.job_id)
                break
            except MapperError as exc:
                self.parts.metrics.errors.labels(exc.error_code).inc()
                if exc.retryable and job.attempts < self.settings.max_attempts:
                    await asyncio.sleep(self.parts.retry_backoff.delay(job.attempts))
                    job.attempts += 1
                    job.touch()
                    if await self._save(job, {JobStatus.RUNNING}) is not None:
                        return
                    continue
                body = _error(exc.error_code, exc.message, job.job_id, exc.retryable)
                await self._finish(job, JobStatus.FAILED, error=body, result_status=exc.status)
                return
            except Exception as exc:  # a bug: the type only (a message may quote content)
                extra = {"job_id": job.job_id, "error": type(exc).__name__}
                logger.error("job crashed", extra=extra)
                body = _error("INTERNAL_ERROR", "the job failed unexpectedly", job.job_id)
                await self._finish(job, JobStatus.FAILED, error=body, result_status=500)
                return
        result = dict(outcome.body)
        redacted = result.get(REDACTED_FIELD)
        if redacted is not None:
            job.sealed_redacted = await self.parts.sealer.seal(
                job.tenant_id, job.job_id, REDACTED_FIELD, redacted
            )
            result[REDACTED_FIELD] = None
        self.parts.metrics.decisions.labels(outcome.decision.value).inc()
        self.parts.metrics.cache.labels(outcome.cache).inc()
        if outcome.status == 206:
            self.parts.metrics.partial_coverage.inc()
        await self._finish(job, JobStatus.SUCCEEDED, result=result, result_status=outcome.status)

    async def _finish(
        self,
        job: Job,
        status: JobStatus,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        result_status: int,
    ) -> None:
        job.status, job.result, job.error, job.result_status = status, result, error, result_status
        job.finished_at = now_iso()
        job.touch()
        if await self._save(job, ACTIVE, final=True) is not None:
            return  # cancelled while running: the result is dropped
        self.parts.metrics.jobs.labels(status.value).inc()
        extra = {"job_id": job.job_id, "status": status.value, "attempts": job.attempts}
        logger.info("job finished", extra={**extra, "result_status": result_status})
        if job.webhook is WebhookState.PENDING:
            await self._notify(job)

    async def _notify(self, job: Job) -> None:
        assert job.callback_url is not None
        view = await self.parts.view(job)
        view.pop("webhook")
        body = orjson.dumps(view)

        async def record(delivery: Delivery) -> bool:
            job.deliveries.append(delivery)
            job.touch()
            return await self._save(job, {job.status}, final=True) is None

        delivered = await self.parts.sender.deliver(
            job.callback_url, job.tenant_id, job.job_id, body, len(job.deliveries) + 1, record
        )
        job.webhook = WebhookState.DELIVERED if delivered else WebhookState.FAILED
        job.touch()
        await self._save(job, {job.status}, final=True)

    async def _save(self, job: Job, allowed: Any, *, final: bool = False) -> str | None:
        ttl = self.settings.result_ttl_seconds if final else self.settings.active_ttl_seconds
        return await self.store.transition(job, allowed, drop_payload=final, ttl_s=ttl)


class WorkerPool:
    """At most ``settings.workers`` jobs at once; a new delivery is taken only when a slot
    is free, so a durable queue never holds more of this process's work than it runs."""

    def __init__(self, parts: JobParts) -> None:
        self.parts = parts
        self.runner = JobRunner(parts)
        self._loop_task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    @property
    def started(self) -> bool:
        return self._loop_task is not None

    def start(self) -> None:
        if self._loop_task is None or self._loop_task.done():  # (re)start after a crash
            self._loop_task = asyncio.create_task(self._loop(), name="orch-jobs")

    async def _loop(self) -> None:
        slots = asyncio.Semaphore(self.parts.settings.workers)
        failures = 0
        while True:
            await slots.acquire()
            try:
                queued = await self.parts.queue.get()
                failures = 0
            except QueueUnavailable as exc:
                slots.release()
                failures += 1
                logger.warning("job queue unavailable", extra={"error": str(exc)})
                await asyncio.sleep(self.parts.retry_backoff.delay(min(failures, 8)) + 0.05)
                continue
            task = asyncio.create_task(self._one(queued))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            task.add_done_callback(lambda _: slots.release())

    async def _one(self, queued: QueuedJob) -> None:
        try:
            await self.runner.handle(queued)
            with contextlib.suppress(QueueUnavailable):
                self.parts.metrics.set_depth(await self.parts.queue.depth())
        except Exception as exc:  # never let one job end the pool
            extra = {"job_id": queued.job_id, "error": type(exc).__name__}
            logger.error("job handling failed", extra=extra)

    async def stop(self) -> None:
        """Stop taking work and abandon jobs in flight: a durable queue's reclaim resumes
        them elsewhere (unacked); the in-process queue dies with the process anyway."""
        tasks = [t for t in (self._loop_task, *self._running) if t is not None]
        self._loop_task = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _error(code: str, message: str, job_id: str, retryable: bool = False) -> dict[str, Any]:
    """An ErrorBody for the job (the sync call's error, or the job's own)."""
    return {"error_code": code, "message": message, "request_id": job_id, "retryable": retryable}


def _seconds_between(start: str, end: str) -> float:
    def parse(value: str) -> datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    return max(0.0, (parse(end) - parse(start)).total_seconds())
