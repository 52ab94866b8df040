"""Advisory checks on detector packs (``mapper detectors lint``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from llama_mapper.packs.model import DetectorPack
from llama_mapper.taxonomy.model import Taxonomy


@dataclass(frozen=True, slots=True)
class PackIssue:
    detector: str
    key: str
    problem: str
    severity: Literal["error", "warning"]
    target: str = ""

    def __str__(self) -> str:
        where = f"{self.detector}: {self.key!r}" if self.key else self.detector
        return f"{self.severity}: {where}: {self.problem}"


def lint_pack(
    pack: DetectorPack, taxonomy: Taxonomy, adapters: frozenset[str] = frozenset()
) -> list[PackIssue]:
    """Problems in ``pack``: invalid targets, ambiguous spellings, stray thresholds."""
    issues: list[PackIssue] = []

    def add(
        key: str, problem: str, severity: Literal["error", "warning"], target: str = ""
    ) -> None:
        issues.append(PackIssue(pack.detector, key, problem, severity, target))

    if adapters and pack.adapter != "generic" and pack.adapter not in adapters:
        add("", f"unknown adapter {pack.adapter!r}", "error")
    if not pack.maps:
        add("", "pack maps no labels", "error")
    seen: dict[str, tuple[str, tuple[str, ...]]] = {}
    for key, targets in pack.maps.items():
        if not targets:
            add(key, "maps to no canonical label", "error")
        for target in targets:
            if target in taxonomy:
                continue
            rolled = taxonomy.resolve(target)
            if rolled is None:
                add(key, f"target {target!r} is not a canonical label", "error", target)
            else:
                add(
                    key, f"target {target!r} is unknown; it rolls up to {rolled}", "warning", target
                )
        normal = pack.normal_form(key)
        previous = seen.get(normal)
        if previous is not None and previous[1] != targets:
            add(key, f"normalizes like {previous[0]!r} but maps differently", "error")
        seen.setdefault(normal, (key, targets))
    for key in pack.thresholds:
        if pack.normal_form(key) not in seen:
            add(key, "threshold for a label the pack does not map", "warning")
    return issues
