"""Only the mapper's own keys are generated when missing; other secrets are reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from llama_mapper.config.settings import load_settings
from llama_mapper.runtime import secret_provider
from llama_mapper.secrets import SecretError


def test_pepper_is_generated_but_a_database_password_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLAMA_MAPPER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("LLAMA_MAPPER_SECRET_API_KEY_PEPPER", raising=False)
    monkeypatch.delenv("LLAMA_MAPPER_SECRET_DB_PASSWORD", raising=False)
    provider = secret_provider(load_settings())
    pepper = provider.get("api_key_pepper")
    assert len(pepper.value) >= 32
    assert (tmp_path / "state" / "secrets" / "api_key_pepper").exists()
    with pytest.raises(SecretError) as info:
        provider.get("db_password")
    assert "db_password" in str(info.value)
    assert not (tmp_path / "state" / "secrets" / "db_password").exists()
