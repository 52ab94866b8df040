"""Serving the registry's promoted version: fetched, verified, named in every response.

Only the last test loads torch; the others stop at the model card, which is what
``version_info.model`` and ``/ready`` are built from.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from tests.objects.support import use_s3_settings

from llama_mapper.api.app import create_app
from llama_mapper.catalog import Catalog
from llama_mapper.config.settings import load_settings
from llama_mapper.model.artifact import DEFAULT_VERSION, HEAD
from llama_mapper.model.registry import ModelRegistry
from llama_mapper.model.registry_cache import folder_matches
from llama_mapper.model.registry_serving import registry_from_settings
from llama_mapper.service import MapperService
from llama_mapper.storage.db.migrate import upgrade

from .conftest import requires_ml
from .registry_support import model_folder, tamper

pytestmark = requires_ml  # tier_from_settings wants the ml extra importable (not imported)
OLD, NEW = "embedding-20.0.0", "embedding-20.1.0"


@pytest.fixture(params=["local", "s3"])
def registry(
    request: pytest.FixtureRequest,
    state_dir: Path,
    tier_on: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> ModelRegistry:
    """The registry the settings point at, holding OLD and NEW; serving follows production."""
    if request.param == "s3":
        use_s3_settings(monkeypatch, locked=False)
    monkeypatch.setenv("LLAMA_MAPPER_LEARNED__REGISTRY_STAGE", "production")
    registry = registry_from_settings(load_settings())
    for version in (OLD, NEW):
        asyncio.run(registry.register(model_folder(tmp_path / "models", version)))
    return registry


def serving(catalog: Catalog) -> MapperService:
    return MapperService(load_settings(), catalog)


def test_serving_follows_promotions_and_rollbacks(
    registry: ModelRegistry, catalog: Catalog, state_dir: Path
) -> None:
    asyncio.run(registry.promote(OLD))
    service = serving(catalog)
    assert service.model_version == OLD
    assert OLD in service.learned_status
    assert service.engine.learned is not None
    folder = state_dir / "models" / OLD
    assert service.engine.learned.folder == folder  # type: ignore[attr-defined]
    assert folder_matches(folder, asyncio.run(registry.manifest(OLD)))
    asyncio.run(registry.promote(NEW))
    assert serving(catalog).model_version == NEW
    asyncio.run(registry.rollback())
    assert serving(catalog).model_version == OLD
    assert sorted(p.name for p in (state_dir / "models").iterdir()) == [OLD, NEW]  # no temp left


async def _map_and_ready(settings: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    # Built inside the running loop, as an app factory called from async code is: the
    # registry fetch must not try to nest asyncio.run.
    app = create_app(settings)
    runtime = app.state.runtime
    await upgrade(runtime.engine)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mapper") as http:
            mapped = await http.post(
                "/map", json={"detector": "presidio", "output": "US_SSN", "tenant_id": "acme"}
            )
            assert mapped.status_code == 200, mapped.text
            ready = await http.get("/ready")
            return mapped.json(), ready.json()
    finally:
        await runtime.aclose()


def test_every_response_names_the_promoted_version(registry: ModelRegistry) -> None:
    asyncio.run(registry.promote(NEW))
    body, ready = asyncio.run(_map_and_ready(load_settings()))
    assert body["version_info"]["model"] == NEW
    assert body["taxonomy"] == ["PII.Identifier.SSN"]  # the rules answered; model not loaded
    assert NEW in ready["checks"]["learned_tier"]
    asyncio.run(registry.promote(OLD))
    body, _ = asyncio.run(_map_and_ready(load_settings()))
    assert body["version_info"]["model"] == OLD


def test_a_tampered_file_leaves_the_mapper_rules_only(
    registry: ModelRegistry, catalog: Catalog, state_dir: Path
) -> None:
    asyncio.run(registry.promote(NEW))
    tamper(registry.store, f"models/{NEW}/files/{HEAD}", b"not the head")
    service = serving(catalog)
    assert service.model_version == "rules-only"
    assert service.engine.learned is None
    reason = service.learned_status
    assert reason.startswith("rules-only (model registry: file head.safetensors of model")
    assert "does not match the SHA-256 in its manifest" in reason
    assert not (state_dir / "models" / NEW).exists()  # nothing half-fetched stays
    assert [p.name for p in (state_dir / "models").iterdir()] == []
    body, ready = asyncio.run(_map_and_ready(load_settings()))
    assert body["version_info"]["model"] == "rules-only"
    assert "does not match the SHA-256" in ready["checks"]["learned_tier"]


def test_a_changed_cache_is_fetched_again(
    registry: ModelRegistry, catalog: Catalog, state_dir: Path
) -> None:
    asyncio.run(registry.promote(OLD))
    assert serving(catalog).model_version == OLD
    head = state_dir / "models" / OLD / HEAD
    original = head.read_bytes()
    head.write_bytes(b"changed on disk")
    (head.parent / "planted.py").write_text("print('x')\n")
    assert serving(catalog).model_version == OLD
    assert head.read_bytes() == original
    assert not (head.parent / "planted.py").exists()


def test_pinned_version_and_missing_promotion(
    registry: ModelRegistry, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = serving(catalog)  # production has nothing yet
    assert service.model_version == "rules-only"
    assert "no version is promoted to stage 'production'" in service.learned_status
    monkeypatch.delenv("LLAMA_MAPPER_LEARNED__REGISTRY_STAGE")
    monkeypatch.setenv("LLAMA_MAPPER_LEARNED__MODEL_VERSION", NEW)
    assert serving(catalog).model_version == NEW
    monkeypatch.setenv("LLAMA_MAPPER_LEARNED__MODEL_VERSION", "embedding-0.0.1")
    assert "unknown model version 'embedding-0.0.1'" in serving(catalog).learned_status


def test_an_unreachable_store_is_a_reason_not_a_crash(
    state_dir: Path, tier_on: None, monkeypatch: pytest.MonkeyPatch, catalog: Catalog
) -> None:
    use_s3_settings(monkeypatch, locked=False)
    monkeypatch.setenv("LLAMA_MAPPER_OBJECT_STORE__ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("LLAMA_MAPPER_LEARNED__REGISTRY_STAGE", "production")
    service = serving(catalog)
    assert service.model_version == "rules-only"
    assert "unreachable" in service.learned_status


def test_without_registry_settings_the_shipped_model_serves(
    state_dir: Path, tier_on: None, catalog: Catalog
) -> None:
    assert serving(catalog).model_version == DEFAULT_VERSION
    assert not (state_dir / "models").exists()


def test_model_sources_are_alternatives(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLAMA_MAPPER_LEARNED__REGISTRY_STAGE", "production")
    monkeypatch.setenv("LLAMA_MAPPER_LEARNED__MODEL_DIR", str(tmp_path))
    with pytest.raises(ValidationError, match=r"learned.model_dir and learned.registry_stage"):
        load_settings()
    monkeypatch.delenv("LLAMA_MAPPER_LEARNED__MODEL_DIR")
    monkeypatch.setenv("LLAMA_MAPPER_LEARNED__REGISTRY_STAGE", "Prod/1")
    with pytest.raises(ValidationError, match="invalid stage"):
        load_settings()


def test_the_promoted_version_loads_and_maps_for_real(
    state_dir: Path,
    tier_on: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    catalog: Catalog,
) -> None:
    """The one test that loads torch: the fetched folder is a working model."""
    monkeypatch.setenv("LLAMA_MAPPER_LEARNED__REGISTRY_STAGE", "production")
    registry = registry_from_settings(load_settings())
    asyncio.run(registry.register(model_folder(tmp_path, "embedding-21.0.0")))
    asyncio.run(registry.promote("embedding-21.0.0"))
    service = serving(catalog)
    payload = service.parse_payload(
        {"detector": "acme-new-scanner", "output": "US Social Security No", "tenant_id": "default"}
    )
    response = service.map_payload(payload, route="test")
    assert response["taxonomy"] == ["PII.Identifier.SSN"]
    assert response["provenance"]["method"] == {"PII.Identifier.SSN": "model"}
    assert response["version_info"]["model"] == "embedding-21.0.0"
    assert service.learned_status == "ok (embedding-21.0.0, loaded)"
