"""Prometheus metrics on an explicit registry.

Label values are drawn from closed sets (route templates, HTTP methods, mapping methods,
detector names that have a pack, canonical labels, a bounded set of tenants) so that
neither content nor cardinality can leak in through them: a Prometheus series is forever,
and a label value built from request data would both publish that data and let one client
blow up the time-series database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Literal, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from llama_mapper.catalog import Catalog

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OTHER_DETECTOR = "unregistered"
OTHER_TENANT = "other"
UNKNOWN_LABEL = "OTHER.Unknown"
UNMATCHED_ROUTE = "unmatched"
OTHER_METHOD = "OTHER"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Mapping is sub-millisecond when warm and the learned tier can take a second or two; the
#: buckets resolve both ends (0.5 ms .. 2 s) without costing more than a dozen series.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
DEFAULT_BACKENDS = ("redis", "database", "secrets")
#: Provenance methods that mean "a vendor label became a canonical finding". ``empty`` and
#: ``threshold`` produce OTHER.Safe (no finding) and ``unmapped`` is counted separately.
FOUND_METHODS = frozenset({"exact", "normalized", "alias", "model"})

RateLimitOutcome = Literal["allowed", "limited", "degraded_open", "degraded_closed"]
IdempotencyOutcome = Literal["started", "replayed", "mismatch", "in_flight", "unavailable"]
RATELIMIT_OUTCOMES: tuple[str, ...] = get_args(RateLimitOutcome)
#: The HTTP learned tier's outcomes (``llama_mapper.model.http_tier.Outcome``).
MODEL_CALL_OUTCOMES = ("ok", "timeout", "error", "invalid_answer", "circuit_open")
IDEMPOTENCY_OUTCOMES: tuple[str, ...] = get_args(IdempotencyOutcome)


class Metrics:
    """Every metric the service exports, on one registry per app instance.

    A registry per instance (not the global default) keeps tests and several apps in one
    process from tripping over "duplicated timeseries" errors.
    """

    def __init__(
        self,
        known_detectors: Iterable[str] = (),
        *,
        known_labels: Iterable[str] | None = None,
        max_tenants: int = 100,
        backends: Iterable[str] = DEFAULT_BACKENDS,
        namespace: str = "mapper",
    ) -> None:
        #: Metric name prefix: ``mapper`` here; a service reusing these metrics (orch)
        #: passes its own so its series never mix with the mapper's.
        self.namespace = namespace
        self.registry = CollectorRegistry()
        self.known_detectors = frozenset(known_detectors)
        #: ``None`` turns the per-tenant label counter off: without the taxonomy every
        #: label would read as OTHER.Unknown, which is worse than no metric.
        self.known_labels = None if known_labels is None else frozenset(known_labels)
        self.max_tenants = max_tenants
        self.backends = frozenset(backends)
        self._tenants: set[str] = set()
        self._tenant_lock = threading.Lock()
        self.legacy_requests = Counter(
            f"{namespace}_legacy_requests",
            "Requests that used the deprecated DetectorRequest shape.",
            registry=self.registry,
        )
        self.mapped_labels = Counter(
            f"{namespace}_mapped_labels",
            "Canonical labels returned, by the method that found them.",
            ["method"],
            registry=self.registry,
        )
        self.unmapped_labels = Counter(
            f"{namespace}_unmapped_labels",
            "Vendor labels no tier could map, by detector.",
            ["detector"],
            registry=self.registry,
        )
        self.responses = Counter(
            f"{namespace}_responses",
            "Mapping responses by route and outcome.",
            ["route", "outcome"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            f"{namespace}_http_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            f"{namespace}_http_request_duration_seconds",
            "Time from the first byte in to the last byte out, by route template and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ratelimit_decisions = Counter(
            f"{namespace}_ratelimit_decisions",
            "Rate-limit decisions; degraded_* means the limiter backend was unreachable.",
            ["outcome"],
            registry=self.registry,
        )
        self.idempotency_outcomes = Counter(
            f"{namespace}_idempotency_outcomes",
            "What an Idempotency-Key did to a request.",
            ["outcome"],
            registry=self.registry,
        )
        self.backend_up = Gauge(
            f"{namespace}_backend_up",
            "1 when the backend answered its last check, 0 when it did not.",
            ["backend"],
            registry=self.registry,
        )
        self.labels_by_tenant = Counter(
            f"{namespace}_labels_by_tenant",
            f"Canonical labels returned per tenant; tenants beyond the first {max_tenants} "
            f'seen are counted as tenant="{OTHER_TENANT}".',
            ["tenant", "label"],
            registry=self.registry,
        )
        self.findings = Counter(
            f"{namespace}_findings",
            'Vendor findings by detector; mapped="no" ones fell through every tier. '
            "Unknown-label ratio: no / (yes + no).",
            ["detector", "mapped"],
            registry=self.registry,
        )
        self.model_calls = Counter(
            f"{namespace}_model_calls",
            "Learned-tier calls to a model server, by outcome: ok, timeout, error, "
            "invalid_answer (an answer outside the valid labels), circuit_open (skipped).",
            ["outcome"],
            registry=self.registry,
        )
        self.model_latency = Histogram(
            f"{namespace}_model_call_duration_seconds",
            "Time a learned-tier call to the model server took, by outcome.",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Zero-valued series from the start, so rate() and ratios work before the first event.
        # The children are kept: looking a child up by label costs more than the increment,
        # and these two are counted on every protected request.
        self._ratelimit_children = {
            o: self.ratelimit_decisions.labels(o) for o in RATELIMIT_OUTCOMES
        }
        self._idempotency_children = {
            o: self.idempotency_outcomes.labels(o) for o in IDEMPOTENCY_OUTCOMES
        }
        self._model_children = {
            o: (self.model_calls.labels(o), self.model_latency.labels(o))
            for o in MODEL_CALL_OUTCOMES
        }

    @classmethod
    def for_catalog(cls, catalog: Catalog, **kwargs: Any) -> Metrics:
        """Metrics bounded by the reference data: its detector packs and taxonomy labels."""
        return cls(catalog.packs.names(), known_labels=catalog.taxonomy, **kwargs)

    # -- closed sets -------------------------------------------------------------------

    def detector_label(self, detector: str) -> str:
        return detector if detector in self.known_detectors else OTHER_DETECTOR

    def label_label(self, label: str) -> str:
        known = self.known_labels
        return label if known is not None and label in known else UNKNOWN_LABEL

    def tenant_label(self, tenant: str) -> str:
        """The first ``max_tenants`` tenants keep their own series; the rest share one."""
        if tenant in self._tenants:
            return tenant
        with self._tenant_lock:
            if tenant in self._tenants:
                return tenant
            if len(self._tenants) < self.max_tenants:
                self._tenants.add(tenant)
                return tenant
        return OTHER_TENANT

    # -- recording ---------------------------------------------------------------------

    def observe_mapping(self, route: str, response: Mapping[str, Any]) -> None:
        self.responses.labels(route, "ok").inc()
        provenance = response["provenance"]
        found = 0
        for method in provenance["method"].values():
            self.mapped_labels.labels(method).inc()
            found += method in FOUND_METHODS
        detector = self.detector_label(provenance["detector"])
        unmapped = len(provenance["unmapped_labels"])
        if unmapped:
            self.unmapped_labels.labels(detector).inc(unmapped)
            self.findings.labels(detector, "no").inc(unmapped)
        if found:
            self.findings.labels(detector, "yes").inc(found)
        if self.known_labels is not None:
            tenant = self.tenant_label(str(provenance["tenant_id"]))
            for label in response["taxonomy"]:
                self.labels_by_tenant.labels(tenant, self.label_label(label)).inc()

    def observe_model_call(self, outcome: str, seconds: float) -> None:
        """One learned-tier call to a model server (the HTTP backend's observer)."""
        children = self._model_children.get(outcome)
        if children is None:
            raise ValueError(f"unknown model-call outcome {outcome!r}")
        children[0].inc()
        children[1].observe(seconds)

    def observe_error(self, route: str, error_code: str) -> None:
        self.responses.labels(route, error_code.lower()).inc()

    def observe_http(self, route: str, method: str, status: int, seconds: float) -> None:
        method = method if method in HTTP_METHODS else OTHER_METHOD
        self.http_requests.labels(route, method, str(status)).inc()
        self.http_latency.labels(route, method).observe(seconds)

    def observe_ratelimit(self, outcome: RateLimitOutcome) -> None:
        child = self._ratelimit_children.get(outcome)
        if child is None:
            raise ValueError(f"unknown rate-limit outcome {outcome!r}")
        child.inc()

    def observe_idempotency(self, outcome: IdempotencyOutcome) -> None:
        child = self._idempotency_children.get(outcome)
        if child is None:
            raise ValueError(f"unknown idempotency outcome {outcome!r}")
        child.inc()

    def set_backend(self, name: str, up: bool) -> None:
        """Record a backend check; an undeclared backend name is a programming error."""
        if name not in self.backends:
            raise ValueError(f"unknown backend {name!r}; declared: {sorted(self.backends)}")
        self.backend_up.labels(name).set(1 if up else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request by route template (pure ASGI, no body access).

    The template comes from ``scope["route"]``, which Starlette's router stores in the
    shared scope when it matches; requests answered before routing (edge rejections) are
    matched against the app's routes afterwards, and anything else is ``unmatched``. The
    raw path is never used: ``/map/<anything>`` from a scanner must not mint series.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # Also on an exception escaping to the server, which answers 500.
            self.metrics.observe_http(
                route_template(scope), scope["method"], status, time.perf_counter() - started
            )


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return _match_route(scope)


def _match_route(scope: Scope) -> str:
    from starlette.routing import Match

    routes = getattr(scope.get("app"), "routes", None) or ()
    partial = UNMATCHED_ROUTE
    for candidate in routes:
        matches = getattr(candidate, "matches", None)
        path = getattr(candidate, "path", None)
        if matches is None or not isinstance(path, str):
            continue
        try:
            match, _ = matches(scope)
        except Exception:  # noqa: S112 - a metrics lookup must never fail a request
            continue
        if match is Match.FULL:
            return path
        if match is Match.PARTIAL and partial == UNMATCHED_ROUTE:
            partial = path
    return partial
