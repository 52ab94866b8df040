"""Redis clients for the rate-limit tests (see tests/redis_fixtures.py)."""

from __future__ import annotations

import uuid

import pytest
from tests.redis_fixtures import redis_client, redis_factory

__all__ = ["redis_client", "redis_factory"]


@pytest.fixture
def redis_prefix() -> str:
    return f"lmtest:rl:{uuid.uuid4().hex}:"
