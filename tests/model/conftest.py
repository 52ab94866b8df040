"""Fixtures for the learned tier: the shipped model, with the tier switched on."""

from __future__ import annotations

from pathlib import Path

import pytest

from llama_mapper.config.settings import Settings, load_settings
from llama_mapper.model.availability import missing_ml_modules

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
