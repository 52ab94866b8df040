"""Relational schema of the mapper's durable state (SQLAlchemy Core).

One ``MetaData`` holds every table so migrations, tests and later features share a single
source of truth. Migrations are written by hand in ``migrations/versions`` (they must not
import this module: a migration describes the schema *as it was* at its revision), and a
test compares the migrated database with this module so the two cannot drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

#: Deterministic constraint names, so that later migrations can alter constraints by name
#: on every backend (SQLite's batch mode needs names to find them).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    SQLite has no timezone-aware type and hands back naive values; PostgreSQL hands back
    aware ones. Normalising both ways makes comparisons with ``datetime.now(UTC)`` safe and
    keeps the stored text sortable (every SQLite value is written in the same UTC form).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass a timezone-aware value")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - drivers always parse
            raise TypeError(f"unexpected timestamp value of type {type(value).__name__}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    # Space-separated, like OAuth scopes: one portable column instead of a join table.
    Column("scopes", Text, nullable=False, default=""),
    # HMAC-SHA256 of the secret part under the pepper; the secret itself is never stored.
    Column("key_hash", Text, nullable=False),
    # Which pepper version the hash was made with, so pepper rotation keeps old keys valid.
    Column("pepper_version", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("rotated_from", Text, nullable=True),
    Column("description", Text, nullable=True),
    Index("ix_api_keys_tenant_id", "tenant_id"),
)

#: The evidence store: one hash-chained row per mapping event, chained per tenant. ``body``
#: is the canonical JSON that the hash covers; the other columns copy fields out of it only
#: so they can be queried (they are not trusted by verification).
audit_events = Table(
    "audit_events",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("seq", BigInteger, nullable=False, autoincrement=False),
    Column("event_id", Text, nullable=False),
    Column("ts", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("detector", Text, nullable=False),
    Column("prev_hash", Text, nullable=False),
    Column("hash", Text, nullable=False),
    Column("body", Text, nullable=False),
    PrimaryKeyConstraint("tenant_id", "seq"),
    UniqueConstraint("event_id"),
    Index("ix_audit_events_tenant_id_ts", "tenant_id", "ts"),
)

#: Newest seq and hash of each tenant's chain. Appenders lock this row (PostgreSQL) so
#: concurrent writers queue per tenant, and full verification checks the chain ends here.
audit_heads = Table(
    "audit_heads",
    metadata,
    Column("tenant_id", Text, primary_key=True),
    Column("seq", BigInteger, nullable=False, autoincrement=False),
    Column("hash", Text, nullable=False),
    #: Seq of the tenant's newest tombstone (retention), so verification knows where the
    #: chain may start; not trusted: the tombstone row itself is verified in the chain.
    Column("tombstone_seq", BigInteger, nullable=True, autoincrement=False),
)

# Read models (CQRS projections) of the evidence store, maintained by
# ``llama_mapper.audit.projections`` in the same transaction as every append and rebuildable
# from the chain at any time. They are derived data: the chain stays the only evidence.

#: Events per canonical label per UTC day (``day`` is ``YYYY-MM-DD`` of the event's ts).
proj_label_daily = Table(
    "proj_label_daily",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("day", Text, nullable=False),
    Column("label", Text, nullable=False),
    Column("events", BigInteger, nullable=False),
    PrimaryKeyConstraint("tenant_id", "day", "label"),
)

#: Events per framework control, and the newest event ts that touched it.
proj_control_evidence = Table(
    "proj_control_evidence",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("control", Text, nullable=False),
    Column("events", BigInteger, nullable=False),
    Column("last_seen_ts", Text, nullable=False),
    PrimaryKeyConstraint("tenant_id", "control"),
)

#: Events per detector and how many of them include ``OTHER.Unknown`` (unknown-label rate).
proj_detector_quality = Table(
    "proj_detector_quality",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("detector", Text, nullable=False),
    Column("events", BigInteger, nullable=False),
    Column("unknown_events", BigInteger, nullable=False),
    PrimaryKeyConstraint("tenant_id", "detector"),
)

#: The last seq of the tenant's chain folded into the read models without a gap; behind
#: the chain head means the read models are stale and need a rebuild.
proj_positions = Table(
    "proj_positions",
    metadata,
    Column("tenant_id", Text, primary_key=True),
    Column("seq", BigInteger, nullable=False, autoincrement=False),
)

#: Legal holds: while a tenant has a hold with ``released_at`` null, retention deletes
#: nothing of it. Rows are kept after release, so who held and released what stays known.
retention_holds = Table(
    "retention_holds",
    metadata,
    Column("hold_id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("set_by", Text, nullable=False),
    Column("set_at", UTCDateTime(), nullable=False),
    Column("released_by", Text, nullable=True),
    Column("release_reason", Text, nullable=True),
    Column("released_at", UTCDateTime(), nullable=True),
    Index("ix_retention_holds_tenant_id", "tenant_id"),
)

#: The wrapped data key (DEK) of each event whose kept metadata is encrypted, under the
#: KEK named by ``kek_id``. Outside the hashed body, so re-wrapping leaves the chain as is.
audit_deks = Table(
    "audit_deks",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("kek_id", Text, nullable=False),
    Column("wrapped_dek", Text, nullable=False),
    PrimaryKeyConstraint("tenant_id", "event_id"),
    Index("ix_audit_deks_tenant_id_kek_id", "tenant_id", "kek_id"),
)

# The orchestration service (detector_orchestration) keeps its durable state in the same
# database: its detector registry and its tenants' versioned policy bundles.

#: Registered remote detectors. ``auth_secret`` is the *name* of a secret in the
#: SecretProvider, never the secret; ``settings`` is JSON (request template, response path,
#: fms detector id...). ``content_types`` is space-separated, like ``api_keys.scopes``.
orch_detectors = Table(
    "orch_detectors",
    metadata,
    Column("name", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("endpoint", Text, nullable=True),
    Column("timeout_ms", BigInteger, nullable=False),
    Column("retries", BigInteger, nullable=False),
    Column("content_types", Text, nullable=False),
    Column("auth_secret", Text, nullable=True),
    Column("pack", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("settings", Text, nullable=False),
    Column("health", Text, nullable=False),
    Column("health_checked_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

#: Every submitted version of a tenant's policy bundle; at most one is ``active`` per
#: (tenant, bundle). ``document`` is the bundle's YAML as submitted.
orch_policies = Table(
    "orch_policies",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("bundle", Text, nullable=False),
    Column("version", BigInteger, nullable=False, autoincrement=False),
    Column("status", Text, nullable=False),
    Column("document", Text, nullable=False),
    Column("digest", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("decided_at", UTCDateTime(), nullable=True),
    PrimaryKeyConstraint("tenant_id", "bundle", "version"),
    Index("ix_orch_policies_tenant_id_bundle_status", "tenant_id", "bundle", "status"),
)

#: How far each tenant's chain has been shipped to an analytics sink (ClickHouse): the
#: highest seq known to be inserted there. ``sink`` names the destination (the embedded
#: folder or the server's host and database, never credentials), so pointing
#: ``analytics.url`` at a new cluster ships everything again instead of skipping it.
analytics_cursors = Table(
    "analytics_cursors",
    metadata,
    Column("sink", Text, nullable=False),
    Column("tenant_id", Text, nullable=False),
    Column("seq", BigInteger, nullable=False, autoincrement=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("sink", "tenant_id"),
)

#: Tables holding rows of one tenant each (a ``tenant_id`` column). On PostgreSQL each has
#: row-level security forced with the ``tenant_isolation`` policy (migration ``0005_rls``,
#: :mod:`llama_mapper.storage.db.tenancy`); a new tenant-scoped table belongs here and
#: needs a migration that adds the same policy (a test checks both).
TENANT_TABLES = (
    api_keys,
    audit_events,
    audit_heads,
    proj_label_daily,
    proj_control_evidence,
    proj_detector_quality,
    proj_positions,
    retention_holds,
    audit_deks,
    orch_policies,
    analytics_cursors,
)
