"""Build the learned tier the settings ask for, or say why the mapper runs rules-only.

Cheap by design: for the in-process backend it checks that the ``ml`` extra can be imported
and reads the model card, but imports nothing heavy; the model loads on the first label
the rules do not know. The ``openai`` backend needs no ``ml`` extra at all: it reads the
model folder's card and labels (or the explicit ``learned.http`` labels) and opens no
connection until a label needs the server. With ``learned.registry_stage`` (or
``learned.model_version``) the folder is the version the model registry names, fetched
from the object store and verified first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llama_mapper.config.settings import LearnedSettings, SecretsSettings, Settings
from llama_mapper.mapping.learned import LearnedTier
from llama_mapper.model.artifact import (
    CALIBRATION,
    CARD,
    CAUSAL,
    DEFAULT_MODEL_DIR,
    LABELS,
    ArtifactError,
    check_prompt_version,
    read_card,
    read_labels,
    read_temperature,
)
from llama_mapper.model.availability import INSTALL_HINT, missing_ml_modules
from llama_mapper.model.causal_tier import CausalTier
from llama_mapper.model.http_tier import HttpTier
from llama_mapper.model.tier import EmbeddingTier, MemoTier

RULES_ONLY = "rules-only"


@dataclass(frozen=True)
class TierChoice:
    tier: LearnedTier | None
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
        return tier_from_settings(learned, settings.secrets)
    from llama_mapper.model.registry_serving import RegistryUnusable, registry_folder

    try:
        folder = registry_folder(settings)
    except RegistryUnusable as exc:
        return TierChoice(None, f"{RULES_ONLY} (model registry: {exc})")
    return tier_from_settings(learned, settings.secrets, folder=folder)


def tier_from_settings(
    settings: LearnedSettings,
    secrets: SecretsSettings | None = None,
    *,
    folder: Path | None = None,
) -> TierChoice:
    """``secrets``: where ``learned.http.api_key_secret`` is read (openai backend);
    ``folder``: the model to serve (default ``settings.model_dir`` or the shipped one)."""
    if not settings.enabled:
        return TierChoice(None, f"{RULES_ONLY} (learned.enabled=false)")
    if settings.backend == "openai":
        try:
            return TierChoice(http_tier(settings, secrets or SecretsSettings(), folder), None)
        except ArtifactError as exc:
            return TierChoice(None, f"{RULES_ONLY} (model unusable: {exc})")
    missing = missing_ml_modules()
    if missing:
        return TierChoice(
            None,
            f"{RULES_ONLY} (ml extra not installed: {', '.join(missing)} missing; {INSTALL_HINT})",
        )
    folder = folder or settings.model_dir or DEFAULT_MODEL_DIR
    try:
        tier = in_process_tier(folder)(
            folder,
            base_dir=settings.base_model_dir,
            threads=settings.threads,
            cache_size=settings.cache_size,
        )
    except ArtifactError as exc:
        return TierChoice(None, f"{RULES_ONLY} (model unusable: {exc})")
    return TierChoice(tier, None)


def in_process_tier(folder: Path) -> type[MemoTier[Any]]:
    """The tier that serves ``folder`` in-process: its card's kind picks embedding or
    generative (causal)."""
    return CausalTier if read_card(folder).kind == CAUSAL else EmbeddingTier


def http_tier(
    settings: LearnedSettings, secrets: SecretsSettings, folder: Path | None = None
) -> HttpTier:
    """The ``openai`` backend: labels, temperature and version from the model folder's card
    (the weights are on the server), else from ``learned.http``."""
    http = settings.http
    folder = folder or settings.model_dir
    if folder is not None:
        card = read_card(folder, (CARD, LABELS))
        check_prompt_version(card)
        labels = read_labels(folder)
        has_calibration = (folder / CALIBRATION).is_file()
        temperature = read_temperature(folder) if has_calibration else http.temperature
        version = card.version
    elif http.labels and http.model:
        labels, temperature, version = tuple(http.labels), http.temperature, http.model
    else:
        raise ArtifactError(
            "learned.backend=openai needs learned.model_dir (card and labels.json) or both "
            "learned.http.model and learned.http.labels"
        )
    return HttpTier(
        http.url,
        http.model or version,
        labels,
        version=version,
        temperature=temperature,
        guided=http.guided,
        timeout_seconds=http.timeout_seconds,
        api_key=_api_key(http.api_key_secret, secrets),
        max_tokens=http.max_tokens,
        top_logprobs=http.top_logprobs,
        cache_size=settings.cache_size,
        failure_threshold=http.failure_threshold,
        cooldown_seconds=http.cooldown_seconds,
    )


def _api_key(name: str | None, settings: SecretsSettings) -> Callable[[], str] | None:
    """Reads the key on each call (the provider caches it), so a rotated key needs no
    restart; a missing one surfaces as ``model_error`` on the request, never at start-up."""
    if name is None:
        return None
    from llama_mapper.secrets import provider_from_settings

    provider = provider_from_settings(settings)
    return lambda: provider.get(name).value
