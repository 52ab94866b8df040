"""What the sync and async clients share: request bodies, retry policy, response parsing.

Only the I/O loop differs between the two clients, so everything that decides *what* to
send and *whether* to try again lives here, once.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
from pydantic import ValidationError

from llama_mapper import __version__
from llama_mapper.client.errors import MapperAPIError
from llama_mapper.schemas import ErrorBody, MapperPayload

#: Statuses that say "not now" rather than "not this": the same request can succeed later.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: A duplicate of a request still in flight: once the first finishes, a retry replays it.
IN_FLIGHT_CODE = "IDEMPOTENCY_IN_PROGRESS"
#: Failures where the request may not have been processed, or was and can be replayed.
RETRY_EXCEPTIONS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)
MAX_DELAY = 30.0
USER_AGENT = f"llama-mapper-python/{__version__}"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, overridden by the server's ``Retry-After``.

    Jitter spreads the retries of many clients that failed together (a restart, a rate
    limit window) so they do not come back as one wave. Every wait is capped.
    """

    max_retries: int = 3
    backoff_base: float = 0.5
    max_delay: float = MAX_DELAY
    #: Uniform in [0, 1); injectable so tests can pin the jitter.
    jitter: Callable[[], float] = random.random

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_delay))
        ceiling = min(self.max_delay, self.backoff_base * 2.0**attempt)
        return ceiling / 2 + self.jitter() * ceiling / 2


def parse_retry_after(value: str | None, now: Callable[[], datetime] | None = None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        current = now() if now is not None else datetime.now(UTC)
        return max(0.0, (when - current).total_seconds())
    return seconds if seconds >= 0 else None


def api_error(response: httpx.Response) -> MapperAPIError:
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    try:
        body = ErrorBody.model_validate_json(response.content)
    except ValidationError:
        status = response.status_code
        return MapperAPIError(
            status,
            f"HTTP_{status}",
            response.reason_phrase or "request failed",
            response.headers.get("x-request-id", ""),
            status in RETRY_STATUSES,
            retry_after=retry_after,
        )
    return MapperAPIError(
        response.status_code,
        body.error_code,
        body.message,
        body.request_id,
        body.retryable,
        retry_after=retry_after,
    )


def should_retry(error: MapperAPIError) -> bool:
    """Overload and gateway errors; other 4xx are the caller's to fix, except a duplicate
    still in flight, which the server itself marks retryable."""
    if error.status in RETRY_STATUSES:
        return True
    return error.status == 409 and error.error_code == IN_FLIGHT_CODE


class ClientCore:
    """Configuration and request building, shared by both clients."""

    def __init__(
        self,
        *,
        api_key: str | None,
        max_retries: int,
        tenant_id: str | None,
        headers: Mapping[str, str] | None,
        backoff_base: float,
        max_delay: float,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.tenant_id = tenant_id
        self.policy = RetryPolicy(max_retries, backoff_base, min(max_delay, MAX_DELAY))
        self.headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.headers.update(headers or {})

    def map_body(
        self,
        detector: str,
        output: Any,
        tenant_id: str | None,
        metadata: Mapping[str, Any] | None,
    ) -> bytes:
        tenant = tenant_id or self.tenant_id
        if tenant is None:
            raise ValueError("tenant_id is required: pass it to map() or to the client")
        # Validated here so a malformed payload fails fast, without a round trip.
        payload = MapperPayload(
            detector=detector,
            output=output,
            tenant_id=tenant,
            metadata=dict(metadata) if metadata is not None else None,
        )
        return orjson.dumps(payload.model_dump(mode="json", exclude_none=True))

    def batch_body(self, requests: Iterable[MapperPayload | Mapping[str, Any]]) -> bytes:
        """Items go as given (the server validates each one and reports bad ones per item);
        a dict without ``tenant_id`` gets the client's default tenant."""
        items: list[dict[str, Any]] = []
        for item in requests:
            if isinstance(item, MapperPayload):
                items.append(item.model_dump(mode="json", exclude_none=True))
            else:
                data = dict(item)
                if "tenant_id" not in data and self.tenant_id is not None:
                    data["tenant_id"] = self.tenant_id
                items.append(data)
        return orjson.dumps({"requests": items})

    def post_headers(self, idempotency_key: str | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return headers


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


def ready_body(response: httpx.Response) -> dict[str, Any] | None:
    """A 503 from ``/ready`` that carries the readiness report is an answer, not an error."""
    if response.status_code != 503:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and body.get("status") == "not_ready":
        return body
    return None
