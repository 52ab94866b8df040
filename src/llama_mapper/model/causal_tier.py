"""The generative mapper as the engine's learned tier (in process, LoRA merged on load).

Everything but the model is :class:`~llama_mapper.model.tier.MemoTier`'s: nothing loads
until the first label the rules do not know, answers are memoized per
``(detector, label)`` of this model version, and a failed load means rules-only. A card
tuned on another prompt version is refused when the tier is built, before any load.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from llama_mapper.model.artifact import CAUSAL, check_prompt_version
from llama_mapper.model.tier import MemoTier, shared

if TYPE_CHECKING:
    from llama_mapper.model.causal import CausalModel

#: Asked with this detector name when a caller has none (``detectors fix``' ranking).
ANY_DETECTOR = "unknown-detector"


class CausalTier(MemoTier["CausalModel"]):
    """A :class:`~llama_mapper.mapping.learned.LearnedTier` backed by a causal LM."""

    def __init__(
        self,
        folder: Path,
        *,
        base_dir: Path | None = None,
        threads: int = 1,
        cache_size: int = 10_000,
        candidates: int = 3,
    ) -> None:
        super().__init__(
            folder,
            base_dir=base_dir,
            threads=threads,
            cache_size=cache_size,
            candidates=candidates,
        )
        check_prompt_version(self.card)

    def open(self) -> CausalModel:
        from llama_mapper.model.causal import CausalModel

        folder, base, threads = self.folder, self._base_dir, self._threads
        load = lambda: CausalModel.load(folder, base, threads)  # noqa: E731
        return shared(CAUSAL, folder, base, threads, load)

    def ranked(self, detector: str, label: str) -> list[tuple[str, float]]:
        model = self.load()
        if model is None:
            return []
        top = model.rank_pairs([(detector, label)], self._candidates + 1)[0]
        return [(name, round(p, 6)) for name, p in top]

    def rank(self, text: str, detector: str = ANY_DETECTOR) -> list[tuple[str, float]]:
        """Canonical labels for ``text``, best first (``detectors fix`` asks this way)."""
        return self.ranked(detector, text)
