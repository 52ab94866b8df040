"""The shipped embedding mapper serving as the learned tier, end to end."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from llama_mapper.catalog import Catalog
from llama_mapper.config.settings import Settings, load_settings
from llama_mapper.model.artifact import DEFAULT_VERSION
from llama_mapper.model.tier import EmbeddingTier
from llama_mapper.service import MapperService

from .conftest import requires_ml

pytestmark = requires_ml

NEW_VENDOR = "acme-new-scanner"  # no pack: only the taxonomy, then the model
SRC = str(Path(__file__).resolve().parents[2] / "src")


def map_one(service: MapperService, label: str, tenant: str = "default") -> dict:
    payload = service.parse_payload({"detector": NEW_VENDOR, "output": label, "tenant_id": tenant})
    return service.map_payload(payload, route="test")


def tier_of(service: MapperService) -> EmbeddingTier:
    assert isinstance(service.engine.learned, EmbeddingTier)
    return service.engine.learned


def test_unknown_label_is_mapped_by_the_model(service: MapperService) -> None:
    response = map_one(service, "US Social Security No")
    assert response["taxonomy"] == ["PII.Identifier.SSN"]
    assert response["provenance"]["method"] == {"PII.Identifier.SSN": "model"}
    assert response["confidence"] >= service.settings.mapping.learned_threshold
    assert response["version_info"]["model"] == DEFAULT_VERSION
    assert response["provenance"]["unmapped_labels"] == []


def test_rules_answer_first(service: MapperService) -> None:
    tier = tier_of(service)
    calls = tier.misses + tier.hits
    payload = service.parse_payload(
        {"detector": "presidio", "output": "US_SSN", "tenant_id": "default"}
    )
    response = service.map_payload(payload, route="test")
    assert response["provenance"]["method"] == {"PII.Identifier.SSN": "exact"}
    assert tier.misses + tier.hits == calls  # the model was not asked
    assert response["version_info"]["model"] == DEFAULT_VERSION


def test_unsure_answers_fall_back_with_candidates_and_are_queued(
    service: MapperService,
) -> None:
    response = map_one(service, "zxqv blorp")
    assert response["taxonomy"] == ["OTHER.Unknown"]
    candidates = response["provenance"]["model_candidates"]["zxqv blorp"]
    assert len(candidates) >= 2
    assert all(len(c) == 2 and 0.0 <= c[1] < 0.8 for c in candidates)
    assert response["provenance"]["unmapped_labels"] == ["zxqv blorp"]
    assert service.engine.unmapped.snapshot() == {(NEW_VENDOR, "zxqv blorp"): 1}


@pytest.mark.parametrize("label", ["emial", "Contact Emial"])
def test_a_misspelt_word_is_not_read_as_a_service_key(service: MapperService, label: str) -> None:
    """Why TruffleHog's bare service names stay out of training (model/data.py): with them
    the model answered SECRET.APIKey at 0.86 for ``emial``."""
    response = map_one(service, label)
    assert response["taxonomy"] == ["OTHER.Unknown"]
    assert response["provenance"]["unmapped_labels"] == [label]


def test_answers_are_memoized_per_detector_and_label(service: MapperService) -> None:
    tier = tier_of(service)
    map_one(service, "E-Mail Addr")
    misses, hits = tier.misses, tier.hits
    first = map_one(service, "E-Mail Addr")
    assert (tier.misses, tier.hits) == (misses, hits + 1)
    assert first["taxonomy"] == ["PII.Contact.Email"]


def test_content_sent_as_a_label_never_reaches_the_model(service: MapperService) -> None:
    tier = tier_of(service)
    misses = tier.misses
    response = map_one(service, "card 4111 1111 1111 1111")
    assert response["taxonomy"] == ["OTHER.Unknown"]
    assert tier.misses == misses
    assert response["provenance"]["model_candidates"] == {}


def test_thresholds_per_tenant_and_per_detector(
    tmp_path: Path, state_dir: Path, tier_on: None, catalog: Catalog
) -> None:
    (tmp_path / "tenants").mkdir()
    (tmp_path / "tenants" / "strict.yaml").write_text("mapping:\n  learned_threshold: 0.9999\n")
    (tmp_path / "tenants" / "picky.yaml").write_text(
        f"mapping:\n  learned_detector_thresholds:\n    {NEW_VENDOR}: 1.0\n"
    )
    config = tmp_path / "config.yaml"
    config.write_text("environment: test\n")
    settings = load_settings(config)
    service = MapperService(settings, catalog, overlay_root=settings.overlay_root(config))
    assert map_one(service, "US Social Security No")["taxonomy"] == ["PII.Identifier.SSN"]
    for tenant in ("strict", "picky"):
        response = map_one(service, "US Social Security No", tenant)
        assert response["taxonomy"] == ["OTHER.Unknown"], tenant
        best = response["provenance"]["model_candidates"]["US Social Security No"][0]
        assert best[0] == "PII.Identifier.SSN"


async def test_ready_names_the_model_and_whether_it_is_loaded(
    settings: Settings, catalog: Catalog
) -> None:
    from llama_mapper.api.app import create_app

    service = MapperService(settings, catalog)
    app = create_app(settings, service=service)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
        ready = (await client.get("/ready")).json()
        assert DEFAULT_VERSION in ready["checks"]["learned_tier"]
        assert ready["version_info"]["model"] == DEFAULT_VERSION
        body = {"detector": NEW_VENDOR, "output": "Passport No", "tenant_id": "t"}
        mapped = (await client.post("/map", json=body)).json()
        assert mapped["version_info"]["model"] == DEFAULT_VERSION
        ready = (await client.get("/ready")).json()
        assert ready["checks"]["learned_tier"] == f"ok ({DEFAULT_VERSION}, loaded)"
    await app.state.runtime.aclose()


async def test_serve_loads_the_model_at_start_up(settings: Settings, catalog: Catalog) -> None:
    from llama_mapper.api.app import create_app

    service = MapperService(settings, catalog)
    tier = tier_of(service)
    app = create_app(settings, service=service)
    async with app.router.lifespan_context(app):
        for _ in range(1200):  # the load runs in a thread; the loop stays free meanwhile
            if tier.state != "available":
                break
            await asyncio.sleep(0.05)
        assert tier.state == "loaded"
        assert tier.misses == 0  # loaded before any label asked for it


def test_setting_turns_the_tier_off(
    state_dir: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLAMA_MAPPER_LEARNED__ENABLED", "false")
    service = MapperService(load_settings(), catalog)
    assert service.engine.learned is None
    assert service.model_version == "rules-only"
    assert service.learned_status == "rules-only (learned.enabled=false)"
    assert map_one(service, "US Social Security No")["taxonomy"] == ["OTHER.Unknown"]


def _python(code: str, state_dir: Path) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": SRC,
        "LLAMA_MAPPER_STATE_DIR": str(state_dir),
        "LLAMA_MAPPER_LEARNED__ENABLED": "true",
        "LLAMA_MAPPER_AUTH__ENABLED": "false",
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_starting_a_service_loads_no_model(state_dir: Path) -> None:
    out = _python(
        "import sys\n"
        "from llama_mapper.config.settings import load_settings\n"
        "from llama_mapper.service import MapperService\n"
        "s = MapperService.from_settings(load_settings())\n"
        "p = s.parse_payload({'detector': 'presidio', 'output': 'US_SSN', 'tenant_id': 'a'})\n"
        "r = s.map_payload(p, route='t')\n"
        "print('torch' in sys.modules, r['version_info']['model'], s.learned_status)\n",
        state_dir,
    )
    assert out.startswith(f"False {DEFAULT_VERSION} ok ({DEFAULT_VERSION}, loads on the first")


def test_without_the_ml_extra_the_mapper_runs_rules_only(state_dir: Path) -> None:
    out = _python(
        "import sys\n"
        "sys.modules['torch'] = None  # as if the ml extra were not installed\n"
        "import asyncio, httpx\n"
        "from llama_mapper.api.app import create_app\n"
        "from llama_mapper.config.settings import load_settings\n"
        "from llama_mapper.service import MapperService\n"
        "settings = load_settings()\n"
        "s = MapperService.from_settings(settings)\n"
        "p = s.parse_payload({'detector': 'x-new', 'output': 'Social Security No',"
        " 'tenant_id': 'a'})\n"
        "r = s.map_payload(p, route='t')\n"
        "async def ready():\n"
        "    app = create_app(settings, service=s)\n"
        "    t = httpx.ASGITransport(app=app)\n"
        "    async with httpx.AsyncClient(transport=t, base_url='http://m') as c:\n"
        "        body = (await c.get('/ready')).json()\n"
        "    await app.state.runtime.aclose()\n"
        "    return body\n"
        "body = asyncio.run(ready())\n"
        "print(r['taxonomy'], r['version_info']['model'])\n"
        "print(body['checks']['learned_tier'])\n"
        "print(body['version_info']['model'])\n",
        state_dir,
    )
    mapped, ready, version = out.splitlines()
    assert mapped == "['OTHER.Unknown'] rules-only"
    assert ready.startswith("rules-only (ml extra not installed: torch missing")
    assert version == "rules-only"
