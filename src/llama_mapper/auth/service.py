"""API key lifecycle and verification.

Verification is on every request's hot path, so successful checks are cached in-process
for ``cache_seconds`` (keyed by a SHA-256 of the presented key, never the key itself);
that bounds how long a revoked key keeps working on another process. Expiry is re-checked
on every cache hit, so an expired key stops at once. Failed checks are cached for a second
so a flood of the same bad key does not become a flood of database reads.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from llama_mapper.auth.errors import (
    AuthenticationError,
    InsufficientScope,
    KeyNotFound,
    PermissionDenied,
    TenantMismatch,
)
from llama_mapper.auth.keys import ALL_SCOPES, generate_key, hash_secret, parse_key
from llama_mapper.auth.model import ApiKeyRecord, Principal
from llama_mapper.auth.store import ApiKeyStore
from llama_mapper.errors import BackendUnavailable
from llama_mapper.secrets import SecretError

if TYPE_CHECKING:
    from llama_mapper.config.settings import Settings
    from llama_mapper.secrets import SecretProvider

__all__ = [
    "AuthService",
    "AuthenticationError",
    "PermissionDenied",
    "authorize",
    "validate_scopes",
    "validate_tenant_id",
]

logger = logging.getLogger("llama_mapper.auth")

Clock = Callable[[], datetime]
_V = TypeVar("_V")
TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: How long a rejected key is remembered: long enough to absorb a burst, short enough
#: that a key created a moment after a failed attempt is usable almost at once.
NEGATIVE_CACHE_SECONDS = 1.0
#: Bound on each cache, so random keys cannot grow memory without limit.
MAX_CACHE_ENTRIES = 10_000
MAX_DESCRIPTION_CHARS = 200


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class _Verified:
    principal: Principal
    key_expires_at: datetime | None
    stale_at: datetime


def validate_tenant_id(tenant_id: str) -> str:
    if not isinstance(tenant_id, str) or TENANT_ID.fullmatch(tenant_id) is None:
        raise ValueError(
            "invalid tenant id: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return tenant_id


def validate_scopes(scopes: Iterable[str] | str) -> frozenset[str]:
    """The scopes as a set; ``ValueError`` naming the known scopes for an unknown one."""
    chosen = frozenset(scopes.split() if isinstance(scopes, str) else scopes)
    if not chosen:
        raise ValueError(f"at least one scope is required; known scopes: {_known()}")
    unknown = sorted(chosen - ALL_SCOPES)
    if unknown:
        raise ValueError(f"unknown scope {', '.join(map(repr, unknown))}; known scopes: {_known()}")
    return chosen


def _known() -> str:
    return ", ".join(sorted(ALL_SCOPES))


def authorize(principal: Principal, scope: str, claimed_tenant: str | None) -> None:
    """Refuse (403) a key without ``scope`` or one used for a tenant other than its own.

    ``claimed_tenant`` is whatever the request names (``X-Tenant-ID`` or a body
    ``tenant_id``); ``None`` means the request names none and the key's tenant applies.
    The messages name neither tenant, so a caller learns nothing about other tenants.
    """
    if not principal.has(scope):
        raise InsufficientScope(f"this API key lacks the {scope} scope")
    if claimed_tenant is not None and claimed_tenant != principal.tenant_id:
        raise TenantMismatch("the request names a tenant other than the API key's")


class AuthService:
    """Creates, verifies, rotates and revokes API keys.

    ``secrets`` supplies the pepper: new keys are hashed with its latest version, and each
    key is verified with the version recorded on it, so rotating the pepper never breaks
    existing keys. Secret lookups are synchronous (the provider caches them).
    """

    authorize = staticmethod(authorize)

    def __init__(
        self,
        store: ApiKeyStore,
        secrets: SecretProvider,
        pepper_name: str,
        cache_seconds: float,
        clock: Clock = utc_now,
    ) -> None:
        if cache_seconds < 0:
            raise ValueError("cache_seconds must not be negative")
        self.store = store
        self.secrets = secrets
        self.pepper_name = pepper_name
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._verified: dict[bytes, _Verified] = {}
        self._rejected: dict[bytes, datetime] = {}

    @classmethod
    def from_settings(
        cls, settings: Settings, store: ApiKeyStore, secrets: SecretProvider
    ) -> AuthService:
        return cls(
            store,
            secrets,
            pepper_name=settings.auth.pepper_secret,
            cache_seconds=settings.auth.cache_seconds,
        )

    # -- verification ---------------------------------------------------------------------

    async def authenticate(self, presented: str) -> Principal:
        """The principal of a valid key; :class:`AuthenticationError` for any other input.

        Raises :class:`~llama_mapper.errors.BackendUnavailable` (503) when the database or
        the pepper cannot be read: an outage must not look like a bad key.
        """
        parsed = parse_key(presented)
        if parsed is None:
            raise AuthenticationError()
        now = self.clock()
        digest = hashlib.sha256(presented.encode("ascii")).digest()
        cached = self._verified.get(digest)
        if cached is not None:
            if now < cached.stale_at:
                expires = cached.key_expires_at
                if expires is None or now < expires:
                    return cached.principal
                self._verified.pop(digest, None)
                raise AuthenticationError()
            self._verified.pop(digest, None)
        rejected_until = self._rejected.get(digest)
        if rejected_until is not None:
            if now < rejected_until:
                raise AuthenticationError()
            self._rejected.pop(digest, None)

        key_id, secret = parsed
        record = await self._lookup(key_id)
        if record is None or not self._matches(record, secret) or not record.is_active(now):
            self._remember(self._rejected, digest, now + timedelta(seconds=NEGATIVE_CACHE_SECONDS))
            raise AuthenticationError()
        principal = Principal(record.key_id, record.tenant_id, record.scopes)
        if self.cache_seconds > 0:
            stale_at = now + timedelta(seconds=self.cache_seconds)
            self._remember(
                self._verified, digest, _Verified(principal, record.expires_at, stale_at)
            )
        return principal

    async def _lookup(self, key_id: str) -> ApiKeyRecord | None:
        try:
            return await self.store.get(key_id)
        except (SQLAlchemyError, OSError) as exc:
            logger.error("api key lookup failed: %s", type(exc).__name__)
            raise BackendUnavailable("API keys cannot be verified right now; retry later") from exc

    def _matches(self, record: ApiKeyRecord, secret: str) -> bool:
        try:
            pepper = self.secrets.get(self.pepper_name, version=record.pepper_version)
        except SecretError as exc:
            logger.error(
                "pepper %r version %r unavailable for key %s",
                self.pepper_name,
                record.pepper_version,
                record.key_id,
            )
            raise BackendUnavailable("API keys cannot be verified right now; retry later") from exc
        return hmac.compare_digest(hash_secret(secret, pepper), record.key_hash)

    @staticmethod
    def _remember(cache: dict[bytes, _V], digest: bytes, value: _V) -> None:
        if len(cache) >= MAX_CACHE_ENTRIES:
            # Oldest first (dicts keep insertion order): drop a tenth rather than everything,
            # so a flood of random keys costs at most a few re-verifications.
            for stale in list(cache)[: MAX_CACHE_ENTRIES // 10]:
                del cache[stale]
        cache[digest] = value

    def forget(self, key_id: str | None = None) -> None:
        """Drop cached verifications (of one key, or all) so changes apply at once here."""
        if key_id is None:
            self._verified.clear()
        else:
            for digest in [d for d, v in self._verified.items() if v.principal.key_id == key_id]:
                del self._verified[digest]
        self._rejected.clear()

    # -- lifecycle ------------------------------------------------------------------------

    async def create_key(
        self,
        tenant_id: str,
        scopes: Iterable[str] | str,
        expires_in: timedelta | None,
        description: str | None = None,
    ) -> tuple[ApiKeyRecord, str]:
        """A new key and its full text, which exists only in the return value.

        Raises ``ValueError`` for a bad tenant id, unknown scopes, a non-positive lifetime or
        an over-long description, and the provider's ``SecretError`` when there is no pepper.
        """
        chosen = validate_scopes(scopes)
        validate_tenant_id(tenant_id)
        if expires_in is not None and expires_in <= timedelta(0):
            raise ValueError("the expiry must be in the future")
        record, full_key = self._new_record(
            tenant_id, chosen, expires_in, _clean_description(description), rotated_from=None
        )
        await self.store.create(record)
        logger.info("api key %s created for tenant %s", record.key_id, tenant_id)
        return record, full_key

    async def rotate_key(
        self,
        key_id: str,
        grace: timedelta,
        expires_in: timedelta | None = None,
        tenant_id: str | None = None,
    ) -> tuple[ApiKeyRecord, str]:
        """Replace a key: same tenant, scopes and description; ``rotated_from=key_id``.

        The old key keeps working for ``grace`` (or until its own earlier expiry) so clients
        can switch without downtime. The new key lives ``expires_in``, by default as long as
        the old key's original lifetime (no expiry if the old key had none). Raises
        :class:`KeyNotFound` for an unknown key and ``ValueError`` for a revoked one.
        """
        if grace < timedelta(0):
            raise ValueError("the grace period must not be negative")
        if expires_in is not None and expires_in <= timedelta(0):
            raise ValueError("the expiry must be in the future")
        old = await self.store.get(key_id, tenant_id)
        if old is None:
            raise KeyNotFound(f"no API key with id {key_id}")
        now = self.clock()
        if old.revoked_at is not None:
            raise ValueError(f"API key {key_id} is revoked; create a new key instead")
        if expires_in is None and old.expires_at is not None:
            lifetime = old.expires_at - old.created_at
            expires_in = lifetime if lifetime > timedelta(0) else None
        new, full_key = self._new_record(
            old.tenant_id, old.scopes, expires_in, old.description, rotated_from=old.key_id
        )
        await self.store.rotate(new, old.key_id, now + grace)
        self.forget(old.key_id)
        logger.info("api key %s rotated to %s", old.key_id, new.key_id)
        return new, full_key

    async def revoke(self, key_id: str, tenant_id: str | None = None) -> ApiKeyRecord:
        """Revoke at once; other processes stop accepting it within ``cache_seconds``."""
        record = await self.store.revoke(key_id, self.clock(), tenant_id)
        if record is None:
            raise KeyNotFound(f"no API key with id {key_id}")
        self.forget(key_id)
        logger.info("api key %s revoked", key_id)
        return record

    async def list_keys(
        self, tenant_id: str | None = None, include_revoked: bool = False
    ) -> list[ApiKeyRecord]:
        return await self.store.list(tenant_id, include_revoked)

    def _new_record(
        self,
        tenant_id: str,
        scopes: frozenset[str],
        expires_in: timedelta | None,
        description: str | None,
        rotated_from: str | None,
    ) -> tuple[ApiKeyRecord, str]:
        pepper = self.secrets.get(self.pepper_name)
        key_id, full_key = generate_key()
        parsed = parse_key(full_key)
        assert parsed is not None  # generate_key and parse_key share one format
        now = self.clock()
        record = ApiKeyRecord(
            key_id=key_id,
            tenant_id=tenant_id,
            scopes=scopes,
            key_hash=hash_secret(parsed[1], pepper),
            pepper_version=str(pepper.version),
            created_at=now,
            expires_at=now + expires_in if expires_in is not None else None,
            rotated_from=rotated_from,
            description=description,
        )
        return record, full_key


def _clean_description(description: str | None) -> str | None:
    if description is None:
        return None
    description = description.strip()
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise ValueError(f"the description is longer than {MAX_DESCRIPTION_CHARS} characters")
    if not description.isprintable():
        raise ValueError("the description must be printable text on one line")
    return description or None
