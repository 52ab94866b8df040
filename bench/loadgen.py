"""A small asyncio load generator and the helpers the load and fault scripts share.

Open loop (a fixed offered rate, the honest way to measure latency: slow answers do not
slow the sender) and closed loop (N connections back to back, for capacity).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

MAPPER = str(Path(sys.executable).with_name("mapper"))
Send = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


@dataclass
class Stats:
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def sent(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())

    @property
    def fivexx(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def pct(self, q: int) -> float:
        if len(self.latencies_ms) < 2:
            return float("nan")
        return statistics.quantiles(self.latencies_ms, n=100)[q - 1]

    def line(self, name: str) -> str:
        rps = sum(self.statuses.values()) / self.seconds if self.seconds else 0.0
        codes = " ".join(f"{s}:{n}" for s, n in sorted(self.statuses.items()))
        errors = sum(self.errors.values())
        return (
            f"{name:<34} {rps:8.1f} rps  p50 {self.pct(50):7.2f} ms  p95 {self.pct(95):7.2f} ms  "
            f"p99 {self.pct(99):7.2f} ms  5xx {self.fivexx}  errors {errors}  [{codes}]"
        )


async def _one(client: httpx.AsyncClient, send: Send, i: int, stats: Stats) -> None:
    start = time.perf_counter()
    try:
        response = await send(client, i)
    except httpx.HTTPError as exc:
        stats.errors[type(exc).__name__] += 1
        return
    stats.latencies_ms.append((time.perf_counter() - start) * 1000)
    stats.statuses[response.status_code] += 1


async def open_loop(send: Send, rate: float, seconds: float, max_connections: int = 256) -> Stats:
    stats = Stats()
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        tasks: list[asyncio.Task[None]] = []
        start = time.perf_counter()
        i = 0
        while (now := time.perf_counter() - start) < seconds:
            due = int(now * rate)
            while i < due:
                tasks.append(asyncio.create_task(_one(client, send, i, stats)))
                i += 1
            await asyncio.sleep(0.002)
        await asyncio.gather(*tasks)
        stats.seconds = time.perf_counter() - start
    return stats


async def closed_loop(send: Send, connections: int, seconds: float) -> Stats:
    stats = Stats()
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                await _one(client, send, next(counter), stats)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        stats.seconds = time.perf_counter() - start
    return stats


def process_tree(root: int) -> list[int]:
    """``root`` and every process below it (a uvicorn master and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes have used so far (from /proc/<pid>/stat)."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, seconds: float = 40) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def start_mapper(
    port: int, env: dict[str, str], workers: int = 2, log: Path | None = None
) -> subprocess.Popen[bytes]:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - lives with the process
    process = subprocess.Popen(
        [MAPPER, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=out,
        stderr=out,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
    except BaseException:
        stop(process)  # never leave a half-started server behind
        raise
    return process


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
    process.wait(timeout=20)


def create_key(env: dict[str, str], tenant: str, *scopes: str) -> str:
    args = [MAPPER, "auth", "create-key", "--tenant", tenant, "--json"]
    for scope in scopes or ("map:write",):
        args += ["--scope", scope]
    out = subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout
    import json

    return str(json.loads(out)["api_key"])
