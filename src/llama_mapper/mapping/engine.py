"""Deterministic, multi-label mapping of detector output onto the canonical taxonomy.

Pure: no I/O, no clock, no globals. Everything it needs is handed in, so the same engine
serves the API, the CLI batch runner and the benchmarks, and is trivially testable.

Order of tiers for each vendor label: the pack's exact key, the pack's normalized key,
the taxonomy's names and aliases, then the learned tier if one is plugged in. A label no
tier maps becomes ``OTHER.Unknown`` and is counted for ``detectors fix``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from llama_mapper.adapters.base import Signal
from llama_mapper.adapters.registry import AdapterRegistry
from llama_mapper.catalog import Catalog
from llama_mapper.mapping.learned import Fallback, LearnedThresholds, LearnedTier
from llama_mapper.mapping.thresholds import ThresholdOverrides
from llama_mapper.mapping.unmapped import NOT_A_LABEL, UnmappedLabels, label_shaped
from llama_mapper.packs.model import DetectorPack
from llama_mapper.taxonomy.model import SAFE, UNKNOWN
from llama_mapper.taxonomy.normalize import normalize_label

DEFAULT_THRESHOLDS = ThresholdOverrides()
#: How sure the engine is that a canonical label is right, by the method that found it.
METHOD_CONFIDENCE = {"exact": 1.0, "normalized": 0.99, "alias": 0.9, "empty": 1.0, "threshold": 1.0}


@dataclass(frozen=True)
class MappingResult:
    """The engine's answer; the API turns it into a ``MappingResponse``."""

    labels: tuple[str, ...]
    scores: Mapping[str, float]
    methods: Mapping[str, str]
    confidence: float
    frameworks: Mapping[str, tuple[str, ...]]
    notes: tuple[str, ...]
    detector_pack: str | None
    vendor: str | None
    model: str | None = None
    unmapped: tuple[str, ...] = ()
    candidates: Mapping[str, tuple[tuple[str, float], ...]] = field(default_factory=dict)
    #: Vendor label -> why the learned tier could not be asked (``model_timeout``…).
    fallbacks: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _Accumulator:
    scores: dict[str, float] = field(default_factory=dict)
    methods: dict[str, str] = field(default_factory=dict)
    confidences: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    candidates: dict[str, tuple[tuple[str, float], ...]] = field(default_factory=dict)
    fallbacks: dict[str, str] = field(default_factory=dict)
    dropped_max: float = -1.0

    def add(self, label: str, score: float, method: str, confidence: float) -> None:
        if score > self.scores.get(label, -1.0):
            self.scores[label] = score
            self.methods[label] = method
        self.confidences[label] = max(confidence, self.confidences.get(label, 0.0))


class MappingEngine:
    def __init__(
        self,
        catalog: Catalog,
        adapters: AdapterRegistry,
        *,
        learned: LearnedTier | None = None,
        learned_threshold: float = 0.8,
        unmapped: UnmappedLabels | None = None,
    ) -> None:
        self.catalog = catalog
        self.adapters = adapters
        self.learned = learned
        self.learned_threshold = learned_threshold
        self.unmapped = unmapped if unmapped is not None else UnmappedLabels()
        self._taxonomy = catalog.taxonomy

    def parse(self, detector: str, output: object) -> list[Signal]:
        """Native or generic parse of ``output`` (raises ``OutputShapeError``)."""
        pack = self.catalog.packs.get(detector)
        if pack is None:
            return self.adapters.parse(detector, output, "probability")
        return self.adapters.parse(pack.adapter, output, pack.score_scale)

    def map(
        self,
        detector: str,
        output: object,
        thresholds: ThresholdOverrides | None = None,
        learned_thresholds: LearnedThresholds | None = None,
    ) -> MappingResult:
        return self.map_signals(
            detector, self.parse(detector, output), thresholds, learned_thresholds
        )

    def map_signals(
        self,
        detector: str,
        signals: list[Signal],
        thresholds: ThresholdOverrides | None = None,
        learned_thresholds: LearnedThresholds | None = None,
    ) -> MappingResult:
        pack = self.catalog.packs.get(detector)
        limits = thresholds or DEFAULT_THRESHOLDS
        accept = (
            learned_thresholds.threshold(detector)
            if learned_thresholds is not None
            else self.learned_threshold
        )
        acc = _Accumulator()
        if pack is None:
            acc.notes.append("no detector pack: matched on taxonomy names and aliases only")
        for signal in signals:
            self._map_signal(detector, pack, signal, limits, accept, acc)
        return self._finish(pack, signals, acc)

    def _map_signal(
        self,
        detector: str,
        pack: DetectorPack | None,
        signal: Signal,
        limits: ThresholdOverrides,
        accept: float,
        acc: _Accumulator,
    ) -> None:
        score = 1.0 if signal.score is None else signal.score
        found = self._rules(pack, signal.label)
        below = score < limits.threshold(detector, pack, signal.label)
        if found is None:
            found = self._learned(detector, signal.label, accept, acc)
        if found is None:
            self.unmapped.record(detector, signal.label)
            if not below:
                acc.unmapped.append(signal.label if label_shaped(signal.label) else NOT_A_LABEL)
                acc.add(UNKNOWN, score, "unmapped", 0.0)
            return
        targets, method, confidence = found
        if below:
            if targets != (SAFE,):
                acc.dropped_max = max(acc.dropped_max, score)
            return
        for target in targets:
            acc.add(target, score, method, confidence)

    def _rules(
        self, pack: DetectorPack | None, label: str
    ) -> tuple[tuple[str, ...], str, float] | None:
        if pack is not None:
            hit = pack.lookup(label)
            if hit is not None:
                return hit[0], hit[1], METHOD_CONFIDENCE[hit[1]]
        canonical = self._taxonomy.lookup_alias(normalize_label(label))
        if canonical is not None:
            method = "exact" if canonical == label else "alias"
            return (canonical,), method, METHOD_CONFIDENCE[method]
        return None

    def _learned(
        self, detector: str, label: str, accept: float, acc: _Accumulator
    ) -> tuple[tuple[str, ...], str, float] | None:
        # Only label-shaped strings reach the model: content sent as a label is never fed
        # to it (nor memoized by it).
        if self.learned is None or not label_shaped(label):
            return None
        prediction = self.learned.predict(detector, label)
        if prediction is None:
            return None
        if isinstance(prediction, Fallback):
            acc.fallbacks[label] = prediction.reason
            return None
        canonical = self._taxonomy.resolve(prediction.label)
        if canonical is not None and canonical != UNKNOWN and prediction.confidence >= accept:
            return (canonical,), "model", prediction.confidence
        acc.candidates[label] = ((prediction.label, prediction.confidence), *prediction.candidates)
        return None

    def _finish(
        self, pack: DetectorPack | None, signals: list[Signal], acc: _Accumulator
    ) -> MappingResult:
        if not signals:
            acc.add(SAFE, 1.0, "empty", METHOD_CONFIDENCE["empty"])
            acc.notes.append("detector reported no findings")
        elif not acc.scores:
            safe_score = 1.0 - acc.dropped_max if acc.dropped_max >= 0 else 1.0
            acc.add(SAFE, round(safe_score, 6), "threshold", METHOD_CONFIDENCE["threshold"])
            acc.notes.append("every finding was below its threshold")
        elif SAFE in acc.scores and len(acc.scores) > 1:
            del acc.scores[SAFE]
            acc.notes.append("benign verdict overridden by findings above threshold")
        if acc.unmapped:
            acc.notes.append(f"{len(acc.unmapped)} vendor label(s) could not be mapped")
        scores = acc.scores
        if len(scores) == 1:
            labels: tuple[str, ...] = tuple(scores)
        else:
            labels = tuple(sorted(scores, key=lambda name: (-scores[name], name)))
        refs_for = self.catalog.frameworks.refs_for
        return MappingResult(
            labels=labels,
            scores={label: scores[label] for label in labels},
            methods={label: acc.methods[label] for label in labels},
            confidence=min([acc.confidences[label] for label in labels]),
            frameworks={label: refs_for(label, self._taxonomy) for label in labels},
            notes=tuple(acc.notes),
            detector_pack=pack.ref if pack else None,
            vendor=pack.vendor if pack else None,
            model=self.learned.version if self.learned else None,
            unmapped=tuple(acc.unmapped),
            candidates=acc.candidates,
            fallbacks=acc.fallbacks,
        )
