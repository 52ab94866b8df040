"""Retry, backoff, Retry-After and idempotency-key behaviour of the SDK.

The server here is a scripted fake of *our own* API: it answers the documented
``ErrorBody`` shape and headers (Retry-After, X-Request-ID) in a chosen order, so every
retry path can be driven deterministically, with an injected sleep instead of real waits.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from pydantic import ValidationError

from llama_mapper.client import (
    AsyncMapperClient,
    MapperAPIError,
    MapperClient,
    MapperConnectionError,
    MappingResponse,
)
from llama_mapper.client._core import RetryPolicy, parse_retry_after
from llama_mapper.service import MapperService

Answer = tuple[int, dict[str, str], bytes] | Exception


def error(status: int, code: str, retryable: bool, **headers: str) -> Answer:
    body = {
        "error_code": code,
        "message": f"{code.lower()} happened",
        "request_id": "req-1",
        "retryable": retryable,
    }
    return status, {"content-type": "application/json", **headers}, orjson.dumps(body)


class ScriptedAPI:
    """Answers from a script (the last entry repeats) and records what it was sent.

    Usable as an ``httpx.MockTransport`` handler (sync client) and as an ASGI app (async
    client over ``httpx.ASGITransport``); an exception entry is raised as if the network
    had failed.
    """

    def __init__(self, *script: Answer) -> None:
        self.script = list(script)
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []

    def _next(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        self.requests.append((method, path, headers, body))
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def handler(self, request: httpx.Request) -> httpx.Response:
        answer = self._next(request.method, request.url.path, dict(request.headers), request.read())
        if isinstance(answer, Exception):
            raise answer
        status, headers, body = answer
        return httpx.Response(status, headers=headers, content=body)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        answer = self._next(scope["method"], scope["path"], headers, body)
        if isinstance(answer, Exception):
            raise answer
        status, extra, content = answer
        raw = [(k.encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": content})

    @property
    def keys(self) -> list[str | None]:
        return [headers.get("idempotency-key") for _, _, headers, _ in self.requests]


@pytest.fixture
def mapping_body(service: MapperService) -> bytes:
    payload = service.parse_payload(
        {"detector": "presidio", "output": "US_SSN", "tenant_id": "acme"}
    )
    return orjson.dumps(service.map_payload(payload, route="/map"))


@pytest.fixture
def ok(mapping_body: bytes) -> Answer:
    return 200, {"content-type": "application/json"}, mapping_body


@pytest.fixture
def batch_ok(mapping_body: bytes) -> Answer:
    body = b'{"results":[' + mapping_body + b'],"succeeded":1,"failed":0}'
    return 200, {"content-type": "application/json"}, body


def sync_client(api: ScriptedAPI, sleeps: list[float], **kwargs: Any) -> MapperClient:
    return MapperClient(
        "http://mapper",
        transport=httpx.MockTransport(api.handler),
        tenant_id="acme",
        sleep=sleeps.append,
        **kwargs,
    )


def async_client(api: ScriptedAPI, sleeps: list[float], **kwargs: Any) -> AsyncMapperClient:
    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    sleep: Callable[[float], Awaitable[None]] = record
    return AsyncMapperClient(
        "http://mapper",
        transport=httpx.ASGITransport(app=api),
        tenant_id="acme",
        sleep=sleep,
        **kwargs,
    )


def test_retry_after_is_honoured(ok: Answer) -> None:
    api = ScriptedAPI(
        error(429, "RATE_LIMITED", True, **{"Retry-After": "2"}),
        error(429, "RATE_LIMITED", True, **{"Retry-After": "3"}),
        ok,
    )
    sleeps: list[float] = []
    with sync_client(api, sleeps) as client:
        result = client.map("presidio", "US_SSN")
    assert isinstance(result, MappingResponse)
    assert result.taxonomy == ["PII.Identifier.SSN"]
    assert sleeps == [2.0, 3.0]
    assert len(api.requests) == 3
    method, path, headers, body = api.requests[0]
    assert (method, path) == ("POST", "/map")
    assert headers["content-type"] == "application/json"
    assert orjson.loads(body) == {"detector": "presidio", "output": "US_SSN", "tenant_id": "acme"}


def test_retry_after_is_capped(ok: Answer) -> None:
    api = ScriptedAPI(error(503, "BACKEND_UNAVAILABLE", True, **{"Retry-After": "3600"}), ok)
    sleeps: list[float] = []
    with sync_client(api, sleeps) as client:
        client.map("presidio", "US_SSN")
    assert sleeps == [30.0]


def test_backoff_is_exponential_with_jitter_then_gives_up() -> None:
    api = ScriptedAPI(error(503, "BACKEND_UNAVAILABLE", True))
    sleeps: list[float] = []
    with sync_client(api, sleeps, max_retries=3) as client, pytest.raises(MapperAPIError) as caught:
        client.map("presidio", "US_SSN")
    assert len(api.requests) == 4
    assert len(sleeps) == 3
    for attempt, delay in enumerate(sleeps):
        ceiling = 0.5 * 2**attempt
        assert ceiling / 2 <= delay <= ceiling
    error_ = caught.value
    assert (error_.status, error_.error_code, error_.request_id) == (
        503,
        "BACKEND_UNAVAILABLE",
        "req-1",
    )
    assert error_.retryable is True
    assert error_.message == "backend_unavailable happened"


def test_policy_jitter_and_cap() -> None:
    policy = RetryPolicy(max_retries=10, backoff_base=1.0, jitter=lambda: 1.0)
    assert [policy.delay(n) for n in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    low = RetryPolicy(backoff_base=1.0, jitter=lambda: 0.0)
    assert low.delay(2) == 2.0
    assert low.delay(2, retry_after=0.0) == 0.0


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "RAW_CONTENT_REJECTED"),
        (401, "UNAUTHENTICATED"),
        (403, "TENANT_MISMATCH"),
        (404, "NOT_FOUND"),
        (413, "PAYLOAD_TOO_LARGE"),
        (422, "INVALID_OUTPUT"),
        (422, "IDEMPOTENCY_KEY_REUSED"),
        (500, "INTERNAL_ERROR"),
    ],
)
def test_other_errors_are_not_retried(status: int, code: str) -> None:
    api = ScriptedAPI(error(status, code, status == 500))
    sleeps: list[float] = []
    with sync_client(api, sleeps) as client, pytest.raises(MapperAPIError) as caught:
        client.map("presidio", "US_SSN")
    assert len(api.requests) == 1
    assert sleeps == []
    assert (caught.value.status, caught.value.error_code) == (status, code)


def test_duplicate_in_flight_is_retried_until_replayed(batch_ok: Answer) -> None:
    api = ScriptedAPI(error(409, "IDEMPOTENCY_IN_PROGRESS", True, **{"Retry-After": "1"}), batch_ok)
    sleeps: list[float] = []
    with sync_client(api, sleeps) as client:
        batch = client.map_batch([{"detector": "presidio", "output": "US_SSN"}], "key-1")
    assert batch.succeeded == 1
    assert sleeps == [1.0]
    assert api.keys == ["key-1", "key-1"]


def test_batch_idempotency_key_is_generated_once_and_reused(batch_ok: Answer) -> None:
    api = ScriptedAPI(
        error(503, "BACKEND_UNAVAILABLE", True),
        httpx.ReadTimeout("answer lost"),
        error(502, "BAD_GATEWAY", True),
        batch_ok,
    )
    sleeps: list[float] = []
    with sync_client(api, sleeps) as client:
        batch = client.map_batch([{"detector": "presidio", "output": "US_SSN"}])
        client.map_batch([{"detector": "presidio", "output": "US_SSN"}])
    assert batch.succeeded == 1
    first, *retries, other = api.keys
    assert first is not None
    assert uuid.UUID(first).version == 4
    assert retries == [first] * 3
    assert other is not None
    assert other != first
    _, path, _, body = api.requests[0]
    assert path == "/map/batch"
    assert orjson.loads(body) == {
        "requests": [{"detector": "presidio", "output": "US_SSN", "tenant_id": "acme"}]
    }


def test_map_sends_an_idempotency_key_only_when_given(ok: Answer) -> None:
    api = ScriptedAPI(ok)
    with sync_client(api, []) as client:
        client.map("presidio", "US_SSN")
        client.map("presidio", "US_SSN", idempotency_key="map-key")
    assert api.keys == [None, "map-key"]


def test_connection_errors_are_retried(ok: Answer) -> None:
    api = ScriptedAPI(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), ok)
    sleeps: list[float] = []
    with sync_client(api, sleeps) as client:
        assert client.map("presidio", "US_SSN").taxonomy == ["PII.Identifier.SSN"]
    assert len(sleeps) == 2
    api = ScriptedAPI(httpx.ConnectError("refused"))
    with sync_client(api, [], max_retries=1) as client, pytest.raises(MapperConnectionError):
        client.health()
    assert len(api.requests) == 2


def test_non_api_error_bodies_are_still_parsed() -> None:
    api = ScriptedAPI(
        (502, {"content-type": "text/html", "x-request-id": "edge-7"}, b"<html>bad gateway</html>"),
        (404, {"content-type": "text/plain"}, b"not here"),
    )
    sleeps: list[float] = []
    with sync_client(api, sleeps, max_retries=0) as client, pytest.raises(MapperAPIError) as caught:
        client.health()
    assert (caught.value.status, caught.value.error_code) == (502, "HTTP_502")
    assert caught.value.request_id == "edge-7"
    assert caught.value.retryable is True
    with sync_client(api, sleeps) as client, pytest.raises(MapperAPIError) as caught:
        client.health()
    assert (caught.value.error_code, caught.value.retryable) == ("HTTP_404", False)


def test_ready_reports_not_ready_without_retrying() -> None:
    body = orjson.dumps({"status": "not_ready", "checks": {"database": "down"}, "version_info": {}})
    api = ScriptedAPI((503, {"content-type": "application/json"}, body))
    sleeps: list[float] = []
    with sync_client(api, sleeps) as client:
        assert client.ready()["status"] == "not_ready"
    assert len(api.requests) == 1
    assert sleeps == []


def test_headers_sent(ok: Answer) -> None:
    api = ScriptedAPI(ok)
    with sync_client(api, [], api_key="lmk_abc_def") as client:
        client.map("presidio", "US_SSN")
    with sync_client(api, []) as client:
        client.map("presidio", "US_SSN", tenant_id="globex", metadata={"k": 1})
    (_, _, with_key, _), (_, _, without_key, body) = api.requests
    assert with_key["authorization"] == "Bearer lmk_abc_def"
    assert with_key["user-agent"].startswith("llama-mapper-python/")
    assert "authorization" not in without_key
    assert orjson.loads(body)["tenant_id"] == "globex"
    assert orjson.loads(body)["metadata"] == {"k": 1}


def test_local_validation_fails_before_any_request() -> None:
    api = ScriptedAPI((500, {}, b""))
    with MapperClient("http://mapper", transport=httpx.MockTransport(api.handler)) as client:
        with pytest.raises(ValueError, match="tenant_id is required"):
            client.map("presidio", "US_SSN")
        with pytest.raises(ValidationError):
            client.map("not a detector name!", "US_SSN", tenant_id="acme")
    assert api.requests == []
    with pytest.raises(ValueError, match="max_retries"):
        MapperClient("http://mapper", max_retries=-1)


def test_parse_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:10 GMT", now=lambda: now) == 10.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=lambda: now) == 0.0
    assert parse_retry_after("-1") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_context_manager_closes() -> None:
    client = MapperClient("http://mapper")
    with client:
        pass
    assert client._http.is_closed


async def test_async_client_retries_and_reuses_the_key(ok: Answer, batch_ok: Answer) -> None:
    api = ScriptedAPI(error(429, "RATE_LIMITED", True, **{"Retry-After": "4"}), ok)
    sleeps: list[float] = []
    async with async_client(api, sleeps) as client:
        result = await client.map("presidio", "US_SSN")
    assert result.taxonomy == ["PII.Identifier.SSN"]
    assert sleeps == [4.0]

    api = ScriptedAPI(
        error(503, "BACKEND_UNAVAILABLE", True), httpx.ConnectError("refused"), batch_ok
    )
    sleeps = []
    async with async_client(api, sleeps) as client:
        batch = await client.map_batch([{"detector": "presidio", "output": "US_SSN"}])
    assert batch.succeeded == 1
    assert len(sleeps) == 2
    assert len(set(api.keys)) == 1
    assert api.keys[0] is not None


async def test_async_client_gives_up_on_4xx_and_after_retries() -> None:
    api = ScriptedAPI(error(422, "INVALID_OUTPUT", False))
    sleeps: list[float] = []
    async with async_client(api, sleeps) as client:
        with pytest.raises(MapperAPIError) as caught:
            await client.map("presidio", {"bad": "shape"})
    assert caught.value.error_code == "INVALID_OUTPUT"
    assert len(api.requests) == 1

    api = ScriptedAPI(error(504, "GATEWAY_TIMEOUT", True))
    async with async_client(api, sleeps, max_retries=2) as client:
        with pytest.raises(MapperAPIError) as caught:
            await client.health()
    assert caught.value.status == 504
    assert len(api.requests) == 3
    assert len(sleeps) == 2
