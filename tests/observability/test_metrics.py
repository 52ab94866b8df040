"""Metrics: bounded label sets, HTTP middleware by route template, mapping counters."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.responses import PlainTextResponse, Response

from llama_mapper.api.middleware import EdgeMiddleware
from llama_mapper.catalog import Catalog
from llama_mapper.observability.metrics import (
    IDEMPOTENCY_OUTCOMES,
    LATENCY_BUCKETS,
    RATELIMIT_OUTCOMES,
    Metrics,
    MetricsMiddleware,
)
from llama_mapper.service import MapperService


def value(metrics: Metrics, name: str, **labels: str) -> float:
    sample = metrics.registry.get_sample_value(name, labels)
    return 0.0 if sample is None else sample


def http_app(metrics: Metrics) -> FastAPI:
    app = FastAPI()

    @app.post("/map")
    async def map_route() -> Response:
        return PlainTextResponse("mapped")

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> Response:
        return PlainTextResponse(item_id)

    @app.get("/boom")
    async def boom() -> Response:
        raise RuntimeError("bug")

    app.add_middleware(EdgeMiddleware, max_body_bytes=64, json_routes=frozenset({"/map"}))
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


async def test_http_metrics_use_route_templates_and_closed_method_set() -> None:
    metrics = Metrics()
    transport = httpx.ASGITransport(app=http_app(metrics), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        for item_id in ("1", "2", "secret-looking-id"):
            assert (await http.get(f"/items/{item_id}")).status_code == 200
        assert (await http.post("/map", json={})).status_code == 200
        # Rejected by the edge middleware before routing: still the /map template.
        assert (
            await http.post("/map", content=b"x", headers={"content-type": "text/plain"})
        ).status_code == 415
        assert (await http.get("/no/such/path/123")).status_code == 404
        assert (await http.request("BREW", "/items/1")).status_code == 405
        assert (await http.get("/boom")).status_code == 500

    assert (
        value(
            metrics,
            "mapper_http_requests_total",
            route="/items/{item_id}",
            method="GET",
            status="200",
        )
        == 3
    )
    assert (
        value(metrics, "mapper_http_requests_total", route="/map", method="POST", status="200") == 1
    )
    assert (
        value(metrics, "mapper_http_requests_total", route="/map", method="POST", status="415") == 1
    )
    assert (
        value(metrics, "mapper_http_requests_total", route="unmatched", method="GET", status="404")
        == 1
    )
    assert (
        value(
            metrics,
            "mapper_http_requests_total",
            route="/items/{item_id}",
            method="OTHER",
            status="405",
        )
        == 1
    )
    assert (
        value(metrics, "mapper_http_requests_total", route="/boom", method="GET", status="500") == 1
    )
    assert (
        value(
            metrics,
            "mapper_http_request_duration_seconds_count",
            route="/items/{item_id}",
            method="GET",
        )
        == 3
    )
    rendered = metrics.render().decode()
    assert "secret-looking-id" not in rendered
    assert "/no/such/path" not in rendered
    assert 'le="0.0005"' in rendered
    assert 'le="2.0"' in rendered
    assert LATENCY_BUCKETS[0] == 0.0005
    assert LATENCY_BUCKETS[-1] == 2.0


async def test_middleware_ignores_lifespan_and_non_http() -> None:
    metrics = Metrics()
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await MetricsMiddleware(inner, metrics)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]
    assert "mapper_http_requests_total{" not in metrics.render().decode()


def mapping(
    tenant: str,
    labels: list[str],
    methods: dict[str, str],
    unmapped: tuple[str, ...] | list[str] = (),
    detector: str = "presidio",
) -> dict[str, Any]:
    return {
        "taxonomy": labels,
        "provenance": {
            "detector": detector,
            "tenant_id": tenant,
            "method": methods,
            "unmapped_labels": list(unmapped),
        },
    }


def test_labels_by_tenant_is_bounded() -> None:
    metrics = Metrics(
        ["presidio"], known_labels={"PII.Identifier.SSN", "OTHER.Unknown"}, max_tenants=2
    )
    for tenant in ("acme", "globex", "initech", "umbrella", "acme"):
        metrics.observe_mapping(
            "/map", mapping(tenant, ["PII.Identifier.SSN"], {"PII.Identifier.SSN": "exact"})
        )
    metrics.observe_mapping("/map", mapping("acme", ["Made.Up.Label"], {"Made.Up.Label": "model"}))
    ssn = "PII.Identifier.SSN"
    assert value(metrics, "mapper_labels_by_tenant_total", tenant="acme", label=ssn) == 2
    assert value(metrics, "mapper_labels_by_tenant_total", tenant="globex", label=ssn) == 1
    assert value(metrics, "mapper_labels_by_tenant_total", tenant="other", label=ssn) == 2
    assert (
        value(metrics, "mapper_labels_by_tenant_total", tenant="acme", label="OTHER.Unknown") == 1
    )
    rendered = metrics.render().decode()
    assert "initech" not in rendered
    assert "Made.Up.Label" not in rendered


def test_labels_by_tenant_off_without_taxonomy() -> None:
    metrics = Metrics(["presidio"])
    metrics.observe_mapping("/map", mapping("acme", ["PII.Identifier.SSN"], {"x": "exact"}))
    assert "mapper_labels_by_tenant_total{" not in metrics.render().decode()


def test_findings_give_an_unknown_label_ratio_per_detector(
    service: MapperService, catalog: Catalog
) -> None:
    metrics = Metrics.for_catalog(catalog)
    outputs: list[object] = ["US_SSN|ZODIAC_SIGN", "EMAIL_ADDRESS", "MOON_PHASE", []]
    for output in outputs:
        payload = service.parse_payload(
            {"detector": "presidio", "output": output, "tenant_id": "acme"}
        )
        metrics.observe_mapping("/map", service.map_payload(payload, route="/map"))
    assert value(metrics, "mapper_findings_total", detector="presidio", mapped="yes") == 2
    assert value(metrics, "mapper_findings_total", detector="presidio", mapped="no") == 2
    assert value(metrics, "mapper_unmapped_labels_total", detector="presidio") == 2
    assert value(metrics, "mapper_labels_by_tenant_total", tenant="acme", label="OTHER.Safe") == 1
    assert value(metrics, "mapper_responses_total", route="/map", outcome="ok") == 4
    # A detector without a pack is folded into one series.
    metrics.observe_mapping(
        "/map",
        mapping(
            "acme", ["OTHER.Unknown"], {"OTHER.Unknown": "unmapped"}, ["x"], detector="my-own-thing"
        ),
    )
    assert value(metrics, "mapper_findings_total", detector="unregistered", mapped="no") == 1
    assert "my-own-thing" not in metrics.render().decode()


def test_outcome_counters_start_at_zero_and_reject_unknown_values() -> None:
    metrics = Metrics()
    for outcome in RATELIMIT_OUTCOMES:
        assert (
            metrics.registry.get_sample_value(
                "mapper_ratelimit_decisions_total", {"outcome": outcome}
            )
            == 0
        )
    for outcome in IDEMPOTENCY_OUTCOMES:
        assert (
            metrics.registry.get_sample_value(
                "mapper_idempotency_outcomes_total", {"outcome": outcome}
            )
            == 0
        )
    metrics.observe_ratelimit("limited")
    metrics.observe_idempotency("replayed")
    assert value(metrics, "mapper_ratelimit_decisions_total", outcome="limited") == 1
    assert value(metrics, "mapper_idempotency_outcomes_total", outcome="replayed") == 1
    with pytest.raises(ValueError, match="rate-limit outcome"):
        metrics.observe_ratelimit("maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="idempotency outcome"):
        metrics.observe_idempotency("whatever")  # type: ignore[arg-type]


def test_backend_up_gauge_is_a_closed_set() -> None:
    metrics = Metrics(backends=["redis", "database"])
    metrics.set_backend("redis", False)
    metrics.set_backend("database", True)
    assert value(metrics, "mapper_backend_up", backend="redis") == 0
    assert metrics.registry.get_sample_value("mapper_backend_up", {"backend": "database"}) == 1
    with pytest.raises(ValueError, match="unknown backend"):
        metrics.set_backend("mongo", True)


def test_existing_interface_still_works() -> None:
    metrics = Metrics(["presidio"])
    metrics.observe_error("/map", "RAW_CONTENT_REJECTED")
    metrics.legacy_requests.inc()
    assert metrics.detector_label("presidio") == "presidio"
    assert metrics.detector_label("nope") == "unregistered"
    assert (
        value(metrics, "mapper_responses_total", route="/map", outcome="raw_content_rejected") == 1
    )
    assert value(metrics, "mapper_legacy_requests_total") == 1
