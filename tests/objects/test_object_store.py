"""One contract, three stores: the local folder, and the real SeaweedFS S3 with and without
Object Lock. Plus what only one backend does (file modes, the S3 lock, S3 errors)."""

from __future__ import annotations

import asyncio
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.objects.support import admin_client, bucket, s3_store
from tests.servicecheck import S3_ADMIN, S3_READER

from llama_mapper.api.responses import error_response
from llama_mapper.storage.objects import (
    InvalidObjectKey,
    LocalObjectStore,
    ObjectExists,
    ObjectLocked,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreUnavailable,
)


@pytest.fixture(params=["local", "s3-locked", "s3-plain"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    return s3_store(locked=request.param == "s3-locked")


async def test_put_get_list_delete(store: ObjectStore) -> None:
    assert await store.list() == []
    assert not await store.exists("reports/acme/r1.json")
    await store.put("reports/acme/r1.json", b'{"n": 1}')
    await store.put("reports/acme/r2.json", b"22")
    await store.put("reports/other/r1.json", b"333")
    await store.put("exports/acme/e.jsonl", b"")
    assert await store.get("reports/acme/r1.json") == b'{"n": 1}'
    assert await store.exists("reports/acme/r1.json")
    assert [(o.key, o.size) for o in await store.list("reports/acme/")] == [
        ("reports/acme/r1.json", 8),
        ("reports/acme/r2.json", 2),
    ]
    assert [o.key for o in await store.list("reports/")] == [
        "reports/acme/r1.json",
        "reports/acme/r2.json",
        "reports/other/r1.json",
    ]
    assert [o.key for o in await store.list("reports/ac")] == [
        "reports/acme/r1.json",
        "reports/acme/r2.json",
    ]
    assert len(await store.list()) == 4
    # A plain object may be replaced and deleted.
    await store.put("reports/acme/r2.json", b"new")
    assert await store.get("reports/acme/r2.json") == b"new"
    await store.delete("reports/acme/r2.json")
    assert not await store.exists("reports/acme/r2.json")
    with pytest.raises(ObjectNotFound):
        await store.get("reports/acme/r2.json")
    with pytest.raises(ObjectNotFound):
        await store.delete("reports/acme/r2.json")


@pytest.mark.parametrize("retain", [False, True])
async def test_write_once_is_refused_a_second_time(store: ObjectStore, retain: bool) -> None:
    key = "anchors/acme/000000000001-abcdef0123456789.json"
    await store.put(key, b"first", write_once=True, retain=retain)
    with pytest.raises(ObjectExists):
        await store.put(key, b"second", write_once=True, retain=retain)
    # Not by a plain put either, and not deleted through the interface.
    with pytest.raises(ObjectExists):
        await store.put(key, b"third")
    with pytest.raises(ObjectLocked):
        await store.delete(key)
    assert await store.get(key) == b"first"


async def test_concurrent_write_once_has_exactly_one_winner(store: ObjectStore) -> None:
    key = "anchors/acme/000000000007-abcdef0123456789.json"

    async def attempt(n: int) -> bool:
        try:
            await store.put(key, f"writer {n}".encode(), write_once=True)
        except ObjectExists:
            return False
        return True

    results = await asyncio.gather(*(attempt(n) for n in range(6)))
    assert results.count(True) == 1
    winner = results.index(True)
    assert await store.get(key) == f"writer {winner}".encode()


async def test_a_write_once_object_is_never_seen_half_written(store: ObjectStore) -> None:
    """Readers racing a write-once put see the whole object or none (the registry re-reads
    its history while other promotions are being written)."""
    data = b"x" * 200_000
    keys = [f"models/_history/production/{n:012d}.json" for n in range(20)]
    seen: list[bytes] = []

    async def read_until_written(key: str) -> None:
        while True:
            try:
                seen.append(await store.get(key))
                return
            except ObjectNotFound:
                await asyncio.sleep(0)

    readers = [asyncio.create_task(read_until_written(key)) for key in keys]
    for key in keys:
        await store.put(key, data, write_once=True)
    await asyncio.wait_for(asyncio.gather(*readers), timeout=30)
    assert len(seen) == len(keys)
    assert all(blob == data for blob in seen)


@pytest.mark.parametrize(
    "key", ["", "/abs", "a//b", "../x", "a/../b", ".hidden", "a/.tmp", "a b", "-x", "x/", "é"]
)
async def test_unsafe_keys_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidObjectKey):
        await store.put(key, b"x")
    with pytest.raises(InvalidObjectKey):
        await store.get(key)


# --- the local folder ---------------------------------------------------------------


async def test_local_write_once_files_are_read_only(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    await store.put("anchors/t/a.json", b"x", write_once=True)
    await store.put("exports/t/e.jsonl", b"y")
    assert stat.S_IMODE((tmp_path / "anchors/t/a.json").stat().st_mode) == 0o444
    assert stat.S_IMODE((tmp_path / "exports/t/e.jsonl").stat().st_mode) == 0o644
    # An unfinished put's temporary file is not an object.
    (tmp_path / "exports/t/.put-123").write_bytes(b"partial")
    assert [o.key for o in await store.list()] == ["anchors/t/a.json", "exports/t/e.jsonl"]
    protection = await store.protection()
    assert protection.mechanism == "o_excl"
    assert not protection.locked


# --- S3: Object Lock, and the weaker fallback ------------------------------------------


async def test_s3_object_lock_compliance_is_enforced_by_the_server() -> None:
    store = s3_store(locked=True, lock_days=2)
    protection = await store.protection()
    assert protection.locked
    assert protection.mechanism == "object-lock"
    assert "COMPLIANCE" in protection.detail
    key = "anchors/acme/000000000003-abcdef0123456789.json"
    await store.put(key, b"anchor", write_once=True, retain=True)

    raw = admin_client(store.endpoint_url or "")
    name = store.prefix + key
    head = raw.head_object(Bucket=store.bucket, Key=name)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    until = head["ObjectLockRetainUntilDate"]
    expected = datetime.now(UTC) + timedelta(days=2)
    assert abs((until - expected).total_seconds()) < 300
    # Past our code: even the admin identity cannot delete the locked version.
    version = raw.list_object_versions(Bucket=store.bucket, Prefix=name)["Versions"][0]
    with pytest.raises(Exception, match="AccessDenied"):
        raw.delete_object(Bucket=store.bucket, Key=name, VersionId=version["VersionId"])
    assert await store.get(key) == b"anchor"


async def test_s3_without_object_lock_says_it_cannot_lock() -> None:
    store = s3_store(locked=False)
    protection = await store.protection()
    assert not protection.locked
    assert protection.mechanism == "if-none-match"
    assert "CANNOT LOCK" in protection.detail
    key = "anchors/acme/000000000003-abcdef0123456789.json"
    await store.put(key, b"anchor", write_once=True, retain=True)
    raw = admin_client(store.endpoint_url or "")
    head = raw.head_object(Bucket=store.bucket, Key=store.prefix + key)
    assert "ObjectLockMode" not in head
    # The documented weakness: the bucket's owner can remove it outside this code.
    raw.delete_object(Bucket=store.bucket, Key=store.prefix + key)
    assert not await store.exists(key)


# --- S3 errors: one clear line each, never a secret ------------------------------------


async def test_s3_wrong_secret_key() -> None:
    store = s3_store(locked=False, credentials=(S3_ADMIN[0], "not-the-secret-key-123"))
    for call in (store.protection(), store.put("a/b", b"x"), store.get("a/b"), store.list()):
        with pytest.raises(ObjectStoreUnavailable) as caught:
            await call
        assert caught.value.reason in ("credentials", "access_denied"), str(caught.value)
        assert "not-the-secret-key-123" not in str(caught.value)
    with pytest.raises(ObjectStoreUnavailable, match="SignatureDoesNotMatch"):
        await store.list()


async def test_s3_unknown_access_key() -> None:
    store = s3_store(locked=False, credentials=("nobody-key", "nobody-secret-456"))
    with pytest.raises(ObjectStoreUnavailable, match="InvalidAccessKeyId") as caught:
        await store.get("a/b")
    assert caught.value.reason == "credentials"
    assert "refused the credentials" in str(caught.value)
    assert "nobody-secret-456" not in str(caught.value)


async def test_s3_read_only_identity_cannot_write() -> None:
    store = s3_store(locked=False, credentials=S3_READER)
    assert await store.list() == []
    with pytest.raises(ObjectStoreUnavailable, match="access denied for put") as caught:
        await store.put("a/b", b"x")
    assert caught.value.reason == "access_denied"


async def test_s3_missing_bucket_is_named_and_not_created() -> None:
    store = s3_store(locked=False, bucket_name="mapper-no-such-bucket")
    for call in (store.protection(), store.put("a/b", b"x"), store.get("a/b"), store.list()):
        with pytest.raises(ObjectStoreUnavailable, match="'mapper-no-such-bucket' does not exist"):
            await call
    # SeaweedFS would create a bucket on the first PUT; the store checks first.
    names = [b["Name"] for b in admin_client(store.endpoint_url or "").list_buckets()["Buckets"]]
    assert "mapper-no-such-bucket" not in names


async def test_s3_unreachable_endpoint() -> None:
    bucket(locked=False)
    store = s3_store(locked=False, endpoint="http://127.0.0.1:9")
    expected = re.escape("endpoint http://127.0.0.1:9 unreachable")
    with pytest.raises(ObjectStoreUnavailable, match=expected):
        await store.protection()


async def test_unavailable_becomes_503_backend_unavailable() -> None:
    store = s3_store(locked=False, credentials=("nobody-key", "nobody-secret-456"))
    with pytest.raises(ObjectStoreUnavailable) as caught:
        await store.get("a/b")
    response = error_response(caught.value, "req-1")
    assert response.status_code == 503
    body = bytes(response.body).decode()
    assert '"error_code":"BACKEND_UNAVAILABLE"' in body.replace(" ", "")
    assert "nobody-secret-456" not in body
