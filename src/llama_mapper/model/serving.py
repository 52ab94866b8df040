"""Build the learned tier the settings ask for, or say why the mapper runs rules-only.

Cheap by design: it checks that the ``ml`` extra can be imported and reads the model card,
but imports nothing heavy; the model loads on the first label the rules do not know.
"""

from __future__ import annotations

from dataclasses import dataclass

from llama_mapper.config.settings import LearnedSettings
from llama_mapper.model.artifact import CAUSAL, DEFAULT_MODEL_DIR, ArtifactError, read_card
from llama_mapper.model.availability import INSTALL_HINT, missing_ml_modules
from llama_mapper.model.causal_tier import CausalTier
from llama_mapper.model.tier import EmbeddingTier

RULES_ONLY = "rules-only"


@dataclass(frozen=True)
class TierChoice:
    tier: EmbeddingTier | CausalTier | None
    #: Why there is no tier (``None`` when there is one).
    reason: str | None


def tier_from_settings(settings: LearnedSettings) -> TierChoice:
    if not settings.enabled:
        return TierChoice(None, f"{RULES_ONLY} (learned.enabled=false)")
    missing = missing_ml_modules()
    if missing:
        return TierChoice(
            None,
            f"{RULES_ONLY} (ml extra not installed: {', '.join(missing)} missing; {INSTALL_HINT})",
        )
    folder = settings.model_dir or DEFAULT_MODEL_DIR
    try:
        # The card's kind picks the tier: embedding or generative (causal).
        kind = CausalTier if read_card(folder).kind == CAUSAL else EmbeddingTier
        tier = kind(
            folder,
            base_dir=settings.base_model_dir,
            threads=settings.threads,
            cache_size=settings.cache_size,
        )
    except ArtifactError as exc:
        return TierChoice(None, f"{RULES_ONLY} (model unusable: {exc})")
    return TierChoice(tier, None)
