"""`orch serve` in a real process: migrates, binds, and orchestrates over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tests.orch.core.conftest import bundle_yaml
from tests.orch.core.servers import DetectorServer, free_port
from typer.testing import CliRunner

from detector_orchestration.cli.main import app

SRC = Path(__file__).resolve().parents[3] / "src"


def test_serve_answers_orchestrate(orch_env: Path, detectors: DetectorServer, tmp_path) -> None:
    runner = CliRunner()
    endpoint = detectors.set("pii-a")
    added = runner.invoke(
        app,
        ["registry", "add", "pii-a", "--kind", "fms", "--pack", "fms-detector",
         "--endpoint", endpoint],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    bundle = tmp_path / "p.yaml"
    bundle.write_text(bundle_yaml("p", ["pii-a"]))
    assert runner.invoke(app, ["policy", "submit", str(bundle), "-t", "acme"]).exit_code == 0
    assert runner.invoke(app, ["policy", "approve", "p", "1", "-t", "acme"]).exit_code == 0
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "detector_orchestration.cli.main", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "orch serve did not start"
            time.sleep(0.2)
        ready = httpx.get(f"{base}/ready", timeout=5)
        answer = httpx.post(
            f"{base}/orchestrate",
            json={"content": "to a@b.io", "tenant_id": "acme", "policy_bundle": "p"},
            timeout=10,
        )
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["mapper"] == "in-process"
    assert answer.status_code == 200, answer.text
    assert answer.json()["decision"] == "redact"
    assert answer.headers["x-request-id"]
    assert 'orch_decisions_total{decision="redact"} 1.0' in metrics
    assert 'orch_http_requests_total{method="POST",route="/orchestrate",status="200"}' in metrics
