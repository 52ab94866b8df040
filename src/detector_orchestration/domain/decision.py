"""allow | redact | block from a bundle's decision rules (the ``rules`` engine).

A finding counts when its score reaches its threshold (the label's own, else the bundle's
``min_score``). Any counting finding whose label is a block label blocks. Otherwise any
counting redact-label finding redacts, but only if it has a span: a finding that cannot be
located cannot be redacted, so it blocks instead. Coverage below the minimum blocks when
the bundle says ``on_partial_coverage: block``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from detector_orchestration.domain.labels import matches, matches_any
from detector_orchestration.domain.model import Coverage, Decision, Finding


@dataclass(frozen=True)
class DecisionRules:
    block_labels: tuple[str, ...] = ()
    redact_labels: tuple[str, ...] = ()
    min_score: float = 0.5
    label_thresholds: Mapping[str, float] | None = None
    block_on_partial_coverage: bool = False

    def threshold(self, label: str) -> float:
        for pattern, value in (self.label_thresholds or {}).items():
            if matches(label, pattern):
                return value
        return self.min_score


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reasons: tuple[str, ...]
    #: The findings the decision rests on (redaction applies exactly these).
    acted_on: tuple[Finding, ...] = ()


def decide(rules: DecisionRules, findings: Sequence[Finding], coverage: Coverage) -> Verdict:
    counting = [f for f in findings if f.score >= rules.threshold(f.label)]
    blocking = [f for f in counting if matches_any(f.label, rules.block_labels)]
    if blocking:
        return Verdict(Decision.BLOCK, tuple(f"block_label:{f.label}" for f in blocking))
    if rules.block_on_partial_coverage and not coverage.sufficient:
        return Verdict(Decision.BLOCK, ("partial_coverage",))
    redacting = [f for f in counting if matches_any(f.label, rules.redact_labels)]
    unlocated = [f for f in redacting if f.span is None]
    if unlocated:
        return Verdict(
            Decision.BLOCK, tuple(f"unlocated_redact_label:{f.label}" for f in unlocated)
        )
    if redacting:
        reasons = tuple(sorted({f"redact_label:{f.label}" for f in redacting}))
        return Verdict(Decision.REDACT, reasons, tuple(redacting))
    return Verdict(Decision.ALLOW, ())
