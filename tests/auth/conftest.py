from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.db.support import BACKENDS, migrated_engine

from llama_mapper.auth.service import AuthService
from llama_mapper.auth.store import ApiKeyStore
from llama_mapper.config.settings import SecretsSettings
from llama_mapper.secrets import EnvSecretProvider, env_var_name

PEPPER = "api_key_pepper"


class FakeClock:
    """A settable clock: cache windows and expiries are tested without sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def environ() -> dict[str, str]:
    """The live environment of the secret provider: tests edit it to rotate the pepper."""
    return {env_var_name(PEPPER): "pepper-one"}


@pytest.fixture
def secrets(environ: dict[str, str]) -> EnvSecretProvider:
    return EnvSecretProvider(SecretsSettings(cache_seconds=0), environ=environ)


@pytest.fixture(params=BACKENDS)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(request.param, tmp_path) as engine:
        yield engine


@pytest.fixture
def store(engine: AsyncEngine) -> ApiKeyStore:
    return ApiKeyStore(engine)


@pytest.fixture
def make_service(
    store: ApiKeyStore, secrets: EnvSecretProvider, clock: FakeClock
) -> Callable[..., AuthService]:
    """Build services sharing one store (like several server processes) and one clock."""

    def make(cache_seconds: float = 30.0, on: ApiKeyStore | None = None) -> AuthService:
        return AuthService(on or store, secrets, PEPPER, cache_seconds, clock=clock)

    return make


@pytest.fixture
def auth(make_service: Callable[..., AuthService]) -> AuthService:
    return make_service()
