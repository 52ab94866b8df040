"""What the auth layer stores and what it hands to the API: no field ever holds a secret."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from llama_mapper.auth.keys import ADMIN

KeyStatus = Literal["active", "expiring", "expired", "revoked"]
#: A key this close to its expiry is listed as "expiring", so operators notice in time.
EXPIRING_WITHIN = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """One row of ``api_keys``. ``key_hash`` is an HMAC, not the key, and stays out of reprs."""

    key_id: str
    tenant_id: str
    scopes: frozenset[str]
    key_hash: str = field(repr=False)
    pepper_version: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    rotated_from: str | None = None
    description: str | None = None

    def is_active(self, now: datetime) -> bool:
        """Whether the key authenticates at ``now`` (not revoked, not expired)."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or now < self.expires_at

    def status(self, now: datetime, expiring_within: timedelta = EXPIRING_WITHIN) -> KeyStatus:
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        if self.expires_at is not None:
            if self.expires_at <= now:
                return "expired"
            if self.expires_at - now <= expiring_within:
                return "expiring"
        return "active"

    def public_dict(self, now: datetime) -> dict[str, object]:
        """JSON-ready view for listings (CLI ``--json``, admin APIs): no hash, no secret."""
        return {
            "key_id": self.key_id,
            "tenant_id": self.tenant_id,
            "scopes": sorted(self.scopes),
            "status": self.status(now),
            "pepper_version": self.pepper_version,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            "revoked_at": _iso(self.revoked_at),
            "rotated_from": self.rotated_from,
            "description": self.description,
        }


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: which key, which tenant, which scopes."""

    key_id: str
    tenant_id: str
    scopes: frozenset[str]

    def has(self, scope: str) -> bool:
        """Whether the key grants ``scope``; ``admin`` grants every scope."""
        return scope in self.scopes or ADMIN in self.scopes


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
