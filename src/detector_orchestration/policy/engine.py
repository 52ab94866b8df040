"""One decision per request from a bundle: its own rules, in-process Rego, or remote OPA."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from detector_orchestration.domain.decision import Verdict, decide
from detector_orchestration.domain.labels import matches_any
from detector_orchestration.domain.model import Coverage, Decision, Finding
from detector_orchestration.policy.model import PolicyBundle
from detector_orchestration.policy.opa import OpaClient, OpaUnavailable
from detector_orchestration.policy.rego import RegoError, RegoEvaluator, RegoResult


class PolicyEvaluationError(Exception):
    """The policy engine could not decide (bad Rego result, OPA down): the operator's
    problem, answered as 503 so the client may retry; no decision is invented."""


def decision_input(
    *,
    tenant_id: str,
    content_type: str,
    bundle: str,
    version: str,
    findings: Sequence[Finding],
    coverage: Coverage,
    statuses: Mapping[str, str],
) -> dict[str, Any]:
    """The documented Rego/OPA input: labels, scores, offsets and statuses; no content."""
    return {
        "tenant_id": tenant_id,
        "content_type": content_type,
        "policy": {"bundle": bundle, "version": version},
        "findings": [f.as_dict() for f in findings],
        "coverage": {**coverage.as_dict(), "sufficient": coverage.sufficient},
        "detectors": dict(statuses),
    }


class PolicyEngine:
    def __init__(self, opa: OpaClient | None = None) -> None:
        self.opa = opa
        self._rego: dict[str, RegoEvaluator] = {}

    def rego_for(self, module: str, query: str) -> RegoEvaluator:
        key = hashlib.sha256(f"{query}\0{module}".encode()).hexdigest()
        evaluator = self._rego.get(key)
        if evaluator is None:
            evaluator = RegoEvaluator(module, query)
            if len(self._rego) > 256:  # a bounded cache: bundles are few, versions many
                self._rego.clear()
            self._rego[key] = evaluator
        return evaluator

    async def decide(
        self,
        bundle: PolicyBundle,
        findings: Sequence[Finding],
        coverage: Coverage,
        doc: dict[str, Any],
    ) -> Verdict:
        rule = bundle.decision
        if rule.engine == "rules":
            return decide(rule.rules(), findings, coverage)
        try:
            if rule.engine == "rego":
                assert rule.rego is not None
                assert rule.rego.module is not None  # parse_bundle refuses module_file
                result = self.rego_for(rule.rego.module, rule.rego.query).evaluate(doc)
            else:
                if self.opa is None:
                    raise PolicyEvaluationError(
                        "bundle uses engine opa but policy.opa_url is not set"
                    )
                assert rule.opa is not None
                result = await self.opa.evaluate(rule.opa.path, doc)
        except (RegoError, OpaUnavailable) as exc:
            raise PolicyEvaluationError(f"policy engine {rule.engine}: {exc}") from None
        return _verdict(result, bundle, findings)


def _verdict(result: RegoResult, bundle: PolicyBundle, findings: Sequence[Finding]) -> Verdict:
    """A Rego/OPA ``redact`` redacts the located findings matching the bundle's redact
    labels (every located finding when it lists none); nothing located means block."""
    if result.decision is not Decision.REDACT:
        return Verdict(result.decision, result.reasons)
    patterns = bundle.decision.redact_labels
    located = [
        f
        for f in findings
        if f.span is not None and (not patterns or matches_any(f.label, patterns))
    ]
    if not located:
        return Verdict(Decision.BLOCK, (*result.reasons, "redact_without_spans"))
    return Verdict(Decision.REDACT, result.reasons, tuple(located))
