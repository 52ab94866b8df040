"""Everything a running mapper holds: the mapping service and its production backends.

Built synchronously (no connection is opened here) so that the app factory, the CLI and
tests assemble the same object; connections open on first use and close in ``aclose``.
Each backend has an embedded default (in-process memory, SQLite, env secrets) and a real
one a setting switches on (Redis, PostgreSQL, Vault).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llama_mapper.analytics.shipper import BACKEND_NAME as ANALYTICS_BACKEND
from llama_mapper.analytics.shipper import AnalyticsShipper
from llama_mapper.analytics.target import target_from_settings
from llama_mapper.audit import EventStore
from llama_mapper.audit.anchor_schedule import AnchorScheduler
from llama_mapper.audit.anchors import ANCHOR_SECRET, AnchorStore
from llama_mapper.audit.evidence import Fingerprinter, Sealed, event_from_response
from llama_mapper.audit.retention import RetentionTask
from llama_mapper.audit.writer import EventSink, EventWriter
from llama_mapper.audit.writer_process import ProcessStore, draft
from llama_mapper.auth.service import AuthService
from llama_mapper.auth.store import ApiKeyStore
from llama_mapper.config.settings import Settings
from llama_mapper.crypto import MetadataSealer, key_wrapper
from llama_mapper.idempotency import (
    IdempotencyStore,
    MemoryIdempotencyStore,
    RedisIdempotencyStore,
)
from llama_mapper.model.http_tier import HttpTier
from llama_mapper.observability.metrics import DEFAULT_BACKENDS, Metrics
from llama_mapper.ratelimit import MemoryBackend, RateLimiter, RedisBackend
from llama_mapper.retention import RetentionPolicy
from llama_mapper.secrets import SecretProvider, provider_from_settings
from llama_mapper.service import MapperService
from llama_mapper.storage.db.engine import create_engine, database_url
from llama_mapper.storage.db.replica import ReadRouter, read_router
from llama_mapper.storage.objects import ObjectStore, object_store_from_settings
from llama_mapper.storage.redis_batch import RedisBatcher

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger("llama_mapper.runtime")


@dataclass
class Runtime:
    settings: Settings
    service: MapperService
    metrics: Metrics
    secrets: SecretProvider
    engine: AsyncEngine
    auth: AuthService | None
    limiter: RateLimiter | None
    idempotency: IdempotencyStore | None
    #: Queues what ``evidence_item`` makes: MappingEvents (inline writer) or drafts
    #: (``audit.writer = "process"``, see :mod:`llama_mapper.audit.writer_process`).
    events: EventWriter[Any] | None = None
    fingerprint: Fingerprinter | None = None
    redis: Redis | None = None
    #: Shares Redis round trips across concurrent requests; owns one connection of its own.
    batcher: RedisBatcher | None = None
    analytics: AnalyticsShipper | None = None
    #: Engine choice for projection and report queries (a read replica when configured).
    reads: ReadRouter | None = None
    #: Turns an answered mapping and its fingerprint into what ``events`` queues.
    evidence_item: Callable[[Mapping[str, Any], tuple[str, str], Sealed | None], Any] = (
        event_from_response
    )
    writer_process: ProcessStore | None = None
    objects: ObjectStore | None = None
    anchor_scheduler: AnchorScheduler | None = None
    sealer: MetadataSealer | None = None
    retention: RetentionTask | None = None

    @property
    def uses_database(self) -> bool:
        return self.auth is not None or self.events is not None or self.analytics is not None

    async def aclose(self) -> None:
        if self.anchor_scheduler is not None:
            await self.anchor_scheduler.stop()
        if self.retention is not None:
            await self.retention.stop()
        if self.events is not None:
            await self.events.stop()  # flush the evidence queue before the engine goes
        if self.analytics is not None:
            await self.analytics.stop()
        if self.writer_process is not None:
            await self.writer_process.close()
        if self.batcher is not None:
            await self.batcher.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        if self.reads is not None and self.reads.replica is not None:
            await self.reads.replica.dispose()
        await self.engine.dispose()


def _redis(settings: Settings) -> Redis | None:
    uses_redis = (settings.rate_limit.enabled and settings.rate_limit.backend == "redis") or (
        settings.idempotency.enabled and settings.idempotency.backend == "redis"
    )
    if not uses_redis:
        return None
    if not settings.redis.url:
        raise ValueError("a redis backend is selected but redis.url is not set")
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    # No client-side retries: the limiter and the idempotency store have their own short
    # timeouts and failure modes, and a retrying client would hold requests for seconds.
    return Redis.from_url(
        settings.redis.url,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=5,
    )


def secret_provider(
    settings: Settings, also_generated: frozenset[str] = frozenset()
) -> SecretProvider:
    """This deployment's secrets. Of the missing ones, only keys the mapper itself owns
    (the API-key pepper, the fingerprint key, the anchor signing key) are generated for an
    embedded install; anything else is reported."""
    return provider_from_settings(
        settings.secrets,
        fallback_dir=settings.state_dir / "secrets",
        generated=frozenset(
            {
                settings.auth.pepper_secret,
                settings.audit.fingerprint_secret,
                ANCHOR_SECRET,
                settings.audit.metadata_kek_secret,
            }
            | also_generated
        ),
    )


def database_engine(settings: Settings, secrets: SecretProvider) -> AsyncEngine:
    """The primary's engine; the password (when configured) is read from ``secrets`` for
    every new connection, so a rotated password is used without a restart."""
    password_secret = settings.database.password_secret
    return create_engine(
        database_url(settings, secrets),
        password=(lambda: secrets.get(password_secret).value) if password_secret else None,
    )


def build_runtime(
    settings: Settings,
    *,
    service: MapperService | None = None,
    config_file: Path | None = None,
    metrics: Metrics | None = None,
    generated_secrets: frozenset[str] = frozenset(),
) -> Runtime:
    """``metrics`` and ``generated_secrets`` let another service built on these backends
    (orch) bring its own metric namespace and its own embedded-install keys."""
    service = service or MapperService.from_settings(settings, config_file)
    settings = service.settings
    backends = (*DEFAULT_BACKENDS, ANALYTICS_BACKEND) if settings.analytics.enabled else None
    metrics = metrics or Metrics.for_catalog(
        service.catalog, **({"backends": backends} if backends else {})
    )
    learned = service.engine.learned
    if isinstance(learned, HttpTier):
        learned.observer = metrics.observe_model_call
    secrets = secret_provider(settings, generated_secrets)
    engine = database_engine(settings, secrets)
    redis = _redis(settings)
    # One batcher for the limiter and the idempotency store: a request's commands and those
    # of its concurrent neighbours travel in one pipeline.
    batcher = RedisBatcher(redis) if redis is not None else None
    auth = None
    if settings.auth.enabled:
        auth = AuthService.from_settings(settings, ApiKeyStore(engine), secrets)
    else:
        logger.warning(
            "AUTHENTICATION DISABLED",
            extra={"setting": "auth.enabled=false", "risk": "any caller may act for any tenant"},
        )
    limiter = None
    if settings.rate_limit.enabled:
        use_redis = redis is not None and settings.rate_limit.backend == "redis"
        backend = (
            RedisBackend(redis, batcher=batcher)
            if use_redis and redis is not None
            else MemoryBackend()
        )
        limiter = RateLimiter(
            backend,
            failure_mode=settings.rate_limit.failure_mode,
            on_degraded=lambda down: metrics.set_backend("redis", not down),
        )
    idempotency: IdempotencyStore | None = None
    if settings.idempotency.enabled:
        idempotency = (
            RedisIdempotencyStore(redis, batcher=batcher)
            if redis is not None and settings.idempotency.backend == "redis"
            else MemoryIdempotencyStore()
        )
    events: EventWriter[Any] | None = None
    fingerprint = None
    sealer = None
    retention = None
    evidence_item: Callable[[Mapping[str, Any], tuple[str, str], Sealed | None], Any] = (
        event_from_response
    )
    writer_process: ProcessStore | None = None
    if settings.audit.enabled:
        audit = settings.audit
        sink: EventSink[Any] = EventStore(engine)
        if audit.writer == "process":
            writer_process = ProcessStore(settings)
            sink, evidence_item = writer_process, draft
        events = EventWriter(
            sink,
            max_queue=audit.queue_size,
            batch_size=audit.batch_size,
            flush_interval=audit.flush_interval_ms / 1000,
            backpressure=audit.backpressure,
        )
        fingerprint = Fingerprinter(secrets, audit.fingerprint_secret)
        # Built always (cheap, no key is read until a tenant keeps a field), because a
        # tenant overlay may start keeping metadata without a restart.
        sealer = MetadataSealer(key_wrapper(secrets, audit.metadata_kek_secret))
        if settings.retention.interval_seconds > 0:
            retention = RetentionTask(
                engine,
                RetentionPolicy(settings.retention.default_days, settings.retention.tenant_days),
                settings.retention.interval_seconds,
            )
    objects = object_store_from_settings(settings, secrets)
    anchor_scheduler = None
    if settings.audit.enabled and settings.audit.anchor_interval_seconds > 0:
        interval = settings.audit.anchor_interval_seconds
        anchor_scheduler = AnchorScheduler(
            EventStore(engine), AnchorStore(objects), secrets, interval
        )
    analytics = _analytics(settings, engine, secrets, metrics)
    return Runtime(
        settings,
        service,
        metrics,
        secrets,
        engine,
        auth,
        limiter,
        idempotency,
        events=events,
        fingerprint=fingerprint,
        redis=redis,
        batcher=batcher,
        analytics=analytics,
        reads=read_router(settings, secrets, engine),
        evidence_item=evidence_item,
        writer_process=writer_process,
        objects=objects,
        anchor_scheduler=anchor_scheduler,
        sealer=sealer,
        retention=retention,
    )


def _analytics(
    settings: Settings, engine: AsyncEngine, secrets: SecretProvider, metrics: Metrics
) -> AnalyticsShipper | None:
    """The background shipper to ClickHouse when ``analytics.enabled`` (see docs/analytics.md)."""
    analytics = settings.analytics
    if not analytics.enabled:
        return None
    secret = analytics.password_secret
    target = target_from_settings(
        analytics,
        settings.state_dir,
        password=(lambda: secrets.get(secret).value) if secret else None,
    )
    lease = settings.state_dir.expanduser().resolve() / "analytics" / "ship.lock"
    return AnalyticsShipper(engine, target, analytics, lease_file=lease, metrics=metrics)
