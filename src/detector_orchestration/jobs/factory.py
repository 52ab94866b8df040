"""Builds the job service from the settings: ``jobs.backend`` picks memory or Redis."""

from __future__ import annotations

from typing import Any

import httpx

from detector_orchestration.config import JobSettings
from detector_orchestration.executor.backoff import Backoff
from detector_orchestration.jobs.queue import JobQueue, MemoryJobQueue
from detector_orchestration.jobs.redis_queue import RedisJobQueue
from detector_orchestration.jobs.sealing import PayloadSealer
from detector_orchestration.jobs.service import JobService
from detector_orchestration.jobs.store import JobStore, MemoryJobStore, RedisJobStore
from detector_orchestration.jobs.webhook import WebhookSender
from detector_orchestration.jobs.worker import JobParts
from detector_orchestration.metrics import OrchMetrics
from detector_orchestration.service import Orchestrator
from llama_mapper.crypto import key_wrapper
from llama_mapper.secrets import SecretProvider

#: Secrets an embedded install may generate on first use (see the mapper's secrets).
GENERATED_SECRETS = ("payload_key_secret", "webhook_secret")


def generated_secret_names(settings: JobSettings) -> frozenset[str]:
    return frozenset(getattr(settings, name) for name in GENERATED_SECRETS)


def build_job_service(
    settings: JobSettings,
    *,
    redis_url: str | None,
    secrets: SecretProvider,
    http: httpx.AsyncClient,
    orchestrator: Orchestrator,
    metrics: OrchMetrics,
) -> JobService:
    queue: JobQueue
    store: JobStore
    if settings.backend == "redis":
        if not redis_url:
            raise ValueError("jobs.backend is redis but the mapper's redis.url is not set")
        redis = _redis(redis_url, settings)
        queue = RedisJobQueue(
            redis,
            prefix=settings.key_prefix,
            group=settings.consumer_group,
            consumer=settings.consumer_name,
            block_ms=settings.block_ms,
            claim_idle_ms=settings.claim_idle_ms,
        )
        store = RedisJobStore(redis, settings.key_prefix)
    else:
        queue = MemoryJobQueue()
        store = MemoryJobStore(max_jobs=max(settings.max_queued * 10, 1000))
    sender = WebhookSender(
        http,
        secrets,
        secret_name=settings.webhook_secret,
        timeout_s=settings.webhook_timeout_seconds,
        max_attempts=settings.webhook_max_attempts,
        backoff=Backoff(
            settings.webhook_backoff_base_ms / 1000, settings.webhook_backoff_max_ms / 1000
        ),
        on_attempt=lambda outcome: metrics.webhooks.labels(outcome).inc(),
    )
    parts = JobParts(
        settings=settings,
        store=store,
        queue=queue,
        sealer=PayloadSealer(key_wrapper(secrets, settings.payload_key_secret)),
        sender=sender,
        orchestrator=orchestrator,
        metrics=metrics,
        retry_backoff=Backoff(0.2, 5.0),
    )
    return JobService(parts)


def _redis(url: str, settings: JobSettings) -> Any:
    from redis.asyncio import Redis

    # A blocking read holds its connection for block_ms: the timeout must outlast it.
    return Redis.from_url(
        url, socket_timeout=settings.block_ms / 1000 + 2.0, socket_connect_timeout=1.0
    )
