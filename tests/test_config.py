"""Configuration precedence and overlays."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from llama_mapper.config.overlays import OverlayError, TenantConfigs, apply_environment
from llama_mapper.config.settings import load_settings


def test_defaults(state_dir: Path) -> None:
    settings = load_settings()
    assert settings.serving.port == 8000
    assert settings.serving.max_payload_kb == 64
    assert settings.privacy.mode is True
    assert settings.guard.enabled is True


def test_yaml_file_then_environment(
    tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("serving:\n  max_payload_kb: 32\n  port: 9001\nenvironment: prod\n")
    settings = load_settings(config)
    assert (settings.serving.max_payload_kb, settings.serving.port) == (32, 9001)
    monkeypatch.setenv("LLAMA_MAPPER_SERVING__MAX_PAYLOAD_KB", "128")
    settings = load_settings(config)
    assert settings.serving.max_payload_kb == 128
    assert settings.serving.port == 9001
    monkeypatch.setenv("LLAMA_MAPPER_CONFIG", str(config))
    assert load_settings().environment == "prod"


def test_invalid_values_and_unknown_keys_are_rejected(tmp_path: Path, state_dir: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("serving:\n  max_payload_kb: lots\n")
    with pytest.raises(ValidationError):
        load_settings(config)
    config.write_text("servng: {}\n")
    with pytest.raises(ValidationError):
        load_settings(config)
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "missing.yaml")


def test_environment_overlay(tmp_path: Path, state_dir: Path) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "staging.yaml").write_text("guard:\n  max_words: 8\n")
    config = tmp_path / "c.yaml"
    config.write_text("environment: staging\n")
    settings = load_settings(config)
    applied = apply_environment(settings, settings.overlay_root(config))
    assert applied.guard.max_words == 8
    assert applied.serving == settings.serving


def test_tenant_overlay_is_limited_reloaded_and_validated(tmp_path: Path, state_dir: Path) -> None:
    settings = load_settings()
    tenants_dir = tmp_path / "tenants"
    tenants_dir.mkdir()
    overlay = tenants_dir / "acme.yaml"
    overlay.write_text("mapping:\n  default_threshold: 0.9\n")
    configs = TenantConfigs(settings.tenant_view(), tmp_path, recheck_seconds=0.0)
    assert configs.for_tenant("acme").mapping.default_threshold == 0.9
    assert configs.for_tenant("other").mapping.default_threshold == 0.5
    assert configs.for_tenant("../etc/passwd").mapping.default_threshold == 0.5
    overlay.write_text("mapping:\n  default_threshold: 0.7\n")
    os.utime(overlay, (1, 1))  # a changed mtime triggers a re-read
    assert configs.for_tenant("acme").mapping.default_threshold == 0.7
    (tenants_dir / "sneaky.yaml").write_text("serving:\n  port: 1\n")
    with pytest.raises(OverlayError, match="tenants may only set"):
        configs.for_tenant("sneaky")
