"""Compliance framework controls and the canonical labels that evidence them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from llama_mapper.taxonomy.model import Taxonomy


class FrameworkError(ValueError):
    """The framework data is inconsistent."""


@dataclass(frozen=True, slots=True)
class Control:
    framework: str
    control_id: str
    title: str

    @property
    def ref(self) -> str:
        """The reference used in responses, e.g. ``SOC2:CC7.2``."""
        return f"{self.framework}:{self.control_id}"


@dataclass(frozen=True, slots=True)
class ControlMapping:
    control: Control
    rationale: str


@dataclass(frozen=True)
class Frameworks:
    """Controls per framework and, per canonical label, the controls it evidences."""

    version: str
    titles: Mapping[str, str]
    controls: Mapping[str, Control]
    mappings: Mapping[str, tuple[ControlMapping, ...]]
    _refs_cache: dict[str, tuple[str, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def check_against(self, taxonomy: Taxonomy) -> list[str]:
        """Problems that make these mappings unusable with ``taxonomy`` (empty when fine)."""
        problems = [
            f"mapping for unknown label {label}" for label in self.mappings if label not in taxonomy
        ]
        for label in taxonomy:
            if label.startswith("OTHER.Safe") or label.startswith("OTHER.Unknown"):
                continue
            if not self.controls_for(label, taxonomy):
                problems.append(f"label {label} maps to no control")
        return problems

    def controls_for(self, label: str, taxonomy: Taxonomy) -> tuple[ControlMapping, ...]:
        """Controls of ``label``, inherited from the nearest mapped ancestor if it has none."""
        for candidate in (label, *taxonomy.ancestors(label)):
            found = self.mappings.get(candidate)
            if found:
                return found
        return ()

    def refs_for(self, label: str, taxonomy: Taxonomy) -> tuple[str, ...]:
        """``FRAMEWORK:ID`` references for ``label`` (memoized; this is on the hot path)."""
        cached = self._refs_cache.get(label)
        if cached is None:
            cached = tuple(m.control.ref for m in self.controls_for(label, taxonomy))
            self._refs_cache[label] = cached
        return cached

    def by_control(self) -> dict[str, list[str]]:
        """Inverse index: control reference -> labels that evidence it."""
        index: dict[str, list[str]] = {}
        for label, mapped in self.mappings.items():
            for mapping in mapped:
                index.setdefault(mapping.control.ref, []).append(label)
        return index
