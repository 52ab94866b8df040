"""Asyncio client over ``httpx.AsyncClient``; same behaviour as :class:`MapperClient`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
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


class AsyncMapperClient:
    """Asyncio client for the llama-mapper HTTP API.

    See :class:`~llama_mapper.client.MapperClient` for the retry and idempotency rules;
    ``sleep`` here is awaited.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        tenant_id: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        backoff_base: float = 0.5,
        max_delay: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
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
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=self._core.headers, timeout=timeout, transport=transport
        )

    # -- API -------------------------------------------------------------------------

    async def map(
        self,
        detector: str,
        output: Any,
        tenant_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> MappingResponse:
        body = self._core.map_body(detector, output, tenant_id, metadata)
        response = await self._request(
            "POST", "/map", content=body, headers=self._core.post_headers(idempotency_key)
        )
        return MappingResponse.model_validate_json(response.content)

    async def map_batch(
        self,
        requests: Sequence[MapperPayload | Mapping[str, Any]],
        idempotency_key: str | None = None,
    ) -> BatchResponse:
        body = self._core.batch_body(requests)
        key = idempotency_key or new_idempotency_key()
        response = await self._request(
            "POST", "/map/batch", content=body, headers=self._core.post_headers(key)
        )
        return BatchResponse.model_validate_json(response.content)

    async def health(self) -> dict[str, Any]:
        body: dict[str, Any] = (await self._request("GET", "/health")).json()
        return body

    async def ready(self) -> dict[str, Any]:
        """The readiness report; ``status`` is ``not_ready`` (not an exception) on a 503
        that carries one. Not retried: a probe wants the answer of now."""
        response = await self._request("GET", "/ready", retry=False, accept=ready_body)
        body: dict[str, Any] = response.json()
        return body

    # -- lifecycle -------------------------------------------------------------------

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncMapperClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- transport -------------------------------------------------------------------

    async def _request(
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
                response = await self._http.request(method, path, content=content, headers=headers)
            except RETRY_EXCEPTIONS as exc:
                if attempt >= retries:
                    raise MapperConnectionError(f"{method} {path}: {exc!r}") from exc
                await self._sleep(policy.delay(attempt))
                attempt += 1
                continue
            if response.is_success or (accept is not None and accept(response) is not None):
                return response
            error = api_error(response)
            if attempt >= retries or not should_retry(error):
                raise error
            await self._sleep(policy.delay(attempt, error.retry_after))
            attempt += 1
