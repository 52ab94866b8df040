"""AuthService on SQLite and PostgreSQL: verification, caching, rotation, authorization."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.auth.conftest import PEPPER, FakeClock

from llama_mapper.auth.errors import (
    AuthenticationError,
    InsufficientScope,
    KeyNotFound,
    PermissionDenied,
    TenantMismatch,
)
from llama_mapper.auth.keys import ADMIN, MAP_READ, MAP_WRITE, REPORTS_READ, parse_key
from llama_mapper.auth.model import ApiKeyRecord, Principal
from llama_mapper.auth.service import AuthService, authorize
from llama_mapper.auth.store import ApiKeyStore
from llama_mapper.errors import BackendUnavailable
from llama_mapper.secrets import EnvSecretProvider, env_var_name
from llama_mapper.storage.db.engine import create_engine
from llama_mapper.storage.db.schema import api_keys

MakeService = Callable[..., AuthService]


async def rejected(auth: AuthService, presented: str) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as info:
        await auth.authenticate(presented)
    return info.value


class CountingStore(ApiKeyStore):
    """Counts lookups, to see what the caches save."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.lookups = 0

    async def get(self, key_id: str, tenant_id: str | None = None) -> ApiKeyRecord | None:
        self.lookups += 1
        return await super().get(key_id, tenant_id)


async def test_create_and_authenticate(auth: AuthService, clock: FakeClock) -> None:
    record, key = await auth.create_key("acme", [MAP_WRITE, MAP_READ], timedelta(days=90), "ci")
    assert parse_key(key) is not None
    assert key.startswith(f"lmk_{record.key_id}_")
    assert record.tenant_id == "acme"
    assert record.scopes == frozenset({MAP_WRITE, MAP_READ})
    assert record.created_at == clock.now
    assert record.expires_at == clock.now + timedelta(days=90)
    assert record.description == "ci"
    assert record.rotated_from is None
    principal = await auth.authenticate(key)
    assert principal == Principal(record.key_id, "acme", frozenset({MAP_WRITE, MAP_READ}))
    stored = await auth.store.get(record.key_id)
    assert stored == record


async def test_every_bad_key_gets_the_same_401(auth: AuthService, clock: FakeClock) -> None:
    good, key = await auth.create_key("acme", [MAP_WRITE], None)
    _, revoked_key = await auth.create_key("acme", [MAP_WRITE], None)
    _, expired_key = await auth.create_key("acme", [MAP_WRITE], timedelta(minutes=5))
    await auth.revoke(parse_key(revoked_key)[0])  # type: ignore[index]
    clock.advance(minutes=5)
    wrong_secret = key[:-6] + ("AAAAAA" if not key.endswith("AAAAAA") else "BBBBBB")
    unknown_id = "lmk_zzzzzzzzzzzz_" + key[-43:]
    candidates = [
        wrong_secret,
        unknown_id,
        "garbage",
        "",
        "lmk_" + "é" * 56,
        key + "x",
        key.upper(),
        "x" * 10_000,
        revoked_key,
        expired_key,
    ]
    errors = [await rejected(auth, text) for text in candidates]
    assert {(e.status, e.error_code, e.message) for e in errors} == {
        (401, "INVALID_API_KEY", "invalid API key")
    }
    for error, text in zip(errors, candidates, strict=True):
        if text:
            assert text not in str(error)
    assert (await auth.authenticate(key)).key_id == good.key_id


async def test_revocation_is_honoured_after_cache_seconds(
    make_service: MakeService, clock: FakeClock
) -> None:
    server = make_service(cache_seconds=30)
    admin = make_service(cache_seconds=30)  # another process: its revocation is not seen here
    record, key = await admin.create_key("acme", [MAP_WRITE], None)
    await server.authenticate(key)
    await admin.revoke(record.key_id)
    await rejected(admin, key)  # the revoking process forgets its cache at once
    clock.advance(seconds=29)
    assert (await server.authenticate(key)).key_id == record.key_id  # still cached
    clock.advance(seconds=1)
    await rejected(server, key)  # re-read: revoked


async def test_cache_avoids_lookups_and_rechecks_expiry(
    make_service: MakeService, engine: AsyncEngine, clock: FakeClock
) -> None:
    store = CountingStore(engine)
    auth = make_service(cache_seconds=3600, on=store)
    _, key = await auth.create_key("acme", [MAP_WRITE], timedelta(minutes=10))
    for _ in range(5):
        await auth.authenticate(key)
    assert store.lookups == 1
    clock.advance(minutes=10)  # expired while still inside the cache window
    await rejected(auth, key)
    assert store.lookups == 1


async def test_zero_cache_seconds_reads_every_time(
    make_service: MakeService, engine: AsyncEngine
) -> None:
    store = CountingStore(engine)
    auth = make_service(cache_seconds=0, on=store)
    _, key = await auth.create_key("acme", [MAP_WRITE], None)
    for _ in range(3):
        await auth.authenticate(key)
    assert store.lookups == 3


async def test_rejections_are_cached_for_a_second(
    make_service: MakeService, engine: AsyncEngine, clock: FakeClock
) -> None:
    store = CountingStore(engine)
    auth = make_service(on=store)
    _, key = await auth.create_key("acme", [MAP_WRITE], None)
    bad = key[:-1] + ("A" if key[-1] != "A" else "Q")
    for _ in range(50):
        await rejected(auth, bad)
    assert store.lookups == 1
    clock.advance(seconds=1)
    await rejected(auth, bad)
    assert store.lookups == 2
    for _ in range(20):
        await rejected(auth, "garbage")  # malformed keys never reach the database
    assert store.lookups == 2


async def test_cache_holds_digests_not_keys(auth: AuthService) -> None:
    _, key = await auth.create_key("acme", [MAP_WRITE], None)
    await auth.authenticate(key)
    await rejected(auth, key[:-1] + ("A" if key[-1] != "A" else "Q"))
    secret = key[-43:]
    state = repr(vars(auth)) + repr(auth._verified) + repr(auth._rejected)
    assert secret not in state
    assert all(len(digest) == 32 for digest in auth._verified)


async def test_pepper_rotation_keeps_old_keys_valid(
    make_service: MakeService, environ: dict[str, str]
) -> None:
    auth = make_service(cache_seconds=0)
    old, old_key = await auth.create_key("acme", [MAP_WRITE], None)
    variable = env_var_name(PEPPER)
    environ[variable] = "pepper-two"
    environ[variable + "_PREVIOUS"] = "pepper-one"
    new, new_key = await auth.create_key("acme", [MAP_WRITE], None)
    assert new.pepper_version != old.pepper_version
    assert (await auth.authenticate(old_key)).key_id == old.key_id
    assert (await auth.authenticate(new_key)).key_id == new.key_id


async def test_a_retired_pepper_version_is_an_outage_not_a_bad_key(
    make_service: MakeService, environ: dict[str, str]
) -> None:
    auth = make_service(cache_seconds=0)
    _, key = await auth.create_key("acme", [MAP_WRITE], None)
    environ[env_var_name(PEPPER)] = "pepper-two"  # the old value dropped without _PREVIOUS
    with pytest.raises(BackendUnavailable) as info:
        await auth.authenticate(key)
    assert (info.value.status, info.value.retryable) == (503, True)
    assert key[-43:] not in str(info.value)


async def test_missing_pepper_refuses_to_create(store: ApiKeyStore, clock: FakeClock) -> None:
    from llama_mapper.secrets import SecretError

    auth = AuthService(store, EnvSecretProvider(environ={}), PEPPER, 30, clock=clock)
    with pytest.raises(SecretError):
        await auth.create_key("acme", [MAP_WRITE], None)
    assert await store.list(include_revoked=True) == []


async def test_database_outage_is_503(tmp_path: Path, secrets: EnvSecretProvider) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'x.db'}")
    try:
        auth = AuthService(ApiKeyStore(engine), secrets, PEPPER, 30)
        with pytest.raises(BackendUnavailable):
            await auth.authenticate("lmk_abcdefghijkl_" + "A" * 43)
    finally:
        await engine.dispose()


async def test_rotate_key_with_grace(make_service: MakeService, clock: FakeClock) -> None:
    auth = make_service(cache_seconds=0)
    old, old_key = await auth.create_key(
        "acme", [MAP_WRITE, REPORTS_READ], timedelta(days=90), "billing"
    )
    clock.advance(days=10)
    new, new_key = await auth.rotate_key(old.key_id, grace=timedelta(hours=1))
    assert new.key_id != old.key_id
    assert new.rotated_from == old.key_id
    assert (new.tenant_id, new.scopes, new.description) == (
        "acme",
        old.scopes,
        "billing",
    )
    assert new.expires_at == clock.now + timedelta(days=90)  # the old key's lifetime
    reloaded = await auth.store.get(old.key_id)
    assert reloaded is not None
    assert reloaded.expires_at == clock.now + timedelta(hours=1)
    clock.advance(minutes=59)
    assert (await auth.authenticate(old_key)).key_id == old.key_id
    assert (await auth.authenticate(new_key)).key_id == new.key_id
    clock.advance(minutes=1)
    await rejected(auth, old_key)
    assert (await auth.authenticate(new_key)).key_id == new.key_id


async def test_rotation_keeps_an_earlier_expiry(
    make_service: MakeService, clock: FakeClock
) -> None:
    auth = make_service(cache_seconds=0)
    old, _ = await auth.create_key("acme", [MAP_WRITE], timedelta(minutes=30))
    new, _ = await auth.rotate_key(old.key_id, grace=timedelta(days=1), expires_in=None)
    reloaded = await auth.store.get(old.key_id)
    assert reloaded is not None
    assert reloaded.expires_at == clock.now + timedelta(minutes=30)
    assert new.expires_at == clock.now + timedelta(minutes=30)
    forever, _ = await auth.create_key("acme", [MAP_WRITE], None)
    renewed, _ = await auth.rotate_key(forever.key_id, timedelta(0), timedelta(days=7))
    assert renewed.expires_at == clock.now + timedelta(days=7)


async def test_rotate_refuses_unknown_and_revoked(auth: AuthService) -> None:
    with pytest.raises(KeyNotFound) as info:
        await auth.rotate_key("zzzzzzzzzzzz", timedelta(hours=1))
    assert (info.value.status, info.value.error_code) == (404, "API_KEY_NOT_FOUND")
    record, _ = await auth.create_key("acme", [MAP_WRITE], None)
    await auth.revoke(record.key_id)
    with pytest.raises(ValueError, match="revoked"):
        await auth.rotate_key(record.key_id, timedelta(hours=1))
    with pytest.raises(ValueError, match="grace"):
        await auth.rotate_key(record.key_id, timedelta(seconds=-1))
    with pytest.raises(KeyNotFound):
        await auth.revoke("zzzzzzzzzzzz")


async def test_list_keys(auth: AuthService) -> None:
    a, _ = await auth.create_key("acme", [MAP_WRITE], None)
    b, _ = await auth.create_key("globex", [MAP_READ], None)
    await auth.revoke(b.key_id)
    assert [r.key_id for r in await auth.list_keys()] == [a.key_id]
    assert [r.key_id for r in await auth.list_keys("globex", include_revoked=True)] == [b.key_id]


@pytest.mark.parametrize(
    ("tenant", "scopes", "expires_in", "description", "message"),
    [
        ("", [MAP_WRITE], None, None, "invalid tenant id"),
        ("-acme", [MAP_WRITE], None, None, "invalid tenant id"),
        ("a" * 65, [MAP_WRITE], None, None, "invalid tenant id"),
        ("ac me", [MAP_WRITE], None, None, "invalid tenant id"),
        ("acme", [], None, None, "at least one scope"),
        ("acme", ["map:delete"], None, None, "unknown scope 'map:delete'; known scopes: admin"),
        ("acme", [MAP_WRITE], timedelta(0), None, "expiry"),
        ("acme", [MAP_WRITE], None, "x" * 201, "description"),
        ("acme", [MAP_WRITE], None, "two\nlines", "description"),
    ],
)
async def test_create_key_validation(
    auth: AuthService,
    tenant: str,
    scopes: list[str],
    expires_in: timedelta | None,
    description: str | None,
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        await auth.create_key(tenant, scopes, expires_in, description)
    assert await auth.list_keys(include_revoked=True) == []


async def test_accepted_tenant_ids(auth: AuthService) -> None:
    for tenant in ["a", "Acme.EU_1-prod", "0" + "x" * 63]:
        record, _ = await auth.create_key(tenant, MAP_WRITE, None)
        assert record.tenant_id == tenant


def test_authorize() -> None:
    writer = Principal("k", "acme", frozenset({MAP_WRITE}))
    authorize(writer, MAP_WRITE, None)
    authorize(writer, MAP_WRITE, "acme")
    with pytest.raises(InsufficientScope) as scope:
        authorize(writer, REPORTS_READ, "acme")
    assert (scope.value.status, scope.value.error_code) == (403, "INSUFFICIENT_SCOPE")
    with pytest.raises(TenantMismatch) as tenant:
        authorize(writer, MAP_WRITE, "globex")
    assert (tenant.value.status, tenant.value.error_code) == (403, "TENANT_MISMATCH")
    assert "globex" not in tenant.value.message
    assert isinstance(tenant.value, PermissionDenied)
    admin = Principal("k", "acme", frozenset({ADMIN}))
    authorize(admin, REPORTS_READ, None)
    with pytest.raises(TenantMismatch):
        authorize(admin, REPORTS_READ, "globex")  # admin is still bound to its tenant
    assert AuthService.authorize is authorize


async def test_raw_key_is_never_stored_or_logged(
    auth: AuthService, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    record, key = await auth.create_key("acme", [MAP_WRITE], None, "raw key check")
    await auth.authenticate(key)
    new, new_key = await auth.rotate_key(record.key_id, timedelta(hours=1))
    await auth.revoke(new.key_id)
    secrets = [key[-43:], new_key[-43:]]
    async with engine.connect() as connection:
        rows = (await connection.execute(select(api_keys))).all()
    assert len(rows) == 2
    dumped = repr(rows)
    if engine.dialect.name == "sqlite":
        await engine.dispose()  # flush: the checkpoint moves the WAL into the main file
        database = Path(engine.url.database or "")
        dumped += repr(b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*")))
        assert b"raw key check" in b"".join(p.read_bytes() for p in [database])
    for secret in secrets:
        assert secret not in dumped
        assert secret not in caplog.text
        assert secret not in repr(record) + repr(new)
