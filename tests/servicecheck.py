"""Skip a test whose server is absent — or fail it, when CI says every service must be there.

`.ci/run` sets LLAMA_MAPPER_REQUIRE_SERVICES=1, which turns these skips into failures, so a
green CI run always means the real servers were exercised.
"""

from __future__ import annotations

import os
import socket

import pytest

POSTGRES_URL = os.environ.get(
    "LLAMA_MAPPER_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("LLAMA_MAPPER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def services_required() -> bool:
    return os.environ.get("LLAMA_MAPPER_REQUIRE_SERVICES", "") not in ("", "0", "false")


def require(available: bool, what: str) -> None:
    """Skip (or fail under LLAMA_MAPPER_REQUIRE_SERVICES=1) when ``what`` is unavailable."""
    if available:
        return
    message = f"{what} is not available"
    if services_required():
        pytest.fail(f"{message}, and LLAMA_MAPPER_REQUIRE_SERVICES=1 requires it")
    pytest.skip(message)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_redis() -> str:
    require(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    return REDIS_URL


def require_postgres() -> str:
    require(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
    return POSTGRES_URL


S3_ENDPOINT = os.environ.get("LLAMA_MAPPER_TEST_S3_URL", "http://127.0.0.1:8333")
#: The identities scripts/services.sh writes into SeaweedFS's s3.json (127.0.0.1 only).
S3_ADMIN = ("mapper-admin", "mapper-admin-secret")
S3_READER = ("mapper-reader", "mapper-reader-secret")


def require_s3() -> str:
    """The S3 endpoint of the SeaweedFS that `scripts/services.sh start` runs."""
    from urllib.parse import urlsplit
    from urllib.request import urlopen

    parts = urlsplit(S3_ENDPOINT)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    healthy = False
    if port_open(host, port):
        try:
            with urlopen(f"{S3_ENDPOINT}/healthz", timeout=2) as reply:
                healthy = reply.status == 200
        except OSError:
            healthy = False
    require(healthy, f"SeaweedFS S3 on {host}:{port} (scripts/services.sh start seaweedfs)")
    return S3_ENDPOINT
