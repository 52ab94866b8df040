"""The SDK against the real app: a uvicorn server on loopback, and the app in-process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from llama_mapper.api.app import create_app
from llama_mapper.client import (
    AsyncMapperClient,
    BatchItemError,
    BatchResponse,
    MapperAPIError,
    MapperClient,
    MapperConnectionError,
    MapperPayload,
    MappingResponse,
)
from llama_mapper.config.settings import load_settings

PROSE = (
    "this is the full text of a user message that somebody pasted into the output field "
    "instead of the detector labels and it goes on and on"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def live_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state = tmp_path_factory.mktemp("state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LLAMA_MAPPER_STATE_DIR", str(state))
        patch.setenv("LLAMA_MAPPER_AUTH__ENABLED", "false")
        patch.delenv("LLAMA_MAPPER_CONFIG", raising=False)
        yield state


@pytest.fixture(scope="module")
def server(live_env: Path) -> Iterator[str]:
    """A real uvicorn server in a thread: real sockets, real HTTP parsing, real lifespan."""
    port = free_port()
    config = uvicorn.Config(
        create_app(load_settings()), host="127.0.0.1", port=port, log_level="warning"
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert thread.is_alive(), "server exited"
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=10)


def test_map_returns_a_typed_response(server: str) -> None:
    with MapperClient(server, tenant_id="acme") as client:
        result = client.map("presidio", "US_SSN|ZODIAC_SIGN", metadata={"source": "sdk-test"})
    assert isinstance(result, MappingResponse)
    assert set(result.taxonomy) == {"PII.Identifier.SSN", "OTHER.Unknown"}
    assert result.provenance.tenant_id == "acme"
    assert result.provenance.detector == "presidio"
    assert result.provenance.unmapped_labels == ["ZODIAC_SIGN"]
    assert result.version_info.taxonomy


def test_map_batch_mixes_results_and_item_errors(server: str) -> None:
    sleeps: list[float] = []
    with MapperClient(server, tenant_id="acme", sleep=sleeps.append) as client:
        batch = client.map_batch(
            [
                MapperPayload(detector="presidio", output="US_SSN", tenant_id="globex"),
                {"detector": "presidio", "output": ["EMAIL_ADDRESS"]},  # tenant from client
                {"detector": "presidio"},  # no output: an item error, not a failed batch
            ]
        )
    assert isinstance(batch, BatchResponse)
    assert (batch.succeeded, batch.failed) == (2, 1)
    first, second, third = batch.results
    assert isinstance(first, MappingResponse)
    assert first.provenance.tenant_id == "globex"
    assert isinstance(second, MappingResponse)
    assert second.provenance.tenant_id == "acme"
    assert isinstance(third, BatchItemError)
    assert third.error.error_code
    assert not third.error.retryable
    assert sleeps == []


def test_server_errors_are_parsed_and_not_retried(server: str) -> None:
    sleeps: list[float] = []
    client = MapperClient(server, tenant_id="acme", sleep=sleeps.append)
    with client, pytest.raises(MapperAPIError) as caught:
        client.map("presidio", PROSE)
    error = caught.value
    assert 400 <= error.status < 500
    assert error.error_code == "RAW_CONTENT_REJECTED"
    assert len(error.request_id) == 32
    assert error.retryable is False
    assert "raw content" in error.message
    assert sleeps == []


def test_health_and_ready(server: str) -> None:
    with MapperClient(server) as client:
        assert client.health() == {"status": "ok"}
        ready = client.ready()
    assert ready["status"] == "ready"
    assert "catalog" in ready["checks"]


async def test_async_client_against_the_live_server(server: str) -> None:
    async with AsyncMapperClient(server, tenant_id="acme") as client:
        result = await client.map("openai-moderation", ["violence"])
        batch = await client.map_batch([{"detector": "presidio", "output": "US_SSN"}])
        assert (await client.health())["status"] == "ok"
    assert result.taxonomy
    assert batch.succeeded == 1


async def test_async_client_in_process_over_asgi(live_env: Path) -> None:
    transport = httpx.ASGITransport(app=create_app(load_settings()))
    async with AsyncMapperClient("http://mapper", tenant_id="acme", transport=transport) as client:
        result = await client.map("presidio", "US_SSN")
        assert result.taxonomy == ["PII.Identifier.SSN"]
        key = "sdk-live-replay-1"
        first = await client.map_batch([{"detector": "presidio", "output": "US_SSN"}], key)
        again = await client.map_batch([{"detector": "presidio", "output": "US_SSN"}], key)
    assert again == first  # replayed by the server: same request ids, same timestamps


def test_connection_refused_is_retried_then_raised() -> None:
    sleeps: list[float] = []
    client = MapperClient(f"http://127.0.0.1:{free_port()}", max_retries=2, sleep=sleeps.append)
    with client, pytest.raises(MapperConnectionError):
        client.health()
    assert len(sleeps) == 2
