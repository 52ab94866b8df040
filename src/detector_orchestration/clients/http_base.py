"""What every JSON-over-HTTP detector client shares: one attempt, safe errors, auth.

One pooled ``httpx.AsyncClient`` serves all remote detectors (no transport retries: the
executor owns the only retry layer). Failures become ``DetectorError`` with messages that
name the status or the error type, never the response body, which may echo the content.
The auth secret is read from the SecretProvider per call (it caches), so rotation needs
no restart; only its name is configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from detector_orchestration.detectors.base import DetectorError
from llama_mapper.secrets import SecretError, SecretProvider

#: Statuses worth another attempt: overload and transient server trouble.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def shared_http_client(max_connections: int = 200) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return httpx.AsyncClient(limits=limits, timeout=None, follow_redirects=False)  # noqa: S113 - the executor sets per-attempt timeouts


class AuthHeader:
    """``<header>: <scheme> <secret>`` from a named secret; nothing when unnamed."""

    def __init__(
        self,
        secrets: SecretProvider | None,
        secret_name: str | None,
        header: str = "Authorization",
        scheme: str = "Bearer",
    ) -> None:
        self.secrets = secrets
        self.secret_name = secret_name
        self.header = header
        self.scheme = scheme

    def headers(self) -> dict[str, str]:
        if not self.secret_name:
            return {}
        if self.secrets is None:
            raise DetectorError("no secret provider for the detector's credential", retryable=False)
        try:
            value = self.secrets.get(self.secret_name).value
        except SecretError:
            raise DetectorError(
                "the detector's credential is unavailable", retryable=False
            ) from None
        return {self.header: f"{self.scheme} {value}".strip()}


async def post_json(
    http: httpx.AsyncClient,
    url: str,
    body: Any,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """POST ``body`` as JSON and return the parsed JSON answer, or raise DetectorError."""
    try:
        response = await http.post(
            url,
            content=orjson.dumps(body),
            headers={"Content-Type": "application/json", **(headers or {})},
        )
    except httpx.TimeoutException:
        raise DetectorError("detector timed out") from None
    except httpx.HTTPError as exc:
        raise DetectorError(f"detector unreachable ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise DetectorError(
            f"detector answered HTTP {response.status_code}",
            retryable=response.status_code in RETRYABLE_STATUSES,
        )
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise DetectorError("detector answered with invalid JSON", retryable=False) from None
