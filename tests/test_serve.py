"""`mapper serve` end to end: a real uvicorn process on loopback, as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_maps_and_keeps_unmapped_labels_on_shutdown(tmp_path: Path) -> None:
    port = free_port()
    state = tmp_path / "state"
    env = {**os.environ, "LLAMA_MAPPER_STATE_DIR": str(state)}
    env.pop("LLAMA_MAPPER_CONFIG", None)
    env.pop("LLAMA_MAPPER_AUTH__ENABLED", None)
    mapper = Path(sys.executable).with_name("mapper")
    created = subprocess.run(
        [str(mapper), "auth", "create-key", "--tenant", "acme", "--scope", "map:write", "--json"],
        env=env, cwd=tmp_path, check=True, capture_output=True, text=True,
    )  # fmt: skip
    key = json.loads(created.stdout)["api_key"]
    command = [str(mapper), "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, "server did not start"
            assert process.poll() is None, "server exited"
            time.sleep(0.2)
        payload = {"detector": "presidio", "output": "US_SSN|ZODIAC_SIGN", "tenant_id": "acme"}
        refused = httpx.post(f"{base}/map", json=payload, timeout=5)
        assert refused.status_code == 401  # auth is on by default
        bearer = {"authorization": f"Bearer {key}"}
        response = httpx.post(f"{base}/map", json=payload, headers=bearer, timeout=5)
        assert response.status_code == 200
        assert set(response.json()["taxonomy"]) == {"PII.Identifier.SSN", "OTHER.Unknown"}
        assert httpx.get(f"{base}/ready", timeout=5).json()["status"] == "ready"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)
    assert '"label": "ZODIAC_SIGN"' in (state / "unmapped.json").read_text()
