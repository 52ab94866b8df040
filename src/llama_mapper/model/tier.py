"""A trained mapper as the engine's learned tier: lazy, memoized, process-wide.

Starting a service must stay cheap (tests build hundreds, the CLI one per command), so
nothing heavy happens until the first label the rules cannot map. The loaded model is
shared by every tier in the process that names the same folders; answers are memoized per
``(detector, label)`` in each tier, whose version is fixed, so the memo is per model
version too. If torch or the model cannot be loaded the tier turns itself off and the
engine runs rules-only; :attr:`MemoTier.status` says why.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from llama_mapper.mapping.learned import Prediction
from llama_mapper.model.artifact import EMBEDDING, ArtifactError, ModelCard, read_card
from llama_mapper.model.memo import AnswerMemo

if TYPE_CHECKING:
    from llama_mapper.model.loaded import LoadedModel

State = Literal["available", "loaded", "failed"]
M = TypeVar("M")
_models: dict[tuple[str, Path, Path | None, int], Any] = {}
_models_lock = threading.Lock()


def shared(
    kind: str, folder: Path, base_dir: Path | None, threads: int, load: Callable[[], M]
) -> M:
    """One loaded model per ``(kind, folder, base, threads)`` and process."""
    key = (kind, folder.resolve(), base_dir.resolve() if base_dir else None, threads)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            model = load()
            _models[key] = model
        return model


def shared_model(folder: Path, base_dir: Path | None, threads: int) -> LoadedModel:
    """The embedding mapper of ``folder``, loaded once per process."""
    from llama_mapper.model.loaded import LoadedModel

    return shared(
        EMBEDDING, folder, base_dir, threads, lambda: LoadedModel.load(folder, base_dir, threads)
    )


class MemoTier(ABC, Generic[M]):
    """Lazy load, memo per ``(detector, label)`` and status, shared by both model kinds.

    A subclass says how to load its model (:meth:`open`) and how to rank one label
    (:meth:`ranked`); a load failure turns the tier off (the engine then runs rules-only).
    """

    def __init__(
        self,
        folder: Path,
        *,
        base_dir: Path | None = None,
        threads: int = 1,
        cache_size: int = 10_000,
        candidates: int = 3,
    ) -> None:
        self.folder = folder
        self.card: ModelCard = read_card(folder)
        self.version = self.card.version
        self._base_dir = base_dir
        self._threads = threads
        self._candidates = candidates
        self._memo = AnswerMemo(cache_size)
        self._model: M | None = None
        self.state: State = "available"
        self.error: str | None = None

    @property
    def hits(self) -> int:
        return self._memo.hits

    @property
    def misses(self) -> int:
        """Labels the model was asked about (not memoized yet)."""
        return self._memo.misses

    @property
    def status(self) -> str:
        if self.state == "failed":
            return f"rules-only ({self.version} failed to load: {self.error})"
        if self.state == "loaded":
            return f"ok ({self.version}, loaded)"
        return f"ok ({self.version}, loads on the first label the rules do not know)"

    @abstractmethod
    def open(self) -> M:
        """Load the model (called once, by :meth:`load`)."""

    @abstractmethod
    def ranked(self, detector: str, label: str) -> list[tuple[str, float]]:
        """Canonical labels for ``label`` from ``detector``, best first."""

    def load(self) -> M | None:
        """Load (once) the shared model; on failure record why and stay off."""
        if self._model is not None or self.state == "failed":
            return self._model
        try:
            self._model = self.open()
        except (ImportError, OSError, ArtifactError, RuntimeError, ValueError) as exc:
            self.state = "failed"
            # The exception type and the folder only: never an input.
            self.error = type(exc).__name__
            return None
        self.state = "loaded"
        return self._model

    def predict(self, detector: str, label: str) -> Prediction | None:
        key = (detector, label)
        cached = self._memo.get(key)
        if cached is not None:
            return cached
        ranked = self.ranked(detector, label)
        if not ranked:
            return None
        (best, confidence), *rest = ranked
        prediction = Prediction(best, round(confidence, 6), tuple(rest[: self._candidates]))
        self._memo.put(key, prediction)
        return prediction


class EmbeddingTier(MemoTier["LoadedModel"]):
    """A :class:`~llama_mapper.mapping.learned.LearnedTier` backed by an embedding mapper."""

    def open(self) -> LoadedModel:
        return shared_model(self.folder, self._base_dir, self._threads)

    def ranked(self, detector: str, label: str) -> list[tuple[str, float]]:
        return self.rank(label, detector)

    def rank(self, text: str, detector: str | None = None) -> list[tuple[str, float]]:
        """Canonical labels for ``text`` (from ``detector``, where the model reads it)."""
        model = self.load()
        if model is None:
            return []
        top = self._candidates + 1
        ranked = model.rank_pairs([(detector, text)], top) if detector else model.rank([text], top)
        return [(name, round(p, 6)) for name, p in ranked[0]]
