"""Blocking client over ``httpx.Client``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from llama_mapper.client._core import (
    RETRY_EXCEPTIONS,
    ClientCore,
    api_error,
    new_idempotency_key,
    ready_body,
    should_retry,
)
from llama_mapper.client.errors import MapperConnectionError
from llama_mapper.schemas import BatchResponse, MapperPayload, MappingResponse


class MapperClient:
    """Client for the llama-mapper HTTP API.

    Retries 429/502/503/504 and connection failures with capped exponential backoff and
    jitter, waiting what ``Retry-After`` says when the server says it. Mapping is a pure
    function of the payload, so ``/map`` is safe to retry; ``/map/batch`` always carries an
    ``Idempotency-Key`` (generated when none is given) that every retry reuses, so a batch
    whose answer was lost is replayed rather than recounted against rate limits and usage.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        transport: httpx.BaseTransport | None = None,
        tenant_id: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        backoff_base: float = 0.5,
        max_delay: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._core = ClientCore(
            api_key=api_key,
            max_retries=max_retries,
            tenant_id=tenant_id,
            headers=headers,
            backoff_base=backoff_base,
            max_delay=max_delay,
        )
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=base_url, headers=self._core.headers, timeout=timeout, transport=transport
        )

    # -- API -------------------------------------------------------------------------

    def map(
        self,
        detector: str,
        output: Any,
        tenant_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> MappingResponse:
        body = self._core.map_body(detector, output, tenant_id, metadata)
        response = self._request(
            "POST", "/map", content=body, headers=self._core.post_headers(idempotency_key)
        )
        return MappingResponse.model_validate_json(response.content)

    def map_batch(
        self,
        requests: Sequence[MapperPayload | Mapping[str, Any]],
        idempotency_key: str | None = None,
    ) -> BatchResponse:
        body = self._core.batch_body(requests)
        key = idempotency_key or new_idempotency_key()
        response = self._request(
            "POST", "/map/batch", content=body, headers=self._core.post_headers(key)
        )
        return BatchResponse.model_validate_json(response.content)

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = self._request("GET", "/health").json()
        return body

    def ready(self) -> dict[str, Any]:
        """The readiness report; ``status`` is ``not_ready`` (not an exception) on a 503
        that carries one. Not retried: a probe wants the answer of now."""
        response = self._request("GET", "/ready", retry=False, accept=ready_body)
        body: dict[str, Any] = response.json()
        return body

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MapperClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = True,
        accept: Callable[[httpx.Response], object | None] | None = None,
    ) -> httpx.Response:
        policy = self._core.policy
        retries = policy.max_retries if retry else 0
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, content=content, headers=headers)
            except RETRY_EXCEPTIONS as exc:
                if attempt >= retries:
                    raise MapperConnectionError(f"{method} {path}: {exc!r}") from exc
                self._sleep(policy.delay(attempt))
                attempt += 1
                continue
            if response.is_success or (accept is not None and accept(response) is not None):
                return response
            error = api_error(response)
            if attempt >= retries or not should_retry(error):
                raise error
            self._sleep(policy.delay(attempt, error.retry_after))
            attempt += 1
