"""The pure rules: coverage methods, conflict strategies, decisions, redaction, breaker."""

from __future__ import annotations

import random

import pytest

from detector_orchestration.domain import coverage
from detector_orchestration.domain.conflicts import Strategy, resolve
from detector_orchestration.domain.decision import DecisionRules, decide
from detector_orchestration.domain.labels import matches, severity_rank
from detector_orchestration.domain.model import Coverage, Finding, TextSpan
from detector_orchestration.domain.redaction import redact
from detector_orchestration.executor.backoff import Backoff
from detector_orchestration.executor.deadline import Deadline
from llama_mapper.resilience.breaker import BreakerState, CircuitBreaker

FULL = Coverage("required_set", 1.0, 1.0)


def test_required_set_counts_only_required_successes() -> None:
    result = coverage.required_set(["a", "b", "c"], ["a", "c", "optional"])
    assert (result.achieved, result.missing) == (2 / 3, ("b",))
    assert coverage.required_set([], ["x"]).achieved == 1.0


def test_weighted_coverage_uses_weights() -> None:
    result = coverage.weighted(["a", "b"], ["a"], {"a": 3, "b": 1})
    assert result.achieved == 0.75
    assert result.missing == ("b",)
    limited = coverage.with_minimum(result, 0.7)
    assert limited.sufficient
    assert not coverage.with_minimum(result, 0.8).sufficient


def test_taxonomy_coverage_counts_categories() -> None:
    covers = {"pii": {"PII"}, "sec": {"SECRET"}, "jb": {"JAILBREAK"}}
    result = coverage.taxonomy(["PII", "SECRET", "JAILBREAK"], ["pii", "jb"], covers)
    assert (result.achieved, result.missing) == (2 / 3, ("SECRET",))


def _f(label: str, score: float, detector: str, span: tuple[int, int] | None = None) -> Finding:
    return Finding(label, score, detector, TextSpan(*span) if span else None)


FINDINGS = [
    _f("PII.Contact.Email", 0.9, "a", (0, 10)),
    _f("PII.Contact.Email", 0.6, "b", (2, 12)),
    _f("SECRET.Token", 0.4, "c", (5, 8)),
    _f("HARM.Toxic", 0.8, "a"),
]


def test_highest_confidence_merges_agreeing_findings() -> None:
    out = resolve(FINDINGS, Strategy.HIGHEST_CONFIDENCE, ran=["a", "b", "c"])
    email = next(f for f in out if f.label == "PII.Contact.Email")
    assert email.score == 0.9
    assert email.span == TextSpan(0, 12)
    assert email.detectors == ("a", "b")
    assert {f.label for f in out} == {"PII.Contact.Email", "SECRET.Token", "HARM.Toxic"}


def test_weighted_averages_over_every_detector_that_ran() -> None:
    out = resolve(FINDINGS, Strategy.WEIGHTED, ran=["a", "b", "c"], weights={"a": 2})
    scores = {f.label: round(f.score, 4) for f in out}
    assert scores["PII.Contact.Email"] == round((2 * 0.9 + 0.6) / 4, 4)
    assert scores["HARM.Toxic"] == round(2 * 0.8 / 4, 4)


def test_majority_needs_more_than_half() -> None:
    out = resolve(FINDINGS, Strategy.MAJORITY, ran=["a", "b", "c"])
    assert {f.label for f in out} == {"PII.Contact.Email"}
    assert out[0].score == pytest.approx(0.75)


def test_most_restrictive_keeps_the_most_severe_label_per_span() -> None:
    out = resolve(FINDINGS, Strategy.MOST_RESTRICTIVE, ran=["a", "b", "c"])
    spanned = [f for f in out if f.span is not None]
    assert [(f.label, f.score) for f in spanned] == [("SECRET.Token", 0.4)]
    custom = resolve(FINDINGS, Strategy.MOST_RESTRICTIVE, ran=["a"], severity=["PII.*", "SECRET.*"])
    assert [f.label for f in custom if f.span] == ["PII.Contact.Email"]


def test_label_patterns_and_severity() -> None:
    assert matches("PII.Contact.Email", "PII.*")
    assert matches("PII", "PII.*")
    assert not matches("PIIX.Y", "PII.*")
    assert matches("anything", "*")
    assert severity_rank("SECRET.X") < severity_rank("PII.X") < severity_rank("UNKNOWN.Z")


RULES = DecisionRules(
    block_labels=("SECRET.*",),
    redact_labels=("PII.*",),
    min_score=0.5,
    label_thresholds={"PII.Contact.Email": 0.95},
)


def test_decisions() -> None:
    email = _f("PII.Contact.Email", 0.97, "a", (0, 5))
    assert decide(RULES, [], FULL).decision.value == "allow"
    assert decide(RULES, [email], FULL).decision.value == "redact"
    weak = _f("PII.Contact.Email", 0.9, "a", (0, 5))  # below its own 0.95 threshold
    assert decide(RULES, [weak], FULL).decision.value == "allow"
    secret = _f("SECRET.Token", 0.6, "b")
    verdict = decide(RULES, [email, secret], FULL)
    assert verdict.decision.value == "block"
    assert verdict.reasons == ("block_label:SECRET.Token",)
    unlocated = _f("PII.Person.Name", 0.9, "a")
    assert decide(RULES, [unlocated], FULL).decision.value == "block"
    strict = DecisionRules(redact_labels=("PII.*",), block_on_partial_coverage=True)
    short = Coverage("required_set", 0.5, 1.0, ("x",))
    assert decide(strict, [], short).reasons == ("partial_coverage",)


def test_redaction_merges_overlaps_and_keeps_the_rest() -> None:
    text = "0123456789abcdef"
    findings = [_f("A", 1, "x", (2, 5)), _f("B", 1, "y", (4, 7)), _f("C", 1, "z", (10, 12))]
    assert redact(text, findings) == "01[REDACTED:A]789[REDACTED:C]cdef"
    assert redact(text, [_f("A", 1, "x", (14, 99))]) == "0123456789abcd[REDACTED:A]"
    assert redact(text, []) == text


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_half_open_allows_exactly_one_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, reset_after=10, clock=clock)
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_success()  # resets the count
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    clock.now += 10
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # everyone else while it is out
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.now += 10
    assert breaker.allow()
    breaker.release_probe()  # cancelled probe: the next caller may probe
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()


def test_backoff_is_jittered_and_capped() -> None:
    backoff = Backoff(base_s=0.1, cap_s=0.3)
    rng = random.Random(7)
    delays = [backoff.delay(n, rng) for n in (1, 2, 3, 4, 5) for _ in range(50)]
    assert all(0 <= d <= 0.3 for d in delays)
    assert len({round(d, 6) for d in delays}) > 100  # jitter spreads them


def test_deadline_caps_timeouts() -> None:
    clock = Clock()
    deadline = Deadline(1.0, clock=clock)
    assert deadline.cap(5.0) == 1.0
    clock.now += 0.75
    assert deadline.cap(0.1) == 0.1
    assert deadline.cap(5.0) == pytest.approx(0.25)
    clock.now += 1
    assert deadline.expired()
