"""The registry this deployment's settings describe, and the model folder serving uses.

Separate from :mod:`llama_mapper.model.registry` (pure store logic) because it reaches
into the runtime's secrets and the object store settings, and from
:mod:`llama_mapper.model.serving` so that a service without registry settings never
imports any of it.
"""

from __future__ import annotations

from pathlib import Path

from llama_mapper.config.settings import Settings
from llama_mapper.model.artifact import ArtifactError
from llama_mapper.model.registry import ModelRegistry, RegistryError
from llama_mapper.model.registry_cache import CACHE_DIRNAME, ModelCache, run_blocking
from llama_mapper.secrets import SecretError
from llama_mapper.storage.objects import ObjectStoreError, object_store_from_settings


class RegistryUnusable(Exception):
    """Serving cannot use the registry's model; the message says why, in one line."""


def registry_from_settings(settings: Settings) -> ModelRegistry:
    """The registry in the configured object store (no connection is opened here)."""
    from llama_mapper.runtime import secret_provider  # runtime imports the service

    return ModelRegistry(object_store_from_settings(settings, secret_provider(settings)))


def registry_folder(settings: Settings) -> Path:
    """The verified local folder of the version ``learned`` names (pinned or by stage)."""
    learned = settings.learned
    cache = ModelCache(settings.state_dir / CACHE_DIRNAME)

    async def fetch() -> Path:
        registry = registry_from_settings(settings)
        version = learned.model_version
        if version is None and learned.registry_stage is not None:
            version = await registry.current(learned.registry_stage)
            if version is None:
                raise RegistryError(
                    f"no version is promoted to stage {learned.registry_stage!r} "
                    "(mapper model promote VERSION)"
                )
        if version is None:
            raise RegistryError("neither learned.model_version nor learned.registry_stage is set")
        return await cache.fetch(registry, version)

    try:
        return run_blocking(fetch)
    except (RegistryError, ObjectStoreError, SecretError, ArtifactError, ValueError) as exc:
        raise RegistryUnusable(str(exc)) from None
    except OSError as exc:  # the cache folder: disk full, permissions
        raise RegistryUnusable(f"model cache {cache.root}: {type(exc).__name__}") from None
