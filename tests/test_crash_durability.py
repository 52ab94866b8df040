"""kill -9 under load: with durability=sync no acknowledged mapping loses its evidence,
and the chain still verifies after the restart.

Runs the real `mapper serve` (SQLite evidence store) and a real SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from llama_mapper.audit import EventStore
from llama_mapper.storage.db.engine import create_engine

MAPPER = str(Path(sys.executable).with_name("mapper"))
PAYLOAD = {"detector": "presidio", "output": "US_SSN", "tenant_id": "acme"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [MAPPER, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("mapper serve did not start")


async def load_until_killed(port: int, process: subprocess.Popen[bytes]) -> set[str]:
    """Eight clients map until the server dies; returns the request ids answered 200."""
    acknowledged: set[str] = set()

    async def client(http: httpx.AsyncClient) -> None:
        while True:
            request_id = uuid.uuid4().hex
            try:
                response = await http.post(
                    f"http://127.0.0.1:{port}/map",
                    json=PAYLOAD,
                    headers={"x-request-id": request_id},
                )
            except httpx.TransportError:
                return  # the server is gone
            if response.status_code == 200:
                acknowledged.add(request_id)

    async def killer() -> None:
        await asyncio.sleep(1.5)
        os.killpg(process.pid, signal.SIGKILL)

    async with httpx.AsyncClient(timeout=5) as http:
        await asyncio.gather(killer(), *(client(http) for _ in range(8)))
    return acknowledged


async def stored_request_ids(state: Path) -> tuple[set[str], bool, str]:
    engine = create_engine(f"sqlite+aiosqlite:///{state / 'mapper.db'}")
    store = EventStore(engine)
    try:
        ids = {stored.event.request_id async for stored in store.iter_events("acme")}
        result = await store.verify("acme")
    finally:
        await engine.dispose()
    return ids, result.ok, result.reason


@pytest.mark.parametrize(
    ("durability", "writer"), [("sync", "inline"), ("async", "inline"), ("sync", "process")]
)
async def test_kill_9_under_load(tmp_path: Path, durability: str, writer: str) -> None:
    """``writer=process``: the SIGKILL takes the whole process group, the evidence writer
    child included, mid-batch."""
    state = tmp_path / "state"
    env = {
        **os.environ,
        "LLAMA_MAPPER_STATE_DIR": str(state),
        "LLAMA_MAPPER_AUTH__ENABLED": "false",
        "LLAMA_MAPPER_AUDIT__DURABILITY": durability,
        "LLAMA_MAPPER_AUDIT__WRITER": writer,
    }
    env.pop("LLAMA_MAPPER_CONFIG", None)
    port = free_port()
    process = start(env, port)
    acknowledged = await load_until_killed(port, process)
    process.wait(timeout=10)
    assert len(acknowledged) > 20, "the load must have been running when the server died"
    # Restart on the same database: the server must come up and keep appending to the chain.
    restarted = start(env, free_port())
    try:
        stored, ok, reason = await stored_request_ids(state)
    finally:
        os.killpg(restarted.pid, signal.SIGTERM)
        restarted.wait(timeout=15)
    assert ok, reason
    lost = acknowledged - stored
    counts = f"{len(acknowledged)} acknowledged, {len(stored)} stored, {len(lost)} lost"
    print(f"{durability}/{writer}: {counts}")
    if durability == "sync":
        assert lost == set()
