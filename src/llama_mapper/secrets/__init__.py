"""Where the mapper's secrets come from: env vars/files (embedded default) or Vault/OpenBao.

Callers depend only on :class:`SecretProvider` and :func:`provider_from_settings`, so the
backend is a configuration choice (``secrets.backend``), not a code change. Secrets are
re-read after ``secrets.cache_seconds``, so rotation needs no restart, and every stored
derivative (a keyed hash) carries the version that made it, so rotation never breaks old
data.
"""

from __future__ import annotations

from pathlib import Path

from llama_mapper.config.settings import SecretsSettings
from llama_mapper.secrets._base import Secret, SecretError, SecretProvider
from llama_mapper.secrets.env import EnvSecretProvider, env_var_name
from llama_mapper.secrets.vault import VaultSecretProvider

__all__ = [
    "EnvSecretProvider",
    "Secret",
    "SecretError",
    "SecretProvider",
    "VaultSecretProvider",
    "env_var_name",
    "provider_from_settings",
]


def provider_from_settings(
    settings: SecretsSettings,
    fallback_dir: Path | None = None,
    generated: frozenset[str] | None = None,
) -> SecretProvider:
    """The provider ``settings.backend`` names.

    ``fallback_dir`` (pass ``<state_dir>/secrets``) lets the env backend generate a missing
    secret once, so an embedded install works without setup; it is used only when
    ``settings.directory`` is unset, because an operator who configured a secrets folder
    wants a missing file reported, not papered over. ``generated`` limits which names may
    be generated (keys, peppers — never a password of another system). The Vault backend
    ignores both.
    """
    if settings.backend == "vault":
        return VaultSecretProvider(settings)
    return EnvSecretProvider(
        settings,
        fallback_dir=fallback_dir if settings.directory is None else None,
        generated=generated,
    )
