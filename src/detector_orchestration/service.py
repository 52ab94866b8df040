"""The orchestration use case shared by ``POST /orchestrate`` and ``orch run``.

resolve the policy -> plan detectors -> (cache) -> run them under one deadline -> hand each
native output to the mapper (and each span's vendor label) -> coverage against the
policy's required detectors -> resolve conflicts -> decide -> redact. No HTTP here.

The content lives only in this call's locals and in what the detectors receive: it is
never logged, counted, put in an error, stored, or used in a cache key except through a
keyed hash.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from detector_orchestration.detectors.base import DetectorOutput, Span
from detector_orchestration.domain import coverage as coverage_rules
from detector_orchestration.domain.conflicts import resolve
from detector_orchestration.domain.model import Coverage, Decision, Finding, TextSpan
from detector_orchestration.domain.redaction import redact
from detector_orchestration.errors import (
    AllDetectorsUnavailable,
    PolicyNotFound,
    PolicyUnavailable,
    RequiredDetectorExcluded,
    UnsupportedContentType,
)
from detector_orchestration.executor.cache import CacheKeys, ResultCache
from detector_orchestration.executor.deadline import Deadline
from detector_orchestration.executor.runner import DetectorRun, Executor, Planned, RunStatus
from detector_orchestration.mapper_client import Mapper
from detector_orchestration.policy.engine import PolicyEngine, PolicyEvaluationError, decision_input
from detector_orchestration.policy.model import PolicyBundle
from detector_orchestration.policy.source import PolicySource
from detector_orchestration.registry.catalog import DetectorCatalog
from detector_orchestration.schemas import OrchestrateRequest
from llama_mapper.errors import MapperError
from llama_mapper.observability.tracing import span as trace_span

PARTIAL_COVERAGE = "PARTIAL_COVERAGE"
#: Canonical outcome labels (OTHER.Safe, OTHER.Error...) describe a run, not a finding.
OUTCOME_FAMILY = "OTHER."

Recorder = Callable[[Sequence[tuple[object, dict[str, Any]]]], Awaitable[None]]


@dataclass
class Outcome:
    """One orchestration's answer; ``status`` is 200, or 206 for partial coverage."""

    body: dict[str, Any]
    status: int
    decision: Decision
    cache: str
    runs: list[DetectorRun] = field(default_factory=list)


@dataclass(frozen=True)
class OrchestratorConfig:
    deadline_s: float = 2.0
    default_bundle: str = "default"
    cache_ttl_s: int = 300
    cache_enabled: bool = True


class Orchestrator:
    def __init__(
        self,
        *,
        catalog: DetectorCatalog,
        policies: PolicySource,
        engine: PolicyEngine,
        executor: Executor,
        mapper: Mapper,
        config: OrchestratorConfig,
        cache: ResultCache | None = None,
        cache_keys: CacheKeys | None = None,
        pack_categories: Callable[[str], frozenset[str]] = lambda pack: frozenset(),
        record: Recorder | None = None,
    ) -> None:
        self.catalog = catalog
        self.policies = policies
        self.engine = engine
        self.executor = executor
        self.mapper = mapper
        self.config = config
        self.cache = cache
        self.cache_keys = cache_keys
        self.pack_categories = pack_categories
        self.record = record

    async def orchestrate(
        self, request: OrchestrateRequest, *, request_id: str | None = None
    ) -> Outcome:
        """Runs now, whatever ``processing_mode`` says: queueing an async request (and
        running it later through here) is the API's job queue (:mod:`.jobs`)."""
        started = time.perf_counter()
        request_id = request_id or uuid.uuid4().hex
        bundle_name = request.policy_bundle or self.config.default_bundle
        resolved = await self.policies.resolve(request.tenant_id, bundle_name)
        if resolved is None:
            raise PolicyNotFound(f"no policy bundle {bundle_name!r} for this tenant")
        bundle, version = resolved.bundle, resolved.version
        if request.content_type not in bundle.content_types:
            raise UnsupportedContentType(
                f"policy {bundle.name!r} accepts {', '.join(bundle.content_types)}"
            )
        required, optional = self._selection(bundle, request)
        available = await self.catalog.current()
        budget = (bundle.deadline_ms / 1000) if bundle.deadline_ms else self.config.deadline_s
        # One deadline for the whole request: resolving the policy already spent some.
        deadline = Deadline(budget - (time.perf_counter() - started))
        names = [*required, *optional]
        planned = [
            Planned(
                available[name].detector,
                bundle.detectors.timeouts_ms.get(name, 0) / 1000 or available[name].timeout_s,
                available[name].retries,
            )
            for name in names
            if name in available
        ]
        with trace_span("orch.detectors", detectors=len(planned)) as running:
            runs, cache_state = await self._run(request, bundle, version, names, planned, deadline)
            running.set(cache=cache_state, failed=sum(not run.ok for run in runs))
        by_name = {run.name: run for run in runs}
        runs = [
            by_name.get(name) or DetectorRun(name, RunStatus.NOT_REGISTERED, error="not registered")
            for name in names
        ]
        detected = time.perf_counter()
        if names and not any(run.ok for run in runs):
            raise AllDetectorsUnavailable(
                "no detector answered: " + ", ".join(f"{r.name} ({r.status.value})" for r in runs)
            )
        with trace_span("orch.mapping") as mapping_span:
            mapping, findings = await self._map(runs, request.tenant_id)
            mapping_span.set(findings=len(findings))
        mapped = time.perf_counter()
        succeeded = [run.name for run in runs if run.ok]
        coverage = self._coverage(bundle, required, succeeded, runs)
        resolved_findings = resolve(
            findings,
            bundle.conflicts.strategy,
            ran=succeeded,
            weights=bundle.detectors.weights,
            severity=bundle.conflicts.severity_order,
        )
        doc = decision_input(
            tenant_id=request.tenant_id,
            content_type=request.content_type,
            bundle=bundle.name,
            version=version,
            findings=resolved_findings,
            coverage=coverage,
            statuses={run.name: run.status.value for run in runs},
        )
        try:
            with trace_span("orch.decision", engine=bundle.decision.engine) as deciding:
                verdict = await self.engine.decide(bundle, resolved_findings, coverage, doc)
                deciding.set(decision=verdict.decision.value, coverage=coverage.achieved)
        except PolicyEvaluationError as exc:
            raise PolicyUnavailable(str(exc)) from None
        decided = time.perf_counter()
        body: dict[str, Any] = {
            "request_id": request_id,
            "decision": verdict.decision.value,
            "reasons": list(verdict.reasons),
            "findings": [f.as_dict() for f in resolved_findings],
            "redacted_content": (
                redact(request.content, verdict.acted_on)
                if verdict.decision is Decision.REDACT
                else None
            ),
            "detector_results": [run.as_dict() for run in runs],
            "coverage": coverage.as_dict(),
            "mapping": mapping,
            "policy": {"bundle": bundle.name, "version": version},
            "warnings": [],
            "timings": {
                "total_ms": _ms(started),
                "detectors_ms": round((detected - started) * 1000, 3),
                "mapping_ms": round((mapped - detected) * 1000, 3),
                "policy_ms": round((decided - mapped) * 1000, 3),
                "cache": cache_state,
            },
        }
        status = 200
        if not coverage.sufficient:
            status = 206
            body["warnings"].append(
                {
                    "code": PARTIAL_COVERAGE,
                    "message": f"coverage {coverage.achieved:.2f} is below the policy's "
                    f"minimum {coverage.required:.2f}; missing: {', '.join(coverage.missing)}",
                }
            )
        body["timings"]["total_ms"] = _ms(started)
        return Outcome(body, status, verdict.decision, cache_state, runs)

    # -- steps ------------------------------------------------------------------------

    @staticmethod
    def _selection(
        bundle: PolicyBundle, request: OrchestrateRequest
    ) -> tuple[list[str], list[str]]:
        excluded = set(request.excluded_detectors or ())
        required = list(
            dict.fromkeys([*bundle.detectors.required, *(request.required_detectors or ())])
        )
        blocked = sorted(excluded & set(required))
        if blocked:
            raise RequiredDetectorExcluded(
                f"required detectors cannot be excluded: {', '.join(blocked)}"
            )
        optional = [n for n in bundle.detectors.optional if n not in excluded and n not in required]
        return required, optional

    async def _run(
        self,
        request: OrchestrateRequest,
        bundle: PolicyBundle,
        version: str,
        names: list[str],
        planned: list[Planned],
        deadline: Deadline,
    ) -> tuple[list[DetectorRun], str]:
        use_cache = (
            self.config.cache_enabled
            and self.cache is not None
            and self.cache_keys is not None
            and bool(planned)
        )
        if not use_cache or request.priority == "critical":
            runs = await self.executor.run_all(
                planned, request.content, request.content_type, deadline
            )
            return runs, "bypass" if use_cache else "off"
        assert self.cache is not None
        assert self.cache_keys is not None
        key = self.cache_keys.key(
            tenant_id=request.tenant_id,
            bundle=bundle.name,
            policy_version=version,
            detectors=names,
            content=request.content,
            content_type=request.content_type,
        )
        cached = await self.cache.get(key)
        if cached is not None:
            decoded = _decode_runs(cached)
            if decoded is not None:
                return decoded, "hit"
        runs = await self.executor.run_all(planned, request.content, request.content_type, deadline)
        if runs and all(run.ok for run in runs) and len(runs) == len(names):
            await self.cache.put(key, _encode_runs(runs), self.config.cache_ttl_s)
        return runs, "miss"

    async def _map(
        self, runs: list[DetectorRun], tenant_id: str
    ) -> tuple[dict[str, Any], list[Finding]]:
        mapping: dict[str, Any] = {}
        findings: list[Finding] = []
        recorded: list[tuple[object, dict[str, Any]]] = []
        label_cache: dict[tuple[str, str], str | None] = {}
        for run in runs:
            if not run.ok or run.output is None or run.pack is None:
                continue
            try:
                response = await self.mapper.map(run.pack, run.output.output, tenant_id)
                span_labels = await self._span_labels(
                    run.pack, run.output.spans, tenant_id, label_cache
                )
            except MapperError as exc:
                if exc.status >= 500:
                    raise
                run.status, run.error = (
                    RunStatus.ERROR,
                    f"mapper refused the output ({exc.error_code})",
                )
                continue
            mapping[run.name] = response
            if not run.cached:
                recorded.append((run.output.output, response))
            findings.extend(_findings(run, response, span_labels))
        if recorded and self.record is not None:
            await self.record(recorded)
        return mapping, findings

    async def _span_labels(
        self,
        pack: str,
        spans: Sequence[Span],
        tenant_id: str,
        cache: dict[tuple[str, str], str | None],
    ) -> dict[str, str | None]:
        """Each distinct vendor label of the spans, mapped by the mapper's pack."""
        out: dict[str, str | None] = {}
        for span in spans:
            key = (pack, span.label)
            if key not in cache:
                response = await self.mapper.map(pack, span.label, tenant_id)
                labels = [x for x in response["taxonomy"] if not x.startswith(OUTCOME_FAMILY)]
                cache[key] = labels[0] if labels else None
            out[span.label] = cache[key]
        return out

    def _coverage(
        self,
        bundle: PolicyBundle,
        required: list[str],
        succeeded: list[str],
        runs: list[DetectorRun],
    ) -> Coverage:
        rule = bundle.coverage
        if rule.method == "weighted":
            result = coverage_rules.weighted(required, succeeded, bundle.detectors.weights)
        elif rule.method == "taxonomy":
            packs = {run.name: run.pack for run in runs if run.pack}
            covers = {
                name: self.pack_categories(packs[name]) for name in succeeded if name in packs
            }
            result = coverage_rules.taxonomy(rule.categories, succeeded, covers)
        else:
            result = coverage_rules.required_set(required, succeeded)
        return coverage_rules.with_minimum(result, rule.minimum)


def _findings(
    run: DetectorRun, response: Mapping[str, Any], span_labels: Mapping[str, str | None]
) -> list[Finding]:
    assert run.output is not None
    out: list[Finding] = []
    spanned: set[str] = set()
    scores: Mapping[str, float] = response.get("scores", {})
    for span in run.output.spans:
        label = span_labels.get(span.label)
        if label is None:
            continue
        spanned.add(label)
        score = span.score if span.score is not None else float(scores.get(label, 1.0))
        out.append(Finding(label, score, run.name, TextSpan(span.start, span.end)))
    for label in response.get("taxonomy", ()):
        if label.startswith(OUTCOME_FAMILY) or label in spanned:
            continue
        out.append(Finding(label, float(scores.get(label, 1.0)), run.name))
    return out


def _encode_runs(runs: list[DetectorRun]) -> bytes:
    return orjson.dumps(
        [
            {
                "name": run.name,
                "pack": run.pack,
                "version": run.version,
                "output": run.output.output if run.output else None,
                "spans": [
                    [s.start, s.end, s.label, s.score]
                    for s in (run.output.spans if run.output else ())
                ],
            }
            for run in runs
        ]
    )


def _decode_runs(data: bytes) -> list[DetectorRun] | None:
    try:
        items = orjson.loads(data)
        return [
            DetectorRun(
                item["name"],
                RunStatus.OK,
                output=DetectorOutput(item["output"], tuple(Span(*s) for s in item["spans"])),
                version=item["version"],
                pack=item["pack"],
                cached=True,
            )
            for item in items
        ]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None  # an unreadable entry is a miss


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
