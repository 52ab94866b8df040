"""A detector pack compiled into lookup tables for the rules engine."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from llama_mapper.adapters.scales import SCALES
from llama_mapper.taxonomy.normalize import normalize_label, strip_prefixes

DETECTOR_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class PackError(ValueError):
    """A pack cannot be used at all (as opposed to lint findings, which are advisory)."""


@dataclass(frozen=True)
class DetectorPack:
    """How one detector's labels map to canonical labels.

    ``maps`` keeps the author's spelling (exact matches, and what ``detectors fix``
    rewrites); the normalized index is derived so that vendor spelling drift still maps.
    """

    detector: str
    version: str
    vendor: str
    maps: Mapping[str, tuple[str, ...]]
    adapter: str = "generic"
    score_scale: str = "probability"
    threshold: float = 0.0
    thresholds: Mapping[str, float] = field(default_factory=dict)
    strip_prefixes: tuple[str, ...] = ()
    description: str = ""
    _normalized: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _label_thresholds: dict[str, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not DETECTOR_NAME.match(self.detector):
            raise PackError(f"invalid detector name {self.detector!r}")
        if self.score_scale not in SCALES:
            raise PackError(f"{self.detector}: unknown score_scale {self.score_scale!r}")
        for value in (self.threshold, *self.thresholds.values()):
            if not 0.0 <= value <= 1.0:
                raise PackError(f"{self.detector}: thresholds must lie in [0, 1]")
        prefixes = tuple(normalize_label(p) + "_" for p in self.strip_prefixes)
        object.__setattr__(self, "strip_prefixes", prefixes)
        normalized: dict[str, tuple[str, ...]] = {}
        for key, targets in self.maps.items():
            normalized.setdefault(self.normal_form(key), targets)
        object.__setattr__(self, "_normalized", normalized)
        object.__setattr__(
            self,
            "_label_thresholds",
            {self.normal_form(k): v for k, v in self.thresholds.items()},
        )

    @property
    def ref(self) -> str:
        return f"{self.detector}@{self.version}"

    def normal_form(self, label: str) -> str:
        return strip_prefixes(normalize_label(label), self.strip_prefixes)

    def lookup(self, label: str) -> tuple[tuple[str, ...], str] | None:
        """Targets for ``label`` and the method that found them (``exact``/``normalized``)."""
        targets = self.maps.get(label)
        if targets is not None:
            return targets, "exact"
        targets = self._normalized.get(self.normal_form(label))
        if targets is not None:
            return targets, "normalized"
        return None

    def label_threshold(self, label: str) -> float | None:
        """The pack's own threshold for this label, if it sets one."""
        if not self._label_thresholds:
            return None
        return self._label_thresholds.get(self.normal_form(label))

    def threshold_for(self, label: str) -> float:
        found = self.label_threshold(label)
        return self.threshold if found is None else found


@dataclass(frozen=True)
class PackSet:
    """All loaded packs, by detector name."""

    packs: Mapping[str, DetectorPack]

    @classmethod
    def of(cls, packs: Iterable[DetectorPack]) -> PackSet:
        by_name: dict[str, DetectorPack] = {}
        for pack in packs:
            if pack.detector in by_name:
                raise PackError(f"detector {pack.detector!r} has two packs")
            by_name[pack.detector] = pack
        return cls(by_name)

    def get(self, detector: str) -> DetectorPack | None:
        return self.packs.get(detector)

    def __iter__(self) -> Iterator[DetectorPack]:
        return iter(self.packs.values())

    def __len__(self) -> int:
        return len(self.packs)

    def names(self) -> list[str]:
        return sorted(self.packs)
