"""orch's own series, on the same registry as the shared HTTP/rate-limit/idempotency ones.

Label values come from closed sets: detector names that are built in or registered (the
registry is operator-controlled and names are validated), run statuses, decisions, cache
outcomes. Nothing from a request body ever becomes a label.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

from detector_orchestration.executor.runner import DetectorRun, RunStatus
from llama_mapper.observability.metrics import Metrics

OTHER_DETECTOR = "unregistered"
JOB_EVENTS = ("submitted", "started", "reclaimed", "succeeded", "failed", "cancelled")
DETECTOR_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class OrchMetrics:
    def __init__(self, shared: Metrics, known_detector: Callable[[str], bool]) -> None:
        self.shared = shared
        self.known_detector = known_detector
        registry = shared.registry
        self.detector_runs = Counter(
            "orch_detector_runs",
            "Detector runs by detector and final status.",
            ["detector", "status"],
            registry=registry,
        )
        self.detector_latency = Histogram(
            "orch_detector_run_duration_seconds",
            "Wall time of a detector run, retries included.",
            ["detector"],
            buckets=DETECTOR_BUCKETS,
            registry=registry,
        )
        self.decisions = Counter(
            "orch_decisions", "Orchestration decisions.", ["decision"], registry=registry
        )
        self.partial_coverage = Counter(
            "orch_partial_coverage",
            "Answers below the policy's minimum coverage (206).",
            registry=registry,
        )
        self.cache = Counter(
            "orch_cache_lookups", "Result cache outcomes.", ["outcome"], registry=registry
        )
        self.errors = Counter(
            "orch_errors",
            "Orchestrations answered with an error, by code.",
            ["code"],
            registry=registry,
        )
        self.jobs = Counter(
            "orch_jobs",
            "Async job events: submitted, started, reclaimed, succeeded, failed, cancelled.",
            ["event"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "orch_jobs_queue_depth",
            "Jobs waiting or being worked on, by priority (as last seen by this process).",
            ["priority"],
            registry=registry,
        )
        self.job_wait = Histogram(
            "orch_job_wait_seconds",
            "Time from submission to a job's first start.",
            buckets=(0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0),
            registry=registry,
        )
        self.webhooks = Counter(
            "orch_webhook_deliveries",
            "Webhook attempts by outcome: delivered, retry, failed.",
            ["outcome"],
            registry=registry,
        )
        for event in JOB_EVENTS:
            self.jobs.labels(event)
        for outcome in ("delivered", "retry", "failed"):
            self.webhooks.labels(outcome)
        for status in RunStatus:
            self.detector_runs.labels(OTHER_DETECTOR, status.value)
        for outcome in ("hit", "miss", "bypass", "off"):
            self.cache.labels(outcome)

    def set_depth(self, depth: dict[str, int]) -> None:
        for priority, count in depth.items():
            self.queue_depth.labels(priority).set(count)

    def detector_label(self, name: str) -> str:
        return name if self.known_detector(name) else OTHER_DETECTOR

    def observe_run(self, run: DetectorRun) -> None:
        name = self.detector_label(run.name)
        self.detector_runs.labels(name, run.status.value).inc()
        self.detector_latency.labels(name).observe(run.latency_ms / 1000)
