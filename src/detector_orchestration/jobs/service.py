"""The API side of async jobs: submit, read and cancel, tenant-scoped; and the lifecycle.

A job belongs to the tenant it was submitted for. Reads and cancels name the caller's
tenant, and another tenant's job answers exactly like an unknown one (404
``JOB_NOT_FOUND``), so ids reveal nothing across tenants.
"""

from __future__ import annotations

import logging
from typing import Any

from detector_orchestration.errors import (
    CallbackNotAllowed,
    JobAlreadyFinished,
    JobNotFound,
    PolicyNotFound,
    QueueFull,
)
from detector_orchestration.jobs.model import (
    ACTIVE,
    Job,
    JobStatus,
    WebhookState,
    new_job_id,
    now_iso,
    valid_job_id,
)
from detector_orchestration.jobs.queue import QueueUnavailable
from detector_orchestration.jobs.store import MISSING
from detector_orchestration.jobs.webhook import host_allowed
from detector_orchestration.jobs.worker import REQUEST_FIELD, JobParts, WorkerPool
from detector_orchestration.schemas import OrchestrateRequest
from llama_mapper.errors import BackendUnavailable

logger = logging.getLogger("detector_orchestration.jobs")


class JobService:
    def __init__(self, parts: JobParts) -> None:
        self.parts = parts
        self.settings = parts.settings
        self.pool = WorkerPool(parts)

    async def start(self) -> None:
        """Start this process's workers (idempotent; needs a running event loop)."""
        self.pool.start()

    async def stop(self) -> None:
        await self.pool.stop()

    async def aclose(self) -> None:
        await self.stop()
        await self.parts.store.aclose()
        await self.parts.queue.aclose()

    async def submit(self, request: OrchestrateRequest) -> Job:
        """Validate what can be checked now, seal the request, store the job, queue it."""
        callback = request.callback_url
        if callback is not None and not host_allowed(callback, self.settings.webhook_allowed_hosts):
            raise CallbackNotAllowed("callback_url's host is not in jobs.webhook_allowed_hosts")
        bundle = request.policy_bundle or self.parts.orchestrator.config.default_bundle
        if await self.parts.orchestrator.policies.resolve(request.tenant_id, bundle) is None:
            raise PolicyNotFound(f"no policy bundle {bundle!r} for this tenant")
        try:
            depth = await self.parts.queue.depth()
            if sum(depth.values()) >= self.settings.max_queued:
                raise QueueFull("the job queue is full; retry later", headers={"Retry-After": "5"})
            job = Job(
                new_job_id(),
                request.tenant_id,
                request.priority,
                callback_url=callback,
                webhook=WebhookState.PENDING if callback else WebhookState.NONE,
            )
            document = request.model_dump(mode="json", exclude={"callback_url"})
            sealed = await self.parts.sealer.seal(
                job.tenant_id, job.job_id, REQUEST_FIELD, document
            )
            await self.parts.store.create(job, sealed, self.settings.active_ttl_seconds)
            await self.parts.queue.put(job.job_id, job.priority)
            depth[job.priority] = depth.get(job.priority, 0) + 1
        except QueueUnavailable as exc:
            raise BackendUnavailable(f"{exc}; retry later", headers={"Retry-After": "1"}) from None
        self.parts.metrics.jobs.labels("submitted").inc()
        self.parts.metrics.set_depth(depth)
        await self.start()
        return job

    async def get(self, job_id: str, tenant_id: str | None) -> Job:
        """The job, if it is ``tenant_id``'s (any tenant's when ``None``: auth is off)."""
        if not valid_job_id(job_id):
            raise JobNotFound("no such job")
        try:
            job = await self.parts.store.get(job_id)
        except QueueUnavailable as exc:
            raise BackendUnavailable(f"{exc}; retry later", headers={"Retry-After": "1"}) from None
        if job is None or (tenant_id is not None and job.tenant_id != tenant_id):
            raise JobNotFound("no such job")
        return job

    async def view(self, job: Job) -> dict[str, Any]:
        return await self.parts.view(job)

    async def cancel(self, job_id: str, tenant_id: str | None) -> Job:
        """Cancel a queued or running job (a running one's result is then ignored, and no
        webhook is sent); 409 once it has finished."""
        job = await self.get(job_id, tenant_id)
        if job.finished:
            raise JobAlreadyFinished(f"the job has already {job.status.value}")
        job.status, job.finished_at = JobStatus.CANCELLED, now_iso()
        job.webhook = WebhookState.NONE
        job.touch()
        try:
            refused = await self.parts.store.transition(
                job, ACTIVE, drop_payload=True, ttl_s=self.settings.result_ttl_seconds
            )
        except QueueUnavailable as exc:
            raise BackendUnavailable(f"{exc}; retry later", headers={"Retry-After": "1"}) from None
        if refused == MISSING:
            raise JobNotFound("no such job")
        if refused is not None:
            raise JobAlreadyFinished(f"the job has already {refused}")
        self.parts.metrics.jobs.labels("cancelled").inc()
        logger.info("job cancelled", extra={"job_id": job.job_id})
        return job
