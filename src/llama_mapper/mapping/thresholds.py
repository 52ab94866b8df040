"""Operator threshold overrides, layered above the packs' own thresholds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from llama_mapper.packs.model import DetectorPack


@dataclass(frozen=True)
class ThresholdOverrides:
    """``detectors[name]`` replaces a pack's default; ``labels[name][vendor_label]`` one label's.

    Precedence, most specific first: override for the label, pack threshold for the label,
    override for the detector, pack default, the global default.
    """

    default: float = 0.5
    detectors: Mapping[str, float] = field(default_factory=dict)
    labels: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def threshold(self, detector: str, pack: DetectorPack | None, label: str) -> float:
        per_label = self.labels.get(detector)
        if per_label:
            if label in per_label:
                return per_label[label]
            if pack is not None:
                normal = pack.normal_form(label)
                for key, value in per_label.items():
                    if pack.normal_form(key) == normal:
                        return value
        own = pack.label_threshold(label) if pack is not None else None
        if own is not None:
            return own
        if detector in self.detectors:
            return self.detectors[detector]
        return pack.threshold if pack is not None else self.default
