"""The ``orch`` command end to end: registry, policy lifecycle, run, against loopback
detectors and the real database (SQLite file, and PostgreSQL for the stateful commands)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from tests.db.support import postgres_database_sync
from tests.orch.core.conftest import bundle_yaml
from tests.orch.core.servers import DetectorServer
from typer.testing import CliRunner

from detector_orchestration.cli.main import app
from detector_orchestration.policy.source import PACKAGED

runner = CliRunner()
#: presidio is listed only where presidio-analyzer (the presidio extra) is installed.
BUILTINS = {"regex-pii", "secrets", "prompt-injection"} | (
    {"presidio"} if importlib.util.find_spec("presidio_analyzer") else set()
)


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_env(request: pytest.FixtureRequest, orch_env: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield orch_env
        return
    with postgres_database_sync() as url:
        monkeypatch.setenv("LLAMA_MAPPER_DATABASE__URL", url)
        yield orch_env


def _ok(*args: str, stdin: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=stdin)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_registry_policy_and_run(cli_env: Path, detectors: DetectorServer, tmp_path: Path) -> None:
    endpoint = detectors.set("pii-a")
    out = _ok(
        "registry", "add", "pii-a", "--kind", "fms", "--pack", "fms-detector",
        "--endpoint", endpoint, "--detector-id", "pii-v1", "--timeout-ms", "500",
    )  # fmt: skip
    assert "registered pii-a" in out
    listed = json.loads(_ok("registry", "list", "--json"))
    registered = [d for d in listed if d["source"] == "registry"]  # built-ins are listed too
    assert [(d["name"], d["settings"]) for d in registered] == [
        ("pii-a", {"detector_id": "pii-v1"})
    ]
    assert {d["name"] for d in listed if d["source"] == "builtin"} == BUILTINS
    bundle = tmp_path / "p.yaml"
    bundle.write_text(bundle_yaml("p", ["pii-a"]))
    assert "valid bundle 'p'" in _ok("policy", "validate", str(bundle))
    assert "now pending" in _ok("policy", "submit", str(bundle), "--tenant", "acme")
    assert "now active" in _ok("policy", "approve", "p", "1", "--tenant", "acme")
    versions = json.loads(_ok("policy", "list", "--tenant", "acme", "--json"))
    assert [(v["version"], v["status"]) for v in versions] == [(1, "active")]
    assert "pii-a" in _ok("policy", "show", "p", "--tenant", "acme")
    content = tmp_path / "content.txt"
    content.write_text("mail jane@example.com please")
    body = json.loads(
        _ok("run", "--tenant", "acme", "--policy", "p", "--file", str(content), "--json")
    )
    assert body["decision"] == "redact"
    assert body["redacted_content"] == "mail [REDACTED:PII.Contact.Email] please"
    human = _ok("run", "--tenant", "acme", "--policy", "p", stdin="nothing here")
    assert "decision: allow" in human
    health = json.loads(_ok("registry", "health", "--json"))
    assert [(h["name"], h["health"]) for h in health if h["source"] == "registry"] == [
        ("pii-a", "healthy")
    ]
    assert {h["health"] for h in health if h["source"] == "builtin"} == {"healthy"}
    detectors.set("pii-a", "fail")
    sick = runner.invoke(app, ["registry", "health"])
    assert sick.exit_code == 1
    assert "unhealthy" in sick.stdout
    listed = json.loads(_ok("registry", "list", "--json"))
    assert next(d for d in listed if d["name"] == "pii-a")["health"] == "unhealthy"
    # All detectors down: one clear line and a non-zero exit.
    failed = runner.invoke(app, ["run", "--tenant", "acme", "--policy", "p"], input="x")
    assert failed.exit_code == 1
    assert "ALL_DETECTORS_UNAVAILABLE" in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1
    assert "removed pii-a" in _ok("registry", "remove", "pii-a")


def test_partial_coverage_exits_2_and_names_the_gap(orch_env, detectors, tmp_path) -> None:
    _ok("registry", "add", "good", "--kind", "fms", "--pack", "fms-detector",
        "--endpoint", detectors.set("good"))  # fmt: skip
    _ok("registry", "add", "bad", "--kind", "fms", "--pack", "fms-detector", "--retries", "0",
        "--endpoint", detectors.set("bad", "fail"))  # fmt: skip
    bundle = tmp_path / "p.yaml"
    bundle.write_text(bundle_yaml("p", ["good", "bad"]))
    _ok("policy", "submit", str(bundle), "--tenant", "acme")
    _ok("policy", "approve", "p", "1", "--tenant", "acme")
    result = runner.invoke(app, ["run", "-t", "acme", "-p", "p", "--json"], input="hi")
    assert result.exit_code == 2
    assert "PARTIAL_COVERAGE" in result.stderr
    assert "missing: bad" in result.stderr
    assert json.loads(result.stdout)["coverage"]["missing"] == ["bad"]


def test_user_mistakes_are_one_line(orch_env: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: p\ncoverage: {method: taxonomy}\n")
    cases = [
        ["policy", "validate", str(broken)],
        ["policy", "validate", str(tmp_path / "missing.yaml")],
        ["policy", "approve", "p", "7", "--tenant", "acme"],
        ["policy", "rollback", "p", "--tenant", "acme"],
        ["registry", "remove", "nope"],
        ["registry", "add", "x", "--kind", "fms", "--pack", "fms-detector"],
        ["registry", "add", "x y", "--kind", "fms", "--pack", "p", "--endpoint", "http://a"],
        ["run", "--tenant", "acme", "--file", str(tmp_path / "none.txt")],
        ["run", "--tenant", "acme", "--policy", "unknown"],
    ]
    for args in cases:
        result = runner.invoke(app, args, input="text")
        assert result.exit_code == 1, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (args, result.stderr)
        assert lines[0].startswith("error: "), (args, lines)
        assert "Traceback" not in result.output


def test_policy_test_runs_rego_rules_and_examples(tmp_path: Path) -> None:
    out = _ok("policy", "test", str(PACKAGED.parent))
    assert "12 passed, 0 failed" in out
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "p.yaml").write_text(
        bundle_yaml("p", ["a"]) + "examples:\n- {name: wrong, findings: [], expect: block}\n"
    )
    result = runner.invoke(app, ["policy", "test", str(bad), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["passed"], report["failed"]) == (0, 1)
    assert report["results"][0]["detail"] == "expected block, got allow"
