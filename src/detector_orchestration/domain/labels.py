"""Matching canonical labels against policy patterns and ordering them by severity."""

from __future__ import annotations

from collections.abc import Sequence


def matches(label: str, pattern: str) -> bool:
    """``PII.*`` matches ``PII`` and everything under it; ``*`` matches all; else exact."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        family = pattern[:-2]
        return label == family or label.startswith(family + ".")
    return label == pattern


def matches_any(label: str, patterns: Sequence[str]) -> bool:
    return any(matches(label, pattern) for pattern in patterns)


#: Most severe first. A label's severity is the position of the first pattern it matches;
#: unmatched labels are the least severe. Policies may give their own order.
DEFAULT_SEVERITY: tuple[str, ...] = (
    "SECRET.*",
    "SECURITY.*",
    "JAILBREAK.*",
    "PROMPT_INJECTION.*",
    "HARM.*",
    "PII.*",
    "IP.*",
    "BIAS.*",
    "OTHER.*",
)


def severity_rank(label: str, order: Sequence[str] = DEFAULT_SEVERITY) -> int:
    """Lower is more severe."""
    for rank, pattern in enumerate(order):
        if matches(label, pattern):
            return rank
    return len(order)
