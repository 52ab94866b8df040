"""Everything a running orch holds, built once for the API, the CLI and tests.

The shared production backends (database, Redis, API keys, rate limits, idempotency,
secrets, metrics registry) are the mapper's :class:`llama_mapper.runtime.Runtime`, built
from the mapper's settings, so orch reuses them instead of copying them. On top: the
detector catalog, the policy source and engines, the executor, the result cache, the
mapper link and the orchestrator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from detector_orchestration.clients.http_base import shared_http_client
from detector_orchestration.config import OrchSettings
from detector_orchestration.executor.backoff import Backoff
from detector_orchestration.executor.cache import CacheKeys, MemoryCache, RedisCache, ResultCache
from detector_orchestration.executor.runner import Executor, ExecutorConfig
from detector_orchestration.jobs.factory import build_job_service, generated_secret_names
from detector_orchestration.jobs.service import JobService
from detector_orchestration.mapper_client import HttpMapper, InProcessMapper, Mapper
from detector_orchestration.metrics import OrchMetrics
from detector_orchestration.policy.engine import PolicyEngine
from detector_orchestration.policy.opa import OpaClient
from detector_orchestration.policy.source import PolicySource
from detector_orchestration.policy.store import PolicyStore
from detector_orchestration.registry.catalog import DetectorCatalog
from detector_orchestration.registry.factory import FactoryContext, builtin_factories
from detector_orchestration.registry.store import RegistryStore
from detector_orchestration.service import Orchestrator, OrchestratorConfig
from llama_mapper.config.settings import Settings, load_settings
from llama_mapper.observability.metrics import Metrics
from llama_mapper.runtime import Runtime, build_runtime
from llama_mapper.service import MapperService


@dataclass
class OrchRuntime:
    settings: OrchSettings
    shared: Runtime
    http: httpx.AsyncClient
    registry: RegistryStore
    policy_store: PolicyStore
    catalog: DetectorCatalog
    policies: PolicySource
    executor: Executor
    metrics: OrchMetrics
    mapper: Mapper
    orchestrator: Orchestrator
    opa: OpaClient | None = None
    cache_redis: Any = None
    jobs: JobService | None = None

    async def aclose(self) -> None:
        if self.jobs is not None:
            await self.jobs.aclose()  # first: its workers use everything below
        await self.mapper.aclose()
        if self.cache_redis is not None:
            await self.cache_redis.aclose()
        if self.opa is not None:
            await self.opa.aclose()
        await self.http.aclose()
        await self.shared.aclose()


def mapper_settings(settings: OrchSettings, **overrides: Any) -> Settings:
    return load_settings(settings.mapper.config_file, **overrides)


def _pack_categories(service: MapperService) -> Any:
    cache: dict[str, frozenset[str]] = {}

    def categories(pack: str) -> frozenset[str]:
        if pack not in cache:
            found = service.catalog.packs.get(pack)
            targets = found.maps.values() if found is not None else ()
            labels = [label for target in targets for label in target]  # label tuples
            cache[pack] = frozenset(
                label.split(".")[0] for label in labels if not label.startswith("OTHER")
            )
        return cache[pack]

    return categories


def build_orch_runtime(
    settings: OrchSettings,
    mapper: Settings | None = None,
    *,
    builtins: Any = None,
    config_file: Path | None = None,
) -> OrchRuntime:
    """``builtins`` (name -> factory) defaults to the installed built-in detectors."""
    mapper = mapper or mapper_settings(settings)
    service = MapperService.from_settings(mapper, config_file or settings.mapper.config_file)
    shared_metrics = Metrics.for_catalog(service.catalog, namespace="orch")
    shared = build_runtime(
        mapper,
        service=service,
        metrics=shared_metrics,
        generated_secrets=frozenset({settings.cache.key_secret})
        | generated_secret_names(settings.jobs),
    )
    ex = settings.executor
    http = shared_http_client(ex.http_connections)
    registry = RegistryStore(shared.engine)
    policy_store = PolicyStore(shared.engine)
    catalog = DetectorCatalog(
        registry,
        FactoryContext(http, shared.secrets),
        builtins=builtin_factories(settings.builtins.options()) if builtins is None else builtins,
        default_timeout_s=ex.default_timeout_ms / 1000,
        refresh_seconds=settings.policy.cache_seconds,
    )
    metrics = OrchMetrics(shared_metrics, catalog.is_known)
    executor = Executor(
        ExecutorConfig(
            breaker_failures=ex.breaker_failures,
            breaker_reset_s=ex.breaker_reset_seconds,
            bulkhead=ex.bulkhead,
            backoff=Backoff(ex.backoff_base_ms / 1000, ex.backoff_max_ms / 1000),
        ),
        on_run=metrics.observe_run,
    )
    policies = PolicySource(policy_store, settings.policy.cache_seconds)
    opa = None
    if settings.policy.opa_url:
        opa = OpaClient(settings.policy.opa_url, timeout=settings.policy.opa_timeout_seconds)
    link: Mapper
    if settings.mapper.url:
        link = HttpMapper(
            settings.mapper.url,
            api_key_env=settings.mapper.api_key_env,
            timeout=settings.mapper.timeout_seconds,
        )
        record = None
    else:
        link = InProcessMapper(service)

        async def record(mapped: Any) -> None:
            from llama_mapper.api.evidence import record_mappings

            await record_mappings(shared, mapped)

    cache: ResultCache | None = None
    keys = None
    cache_redis = None
    if settings.cache.enabled:
        if settings.cache.backend == "redis":
            cache_redis = _redis(mapper)
            cache = RedisCache(cache_redis)
        else:
            cache = MemoryCache(settings.cache.max_entries)
        keys = CacheKeys(shared.secrets, settings.cache.key_secret, settings.cache.key_prefix)
    orchestrator = Orchestrator(
        catalog=catalog,
        policies=policies,
        engine=PolicyEngine(opa),
        executor=executor,
        mapper=link,
        config=OrchestratorConfig(
            deadline_s=ex.deadline_ms / 1000,
            default_bundle=settings.policy.default_bundle,
            cache_ttl_s=settings.cache.ttl_seconds,
            cache_enabled=settings.cache.enabled,
        ),
        cache=cache,
        cache_keys=keys,
        pack_categories=_pack_categories(service),
        record=record,
    )
    runtime = OrchRuntime(
        settings,
        shared,
        http,
        registry,
        policy_store,
        catalog,
        policies,
        executor,
        metrics,
        link,
        orchestrator,
        opa,
    )
    runtime.cache_redis = cache_redis
    if settings.jobs.enabled:
        runtime.jobs = build_job_service(
            settings.jobs,
            redis_url=mapper.redis.url,
            secrets=shared.secrets,
            http=http,
            orchestrator=orchestrator,
            metrics=metrics,
        )
    return runtime


def _redis(settings: Settings) -> Any:
    if not settings.redis.url:
        raise ValueError("cache.backend is redis but the mapper's redis.url is not set")
    from redis.asyncio import Redis

    return Redis.from_url(settings.redis.url, socket_timeout=0.5, socket_connect_timeout=0.5)
