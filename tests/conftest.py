"""Shared fixtures: the packaged catalog and a service/app isolated from the user's state."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from llama_mapper.api.app import create_app
from llama_mapper.catalog import Catalog, load_catalog
from llama_mapper.config.settings import Settings, load_settings
from llama_mapper.service import MapperService
from llama_mapper.storage.db.migrate import upgrade

# The rules-contract tests (OTHER.Unknown for labels no rule knows, exact provenance) run
# with the learned tier off, here and in every CLI subprocess; tests/model/ turns it on.
os.environ["LLAMA_MAPPER_LEARNED__ENABLED"] = "false"


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("LLAMA_MAPPER_STATE_DIR", str(state))
    monkeypatch.delenv("LLAMA_MAPPER_CONFIG", raising=False)
    # The mapping-contract tests talk to the API without keys; tests/test_api_security.py
    # covers authentication, rate limits and idempotency with auth on.
    monkeypatch.setenv("LLAMA_MAPPER_AUTH__ENABLED", "false")
    return state


@pytest.fixture
def settings(state_dir: Path) -> Settings:
    return load_settings()


@pytest.fixture
def service(settings: Settings, catalog: Catalog) -> MapperService:
    return MapperService(settings, catalog)


@pytest.fixture
async def client(service: MapperService) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(service.settings, service=service)
    runtime = app.state.runtime
    await upgrade(runtime.engine)  # what the lifespan does (httpx does not run lifespans)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mapper") as http:
        yield http
    await runtime.aclose()
