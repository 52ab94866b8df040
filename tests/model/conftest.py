"""Fixtures for the learned tier: the shipped model, with the tier switched on, and a tiny
generative mapper trained once per session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llama_mapper.catalog import Catalog
from llama_mapper.config.settings import Settings, load_settings
from llama_mapper.model.availability import missing_ml_modules

from .causal_support import Trained, train

requires_ml = pytest.mark.skipif(
    bool(missing_ml_modules()), reason="the ml extra (torch, transformers, peft) is not installed"
)


@pytest.fixture
def tier_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undo the suite-wide LLAMA_MAPPER_LEARNED__ENABLED=false of tests/conftest.py."""
    monkeypatch.setenv("LLAMA_MAPPER_LEARNED__ENABLED", "true")


@pytest.fixture
def settings(state_dir: Path, tier_on: None) -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def trained(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return train(catalog, tmp_path_factory.mktemp("causal") / "model")


@pytest.fixture(scope="session")
def loaded(trained: Trained) -> Any:
    from llama_mapper.model.causal import CausalModel

    return CausalModel.load(trained.folder, threads=1)
