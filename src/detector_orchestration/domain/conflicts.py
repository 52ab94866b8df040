"""Resolving disagreement between detectors (documented in docs/orch.md).

Findings are grouped first: span findings whose spans overlap form one group, and findings
without a span are grouped by canonical label. Each strategy then decides per group:

- ``highest_confidence``: per label in the group, keep the highest-scoring finding.
- ``weighted``: per label, score = sum(weight x score) / sum(weight) over every detector
  that *ran successfully* (a detector that ran and stayed silent votes 0); kept when the
  combined score is > 0.
- ``majority``: per label, kept when more than half of the detectors that ran reported it;
  score = mean of the reporters' scores.
- ``most_restrictive``: only the most severe label of the group survives (severity order
  of canonical labels), with its highest score. Between spans this is the only strategy
  that drops a *different* label; the others only merge agreeing findings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from enum import StrEnum

from detector_orchestration.domain.labels import DEFAULT_SEVERITY, severity_rank
from detector_orchestration.domain.model import Finding, TextSpan


class Strategy(StrEnum):
    HIGHEST_CONFIDENCE = "highest_confidence"
    WEIGHTED = "weighted"
    MAJORITY = "majority"
    MOST_RESTRICTIVE = "most_restrictive"


def group(findings: Sequence[Finding]) -> list[list[Finding]]:
    """Overlapping-span clusters (sorted by start), then label groups of span-less ones."""
    spanned = sorted((f for f in findings if f.span is not None), key=_span_key)
    groups: list[list[Finding]] = []
    end = -1
    for finding in spanned:
        assert finding.span is not None
        if groups and finding.span.start < end:
            groups[-1].append(finding)
            end = max(end, finding.span.end)
        else:
            groups.append([finding])
            end = finding.span.end
    by_label: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        if finding.span is None:
            by_label[finding.label].append(finding)
    groups.extend(by_label[label] for label in sorted(by_label))
    return groups


def _span_key(finding: Finding) -> tuple[int, int, str]:
    assert finding.span is not None
    return (finding.span.start, finding.span.end, finding.label)


def resolve(
    findings: Sequence[Finding],
    strategy: Strategy,
    *,
    ran: Collection[str],
    weights: Mapping[str, float] | None = None,
    severity: Sequence[str] = DEFAULT_SEVERITY,
) -> list[Finding]:
    """One finding per surviving (group, label), ordered by position then label."""
    weights = weights or {}
    out: list[Finding] = []
    for members in group(findings):
        out.extend(_resolve_group(members, strategy, ran, weights, severity))
    return out


def _resolve_group(
    members: list[Finding],
    strategy: Strategy,
    ran: Collection[str],
    weights: Mapping[str, float],
    severity: Sequence[str],
) -> list[Finding]:
    by_label: dict[str, list[Finding]] = defaultdict(list)
    for finding in members:
        by_label[finding.label].append(finding)
    if strategy is Strategy.MOST_RESTRICTIVE:
        worst = min(by_label, key=lambda label: (severity_rank(label, severity), label))
        return [_merge(by_label[worst], max(f.score for f in by_label[worst]))]
    kept: list[Finding] = []
    voters = set(ran) or {f.detector for f in members}
    for label in sorted(by_label):
        same = by_label[label]
        best: dict[str, float] = {}  # each detector's best score for this label
        for finding in same:
            best[finding.detector] = max(best.get(finding.detector, 0.0), finding.score)
        if strategy is Strategy.HIGHEST_CONFIDENCE:
            kept.append(_merge(same, max(best.values())))
        elif strategy is Strategy.WEIGHTED:
            total = sum(weights.get(name, 1.0) for name in voters)
            score = sum(weights.get(name, 1.0) * s for name, s in best.items() if name in voters)
            combined = score / total if total else 0.0
            if combined > 0:
                kept.append(_merge(same, combined))
        elif len(best) * 2 > len(voters):  # majority
            kept.append(_merge(same, sum(best.values()) / len(best)))
    return kept


def _merge(same: list[Finding], score: float) -> Finding:
    """The agreeing findings as one: the union of their spans, the top scorer's name."""
    top = max(same, key=lambda f: (f.score, f.detector))
    spans = [f.span for f in same if f.span is not None]
    span = TextSpan(min(s.start for s in spans), max(s.end for s in spans)) if spans else None
    detectors = tuple(sorted({f.detector for f in same}))
    return Finding(top.label, min(1.0, score), top.detector, span, detectors)
