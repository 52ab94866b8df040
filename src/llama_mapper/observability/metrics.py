"""Prometheus metrics on an explicit registry.

Label values are drawn from closed sets (route names, mapping methods, detector names
that have a pack) so that neither content nor cardinality can leak in through them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest

OTHER_DETECTOR = "unregistered"


class Metrics:
    def __init__(self, known_detectors: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry()
        self.known_detectors = frozenset(known_detectors)
        self.legacy_requests = Counter(
            "mapper_legacy_requests",
            "Requests that used the deprecated DetectorRequest shape.",
            registry=self.registry,
        )
        self.mapped_labels = Counter(
            "mapper_mapped_labels",
            "Canonical labels returned, by the method that found them.",
            ["method"],
            registry=self.registry,
        )
        self.unmapped_labels = Counter(
            "mapper_unmapped_labels",
            "Vendor labels no tier could map, by detector.",
            ["detector"],
            registry=self.registry,
        )
        self.responses = Counter(
            "mapper_responses",
            "Mapping responses by route and outcome.",
            ["route", "outcome"],
            registry=self.registry,
        )

    def detector_label(self, detector: str) -> str:
        return detector if detector in self.known_detectors else OTHER_DETECTOR

    def observe_mapping(self, route: str, response: Mapping[str, Any]) -> None:
        self.responses.labels(route, "ok").inc()
        provenance = response["provenance"]
        for method in provenance["method"].values():
            self.mapped_labels.labels(method).inc()
        if provenance["unmapped_labels"]:
            detector = self.detector_label(provenance["detector"])
            self.unmapped_labels.labels(detector).inc(len(provenance["unmapped_labels"]))

    def observe_error(self, route: str, error_code: str) -> None:
        self.responses.labels(route, error_code.lower()).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
