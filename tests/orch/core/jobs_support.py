"""Helpers of the async-job tests: poll a job, run a webhook receiver, compare answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from tests.orch.core.servers import WebhookReceiver, serve, webhook_app

WEBHOOK_SECRET = "whsec-test-global"
#: The answer's fields that differ between two runs of the same request.
VOLATILE = {"request_id", "timings", "detector_results", "mapping"}


async def wait_for_job(
    http: httpx.AsyncClient,
    job_id: str,
    states: set[str],
    *,
    timeout: float = 15.0,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = await http.get(f"/jobs/{job_id}", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in states:
            return body
        assert time.monotonic() < deadline, f"job stayed {body['status']}"
        await asyncio.sleep(0.05)


async def wait_until(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


@contextmanager
def webhook_receiver(
    secret: str = WEBHOOK_SECRET, fail_first: int = 0, fail_status: int = 503, hang_first: float = 0
) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(secret, fail_first, fail_status, hang_first)
    with serve(webhook_app(receiver)) as url:
        receiver.url = f"{url}/hook"
        yield receiver


def stable(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k not in VOLATILE}
