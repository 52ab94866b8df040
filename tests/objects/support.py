"""Buckets and stores on the real SeaweedFS for the object-store tests.

Two fixed buckets (one with Object Lock, one without), created when missing, rather than
one per test or per run: each bucket takes its own volumes on the server (a long-lived dev
server would run out of them), and locked objects cannot be cleaned up anyway. Tests
isolate by a fresh key prefix instead, like the PostgreSQL tests by schema.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from tests.servicecheck import S3_ADMIN, require_s3

from llama_mapper.secrets import env_var_name
from llama_mapper.storage.objects import S3Credentials, S3ObjectStore

LOCKED_BUCKET = "mapper-test-locked"
PLAIN_BUCKET = "mapper-test-plain"
_created: set[str] = set()


def admin_client(endpoint: str) -> Any:
    """A raw boto3 client, to look at what the store wrote from outside the code under test."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_ADMIN[0],
        aws_secret_access_key=S3_ADMIN[1],
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def bucket(locked: bool) -> tuple[str, str]:
    """``(endpoint, bucket)``, the bucket created on first use (skips without SeaweedFS)."""
    endpoint = require_s3()
    name = LOCKED_BUCKET if locked else PLAIN_BUCKET
    if name not in _created:
        client = admin_client(endpoint)
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if name not in existing:
            client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=locked)
        _created.add(name)
    return endpoint, name


def s3_store(
    locked: bool,
    *,
    credentials: tuple[str, str] = S3_ADMIN,
    bucket_name: str | None = None,
    endpoint: str | None = None,
    lock_days: int = 1,
) -> S3ObjectStore:
    """A store under a fresh prefix of the locked or plain bucket."""
    real_endpoint, name = bucket(locked)
    return S3ObjectStore(
        bucket=bucket_name or name,
        credentials=lambda: S3Credentials(credentials[0], credentials[1], "test"),
        endpoint_url=endpoint or real_endpoint,
        prefix=f"t-{uuid.uuid4().hex[:12]}",
        object_lock_days=lock_days,
        connect_timeout=1.0,
        read_timeout=5.0,
    )


def use_s3_settings(
    monkeypatch: pytest.MonkeyPatch,
    *,
    locked: bool = True,
    credentials: tuple[str, str] = S3_ADMIN,
    bucket_name: str | None = None,
) -> str:
    """Point ``load_settings()`` (CLI and app) at the s3 backend, credentials as secrets.

    Returns the key prefix the settings use, so a test can look at exactly its objects.
    """
    endpoint, name = bucket(locked)
    prefix = f"cli-{uuid.uuid4().hex[:12]}"
    env = {
        "LLAMA_MAPPER_OBJECT_STORE__BACKEND": "s3",
        "LLAMA_MAPPER_OBJECT_STORE__ENDPOINT_URL": endpoint,
        "LLAMA_MAPPER_OBJECT_STORE__BUCKET": bucket_name or name,
        "LLAMA_MAPPER_OBJECT_STORE__PREFIX": prefix,
        "LLAMA_MAPPER_OBJECT_STORE__OBJECT_LOCK_DAYS": "1",
        env_var_name("s3_access_key"): credentials[0],
        env_var_name("s3_secret_key"): credentials[1],
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return prefix
