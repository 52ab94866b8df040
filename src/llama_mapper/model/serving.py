"""Build the learned tier the settings ask for, or say why the mapper runs rules-only.

Cheap by design: it checks that the ``ml`` extra can be imported and reads the model card,
but imports nothing heavy; the model loads on the first label the rules do not know.
With ``learned.registry_stage`` (or ``learned.model_version``) the folder is the version
the model registry names, fetched from the object store and verified first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llama_mapper.config.settings import LearnedSettings, Settings
from llama_mapper.model.artifact import DEFAULT_MODEL_DIR, ArtifactError
from llama_mapper.model.availability import INSTALL_HINT, missing_ml_modules
from llama_mapper.model.tier import EmbeddingTier

RULES_ONLY = "rules-only"


@dataclass(frozen=True)
class TierChoice:
    tier: EmbeddingTier | None
    #: Why there is no tier (``None`` when there is one).
    reason: str | None


def serving_tier(settings: Settings) -> TierChoice:
    """The tier for a service: :func:`tier_from_settings` on the registry's folder when
    the settings name a stage or version, else on ``learned.model_dir`` or the shipped one.

    A registry that cannot be read, a stage with nothing promoted or a file that fails its
    SHA-256 check leaves the mapper rules-only with the reason, never a failed start.
    """
    learned = settings.learned
    if not learned.enabled or (learned.registry_stage is None and learned.model_version is None):
        return tier_from_settings(learned)
    from llama_mapper.model.registry_serving import RegistryUnusable, registry_folder

    try:
        folder = registry_folder(settings)
    except RegistryUnusable as exc:
        return TierChoice(None, f"{RULES_ONLY} (model registry: {exc})")
    return tier_from_settings(learned, folder=folder)


def tier_from_settings(settings: LearnedSettings, *, folder: Path | None = None) -> TierChoice:
    """``folder``: the model to serve (default ``settings.model_dir`` or the shipped one)."""
    if not settings.enabled:
        return TierChoice(None, f"{RULES_ONLY} (learned.enabled=false)")
    missing = missing_ml_modules()
    if missing:
        return TierChoice(
            None,
            f"{RULES_ONLY} (ml extra not installed: {', '.join(missing)} missing; {INSTALL_HINT})",
        )
    try:
        tier = EmbeddingTier(
            folder or settings.model_dir or DEFAULT_MODEL_DIR,
            base_dir=settings.base_model_dir,
            threads=settings.threads,
            cache_size=settings.cache_size,
        )
    except ArtifactError as exc:
        return TierChoice(None, f"{RULES_ONLY} (model unusable: {exc})")
    return TierChoice(tier, None)
