"""How much of what the policy requires actually ran.

Coverage is computed against the policy's *required* detectors (or categories), before any
health filtering: a required detector skipped because its circuit is open counts as
missing, exactly like one that failed. Optional detectors never add coverage.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from detector_orchestration.domain.model import Coverage


def required_set(required: Collection[str], succeeded: Collection[str]) -> Coverage:
    """Fraction of required detectors that succeeded; 1.0 when nothing is required."""
    missing = tuple(sorted(set(required) - set(succeeded)))
    achieved = 1.0 if not required else (len(set(required)) - len(missing)) / len(set(required))
    return Coverage("required_set", achieved, 1.0, missing)


def weighted(
    required: Collection[str], succeeded: Collection[str], weights: Mapping[str, float]
) -> Coverage:
    """Share of the required detectors' total weight (default weight 1) that succeeded."""
    names = set(required)
    missing = tuple(sorted(names - set(succeeded)))
    total = sum(weights.get(name, 1.0) for name in names)
    got = sum(weights.get(name, 1.0) for name in names - set(missing))
    return Coverage("weighted", 1.0 if total == 0 else got / total, 1.0, missing)


def taxonomy(
    categories: Collection[str],
    succeeded: Collection[str],
    covers: Mapping[str, Collection[str]],
) -> Coverage:
    """Fraction of the required taxonomy categories (``PII``, ``SECRET``...) that at least
    one succeeded detector can report. ``missing`` names the uncovered categories."""
    wanted = set(categories)
    covered = {category for name in succeeded for category in covers.get(name, ())}
    missing = tuple(sorted(wanted - covered))
    achieved = 1.0 if not wanted else (len(wanted) - len(missing)) / len(wanted)
    return Coverage("taxonomy", achieved, 1.0, missing)


def with_minimum(coverage: Coverage, minimum: float) -> Coverage:
    return Coverage(coverage.method, coverage.achieved, minimum, coverage.missing)
