"""ApiKeyStore on SQLite and PostgreSQL: the same behaviour from the same code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import IntegrityError

from llama_mapper.auth.keys import ADMIN, MAP_READ, MAP_WRITE
from llama_mapper.auth.model import ApiKeyRecord
from llama_mapper.auth.store import ApiKeyStore

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def record(key_id: str, tenant: str = "acme", **changes: object) -> ApiKeyRecord:
    values: dict[str, object] = {
        "key_id": key_id,
        "tenant_id": tenant,
        "scopes": frozenset({MAP_WRITE, MAP_READ}),
        "key_hash": "h" * 64,
        "pepper_version": "v1",
        "created_at": T0,
    }
    return ApiKeyRecord(**(values | changes))  # type: ignore[arg-type]


async def test_create_get_round_trip(store: ApiKeyStore) -> None:
    original = record(
        "aaaaaaaaaaaa",
        expires_at=T0 + timedelta(days=90, microseconds=5),
        rotated_from="zzzzzzzzzzzz",
        description="CI pipeline",
    )
    await store.create(original)
    loaded = await store.get("aaaaaaaaaaaa")
    assert loaded == original
    assert loaded is not None
    assert loaded.created_at.tzinfo is not None  # aware UTC on both backends
    assert await store.get("bbbbbbbbbbbb") is None


async def test_timestamps_in_other_zones_are_stored_as_the_same_instant(store: ApiKeyStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    await store.create(record("aaaaaaaaaaaa", created_at=T0.astimezone(plus_two)))
    loaded = await store.get("aaaaaaaaaaaa")
    assert loaded is not None
    assert loaded.created_at == T0
    assert loaded.created_at.utcoffset() == timedelta(0)


async def test_duplicate_key_id_is_refused(store: ApiKeyStore) -> None:
    await store.create(record("aaaaaaaaaaaa"))
    with pytest.raises(IntegrityError):
        await store.create(record("aaaaaaaaaaaa", tenant="other"))
    loaded = await store.get("aaaaaaaaaaaa")
    assert loaded is not None
    assert loaded.tenant_id == "acme"


async def test_get_is_narrowed_to_the_tenant(store: ApiKeyStore) -> None:
    await store.create(record("aaaaaaaaaaaa", tenant="acme"))
    assert await store.get("aaaaaaaaaaaa", tenant_id="acme") is not None
    assert await store.get("aaaaaaaaaaaa", tenant_id="globex") is None
    assert await store.revoke("aaaaaaaaaaaa", T0, tenant_id="globex") is None
    assert await store.expire("aaaaaaaaaaaa", T0, tenant_id="globex") is None
    untouched = await store.get("aaaaaaaaaaaa")
    assert untouched is not None
    assert (untouched.revoked_at, untouched.expires_at) == (None, None)


async def test_list_filters_and_orders(store: ApiKeyStore) -> None:
    await store.create(record("cccccccccccc", tenant="globex", created_at=T0))
    await store.create(record("bbbbbbbbbbbb", tenant="acme", created_at=T0 + timedelta(hours=1)))
    await store.create(record("aaaaaaaaaaaa", tenant="acme", created_at=T0 + timedelta(hours=2)))
    await store.create(record("dddddddddddd", tenant="acme", scopes=frozenset({ADMIN})))
    await store.revoke("dddddddddddd", T0)
    assert [r.key_id for r in await store.list()] == [
        "bbbbbbbbbbbb",
        "aaaaaaaaaaaa",
        "cccccccccccc",
    ]
    assert [r.key_id for r in await store.list("acme")] == ["bbbbbbbbbbbb", "aaaaaaaaaaaa"]
    everything = await store.list("acme", include_revoked=True)
    assert [r.key_id for r in everything] == ["dddddddddddd", "bbbbbbbbbbbb", "aaaaaaaaaaaa"]
    assert everything[0].scopes == frozenset({ADMIN})
    assert await store.list("nobody") == []


async def test_revoke_keeps_the_first_revocation(store: ApiKeyStore) -> None:
    await store.create(record("aaaaaaaaaaaa"))
    first = await store.revoke("aaaaaaaaaaaa", T0)
    assert first is not None
    assert first.revoked_at == T0
    again = await store.revoke("aaaaaaaaaaaa", T0 + timedelta(days=1))
    assert again is not None
    assert again.revoked_at == T0
    assert await store.revoke("bbbbbbbbbbbb", T0) is None


async def test_expire_only_ever_shortens(store: ApiKeyStore) -> None:
    await store.create(record("aaaaaaaaaaaa"))
    shortened = await store.expire("aaaaaaaaaaaa", T0 + timedelta(days=2))
    assert shortened is not None
    assert shortened.expires_at == T0 + timedelta(days=2)
    kept = await store.expire("aaaaaaaaaaaa", T0 + timedelta(days=5))
    assert kept is not None
    assert kept.expires_at == T0 + timedelta(days=2)
    earlier = await store.expire("aaaaaaaaaaaa", T0 + timedelta(hours=1))
    assert earlier is not None
    assert earlier.expires_at == T0 + timedelta(hours=1)


async def test_rotate_is_atomic(store: ApiKeyStore) -> None:
    await store.create(record("aaaaaaaaaaaa"))
    await store.create(record("bbbbbbbbbbbb"))
    clash = record("bbbbbbbbbbbb", rotated_from="aaaaaaaaaaaa")
    with pytest.raises(IntegrityError):
        await store.rotate(clash, "aaaaaaaaaaaa", T0)
    old = await store.get("aaaaaaaaaaaa")
    assert old is not None
    assert old.expires_at is None  # the failed insert rolled the expiry back too
    old = await store.rotate(
        record("cccccccccccc", rotated_from="aaaaaaaaaaaa"), "aaaaaaaaaaaa", T0
    )
    assert old is not None
    assert old.expires_at == T0
    new = await store.get("cccccccccccc")
    assert new is not None
    assert new.rotated_from == "aaaaaaaaaaaa"
