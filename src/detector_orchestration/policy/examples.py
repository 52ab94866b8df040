"""Checking a bundle's worked ``examples`` (``orch policy test``): each example's findings
and coverage must produce its expected decision under the bundle's own engine."""

from __future__ import annotations

from dataclasses import dataclass

from detector_orchestration.domain.conflicts import resolve
from detector_orchestration.domain.model import Coverage, Finding, TextSpan
from detector_orchestration.policy.engine import PolicyEngine, PolicyEvaluationError, decision_input
from detector_orchestration.policy.model import Example, PolicyBundle


@dataclass(frozen=True)
class ExampleResult:
    bundle: str
    example: str
    expected: str
    got: str
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and self.expected == self.got


def _findings(example: Example) -> list[Finding]:
    return [
        Finding(
            f.label,
            f.score,
            f.detector,
            TextSpan(f.span.start, f.span.end) if f.span is not None else None,
        )
        for f in example.findings
    ]


async def run_examples(bundle: PolicyBundle, engine: PolicyEngine) -> list[ExampleResult]:
    results = []
    for example in bundle.examples:
        findings = _findings(example)
        ran = sorted({f.detector for f in findings}) or ["example"]
        resolved = resolve(
            findings,
            bundle.conflicts.strategy,
            ran=ran,
            weights=bundle.detectors.weights,
            severity=bundle.conflicts.severity_order,
        )
        coverage = Coverage(
            bundle.coverage.method, example.coverage_achieved, bundle.coverage.minimum, ()
        )
        doc = decision_input(
            tenant_id="example",
            content_type=bundle.content_types[0],
            bundle=bundle.name,
            version="example",
            findings=resolved,
            coverage=coverage,
            statuses={name: "ok" for name in ran},
        )
        try:
            verdict = await engine.decide(bundle, resolved, coverage, doc)
        except PolicyEvaluationError as exc:
            results.append(
                ExampleResult(bundle.name, example.name, example.expect, "error", str(exc))
            )
            continue
        results.append(
            ExampleResult(bundle.name, example.name, example.expect, verdict.decision.value)
        )
    return results
