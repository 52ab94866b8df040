"""Signed completion webhooks: the signature scheme, its verifier, and delivery.

Scheme (Stripe's): header ``X-Orch-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is
``HMAC-SHA256(secret, "<t>." + raw body)``. A receiver recomputes it over the exact bytes
it received, compares in constant time, and refuses a ``t`` older than its tolerance (a
replayed delivery). :func:`verify_signature` does all three; receivers in Python can call
it as is. During a secret rotation ``v1`` appears once per secret version.

Delivery: ``POST`` the JSON job view; a 2xx is delivered; timeouts, connection errors and
408/425/429/5xx are retried with full-jitter exponential backoff (the executor's
:class:`Backoff`); any other status is final. Every attempt is recorded on the job (status
or error type and duration: never the receiver's answer).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

import httpx

from detector_orchestration.executor.backoff import Backoff
from detector_orchestration.jobs.model import Delivery, now_iso
from llama_mapper.secrets import Secret, SecretError, SecretProvider

SIGNATURE_HEADER = "X-Orch-Signature"
DEFAULT_TOLERANCE_S = 300
RETRYABLE_STATUS = frozenset({408, 425, 429})
MAX_URL_LENGTH = 2048


def signature_header(secrets: Sequence[str], body: bytes, timestamp: int) -> str:
    """``t=<timestamp>,v1=<hex>[,v1=<hex>...]``: one ``v1`` per secret given."""
    parts = [f"t={timestamp}"]
    parts += [f"v1={_digest(secret, timestamp, body)}" for secret in secrets]
    return ",".join(parts)


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Whether ``header`` (``X-Orch-Signature``) signs ``body`` with ``secret`` and is
    no older (or newer) than ``tolerance_s``. Never raises on a malformed header."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = _digest(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def check_callback_url(url: str) -> str | None:
    """Why ``url`` cannot be a callback (a fixed phrase, never the URL), else ``None``."""
    if len(url) > MAX_URL_LENGTH:
        return f"callback_url is longer than {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "callback_url is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "callback_url must be an http or https URL"
    if not parts.hostname:
        return "callback_url has no host"
    if parts.username is not None or parts.password is not None:
        return "callback_url must not carry credentials (use the signature to authenticate)"
    if any(c.isspace() for c in url):
        return "callback_url must not contain whitespace"
    return None


def host_allowed(url: str, allowed: Sequence[str]) -> bool:
    """``allowed`` entries: an exact host, or ``*.example.com`` (any subdomain); empty:
    every host."""
    if not allowed:
        return True
    host = (urlsplit(url).hostname or "").lower()
    for entry in allowed:
        pattern = entry.lower()
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
        if host == pattern:
            return True
    return False


Record = Callable[[Delivery], Awaitable[bool]]


class WebhookSender:
    def __init__(
        self,
        http: httpx.AsyncClient,
        secrets: SecretProvider,
        *,
        secret_name: str,
        timeout_s: float,
        max_attempts: int,
        backoff: Backoff,
        on_attempt: Callable[[str], None] = lambda outcome: None,
    ) -> None:
        self._http = http
        self._secrets = secrets
        self._secret_name = secret_name
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._on_attempt = on_attempt

    def secret_for(self, tenant_id: str) -> Secret:
        """The tenant's own secret ``<name>.<tenant>`` when it exists, else the global one."""
        try:
            return self._secrets.get(f"{self._secret_name}.{tenant_id}")
        except SecretError:
            return self._secrets.get(self._secret_name)

    async def deliver(
        self, url: str, tenant_id: str, job_id: str, body: bytes, first_attempt: int, record: Record
    ) -> bool:
        """Attempts from ``first_attempt`` until delivered, final, or out of attempts.

        ``record`` stores each attempt on the job and answers whether to go on (``False``
        once the job is gone). Returns whether the receiver took the delivery.
        """
        for attempt in range(first_attempt, self._max_attempts + 1):
            if attempt > 1:
                await asyncio.sleep(self._backoff.delay(attempt - 1))
            delivery, retry = await self._attempt(url, tenant_id, job_id, body, attempt)
            go_on = await record(delivery)
            delivered = delivery.status_code is not None and 200 <= delivery.status_code < 300
            retry = retry and attempt < self._max_attempts
            self._on_attempt("delivered" if delivered else "retry" if retry else "failed")
            if delivered:
                return True
            if not retry or not go_on:
                return False
        return False

    async def _attempt(
        self, url: str, tenant_id: str, job_id: str, body: bytes, attempt: int
    ) -> tuple[Delivery, bool]:
        secret = await asyncio.to_thread(self.secret_for, tenant_id)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header([secret.value], body, int(time.time())),
            "X-Orch-Job-Id": job_id,
            "X-Orch-Delivery-Attempt": str(attempt),
        }
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            response = await self._http.post(
                url, content=body, headers=headers, timeout=self._timeout_s
            )
            status = response.status_code
            retry = status in RETRYABLE_STATUS or status >= 500
        except httpx.HTTPError as exc:
            error, retry = type(exc).__name__, True
        duration = round((time.perf_counter() - started) * 1000, 3)
        return Delivery(attempt, now_iso(), status, error, duration), retry
