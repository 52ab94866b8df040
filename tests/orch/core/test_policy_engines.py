"""Decisions by the in-process Rego engine (regorus) and by a remote OPA over its REST
Data API (a local server speaking that API), plus the bundle examples and Rego tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.orch.core.conftest import bundle_yaml, fms_spec, submit_active
from tests.orch.core.servers import opa_app, serve

from detector_orchestration.domain.model import Coverage, Finding, TextSpan
from detector_orchestration.policy.engine import PolicyEngine, decision_input
from detector_orchestration.policy.examples import run_examples
from detector_orchestration.policy.model import PolicyError, load_bundle_file, parse_bundle
from detector_orchestration.policy.opa import OpaClient, OpaUnavailable
from detector_orchestration.policy.rego import RegoError, RegoEvaluator, interpret, run_tests
from detector_orchestration.policy.source import PACKAGED
from detector_orchestration.schemas import OrchestrateRequest

DATA = PACKAGED.parent
MODULE = (DATA / "rego" / "decision.rego").read_text()
EMAIL = Finding("PII.Contact.Email", 0.99, "a", TextSpan(0, 5))
FULL = Coverage("required_set", 1.0, 1.0)
SHORT = Coverage("required_set", 0.5, 1.0, ("b",))


def _doc(findings: list[Finding], coverage: Coverage = FULL) -> dict[str, object]:
    return decision_input(
        tenant_id="acme",
        content_type="text/plain",
        bundle="p",
        version="1",
        findings=findings,
        coverage=coverage,
        statuses={"a": "ok"},
    )


def test_the_packaged_rego_module_decides_by_its_contract() -> None:
    rego = RegoEvaluator(MODULE, "data.orch.decision")
    assert rego.evaluate(_doc([])).decision.value == "allow"
    redact = rego.evaluate(_doc([EMAIL]))
    assert redact.decision.value == "redact"
    assert redact.reasons == ("redact_label:PII.Contact.Email",)
    assert rego.evaluate(_doc([EMAIL], SHORT)).decision.value == "block"


def test_rego_contract_violations_and_compile_errors_are_clear() -> None:
    with pytest.raises(RegoError, match="one of allow, redact, block"):
        interpret("maybe")
    with pytest.raises(RegoError, match="reasons must be a list"):
        interpret({"decision": "block", "reasons": "x"})
    assert interpret(None).decision.value == "allow"
    with pytest.raises(PolicyError, match=r"decision\.rego\.module"):
        parse_bundle(
            yaml.safe_dump(
                {
                    "name": "p",
                    "decision": {"engine": "rego", "rego": {"module": "package x\nfoo := "}},
                }
            )
        )


def test_rego_test_rules_pass_and_a_broken_one_fails(tmp_path: Path) -> None:
    modules = {p.name: p.read_text() for p in sorted((DATA / "rego").glob("*.rego"))}
    results = run_tests(modules)
    assert len(results) == 5
    assert all(r.passed for r in results)
    broken = modules | {
        "broken_test.rego": "package orch\nimport rego.v1\ntest_wrong if { decision.decision == "
        '"block" with input as {"findings": [], "coverage": {"sufficient": true}} }\n'
    }
    failed = [r for r in run_tests(broken) if not r.passed]
    assert [r.test for r in failed] == ["test_wrong"]


async def test_packaged_bundles_pass_their_examples() -> None:
    engine = PolicyEngine()
    for path in sorted(PACKAGED.glob("*.yaml")):
        _, bundle = load_bundle_file(path)
        results = await run_examples(bundle, engine)
        assert results
        assert all(r.passed for r in results), [r for r in results if not r.passed]


async def test_an_example_that_contradicts_the_rules_fails() -> None:
    bundle = parse_bundle(
        bundle_yaml("p", ["a"])
        + "examples:\n- name: wrong\n  findings: [{label: SECRET.Token, score: 0.9}]\n"
        + "  expect: allow\n"
    )
    (result,) = await run_examples(bundle, PolicyEngine())
    assert (result.passed, result.got) == (False, "block")


async def test_remote_opa_over_the_rest_data_api() -> None:
    with serve(opa_app({"decision.rego": MODULE})) as url:
        opa = OpaClient(url, timeout=2.0)
        try:
            blocked = await opa.evaluate("orch/decision", _doc([EMAIL], SHORT))
            allowed = await opa.evaluate("orch/decision", _doc([]))
            undefined = await opa.evaluate("orch/nothing_here", _doc([]))
        finally:
            await opa.aclose()
    assert blocked.decision.value == "block"
    assert allowed.decision.value == "allow"
    assert undefined.reasons == ("rego:undefined",)
    down = OpaClient("http://127.0.0.1:9", timeout=0.5)
    with pytest.raises(OpaUnavailable, match="unreachable"):
        await down.evaluate("orch/decision", _doc([]))
    await down.aclose()


async def test_orchestrations_decided_by_rego_and_by_opa(make_runtime, detectors) -> None:
    rego_bundle = yaml.safe_load(bundle_yaml("viarego", ["pii-a"]))
    rego_bundle["decision"] = {
        "engine": "rego",
        "redact_labels": ["PII.*"],
        "rego": {"module": MODULE},
    }
    opa_bundle = yaml.safe_load(bundle_yaml("viaopa", ["pii-a"]))
    opa_bundle["decision"] = {"engine": "opa", "opa": {"path": "orch/decision"}}
    with serve(opa_app({"decision.rego": MODULE})) as opa_url:
        async with make_runtime(policy={"opa_url": opa_url}) as runtime:
            await runtime.registry.add(fms_spec("pii-a", detectors.set("pii-a")))
            runtime.catalog.invalidate()
            await submit_active(runtime, "acme", yaml.safe_dump(rego_bundle))
            await submit_active(runtime, "acme", yaml.safe_dump(opa_bundle))
            text = "mail jane@example.com now"
            by_rego = await runtime.orchestrator.orchestrate(
                OrchestrateRequest(content=text, tenant_id="acme", policy_bundle="viarego")
            )
            by_opa = await runtime.orchestrator.orchestrate(
                OrchestrateRequest(content=text, tenant_id="acme", policy_bundle="viaopa")
            )
    assert by_rego.body["decision"] == "redact"
    assert by_rego.body["redacted_content"] == "mail [REDACTED:PII.Contact.Email] now"
    assert by_rego.body["reasons"] == ["redact_label:PII.Contact.Email"]
    assert by_opa.body["decision"] == "redact"
    assert by_opa.body["redacted_content"] == "mail [REDACTED:PII.Contact.Email] now"


async def test_opa_down_answers_503_policy_unavailable(make_runtime, detectors) -> None:
    from tests.orch.core.conftest import api

    opa_bundle = yaml.safe_load(bundle_yaml("viaopa", ["pii-a"]))
    opa_bundle["decision"] = {"engine": "opa"}
    async with make_runtime(policy={"opa_url": "http://127.0.0.1:9"}) as runtime:
        await runtime.registry.add(fms_spec("pii-a", detectors.set("pii-a")))
        runtime.catalog.invalidate()
        await submit_active(runtime, "acme", yaml.safe_dump(opa_bundle))
        async with api(runtime) as http:
            response = await http.post(
                "/orchestrate",
                json={"content": "x", "tenant_id": "acme", "policy_bundle": "viaopa"},
            )
    assert response.status_code == 503
    assert response.json()["error_code"] == "POLICY_UNAVAILABLE"
    assert response.json()["retryable"] is True
