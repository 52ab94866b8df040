"""Fixtures for the orch core tests: loopback detector servers, an orch runtime on a real
database (SQLite file or a fresh PostgreSQL database), the in-process mapper, and a tiny
built-in detector class speaking the regex-pii pack's native shape."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.db.support import postgres_database
from tests.orch.core.servers import DetectorServer, detector_app, serve
from tests.redis_fixtures import redis_client, redis_factory

from detector_orchestration.api.app import create_app
from detector_orchestration.config import OrchSettings
from detector_orchestration.detectors.base import DetectorOutput, Span
from detector_orchestration.registry.model import DetectorSpec
from detector_orchestration.runtime import OrchRuntime, build_orch_runtime
from llama_mapper.config.settings import load_settings
from llama_mapper.storage.db.migrate import upgrade

__all__ = ["redis_client", "redis_factory"]

PHONE = re.compile(r"\+\d{11,14}")


class TinyPhoneDetector:
    """An in-test built-in: finds E.164 numbers and answers in regex-pii's native shape."""

    name = "tiny-phone"
    pack = "regex-pii"
    version = "test@1"
    content_types = frozenset({"text/plain"})

    def __init__(self) -> None:
        self.calls = 0

    async def detect(self, content: str, content_type: str) -> DetectorOutput:
        self.calls += 1
        found = [(m.start(), m.end()) for m in PHONE.finditer(content)]
        output = [{"label": "phone", "start": s, "end": e, "score": 0.95} for s, e in found]
        return DetectorOutput(output, tuple(Span(s, e, "phone", 0.95) for s, e in found))


@pytest.fixture
def redis_prefix() -> str:
    return f"lmtest:orch:{uuid.uuid4().hex}:"


@pytest.fixture(scope="session")
def detector_server() -> Iterator[DetectorServer]:
    server = DetectorServer()
    with serve(detector_app(server)) as url:
        server.url = url
        yield server


@pytest.fixture
def detectors(detector_server: DetectorServer) -> DetectorServer:
    """The shared server with this test's behaviours only (names are per test anyway)."""
    detector_server.behaviour.clear()
    detector_server.calls.clear()
    detector_server.bodies.clear()
    detector_server.headers.clear()
    return detector_server


@pytest.fixture
def orch_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("LLAMA_MAPPER_STATE_DIR", str(state))
    monkeypatch.delenv("LLAMA_MAPPER_CONFIG", raising=False)
    monkeypatch.delenv("ORCH_CONFIG", raising=False)
    monkeypatch.setenv("LLAMA_MAPPER_AUTH__ENABLED", "false")
    return state


RuntimeFactory = Callable[..., AbstractAsyncContextManager[OrchRuntime]]


@pytest.fixture
def make_runtime(orch_env: Path) -> RuntimeFactory:
    @asynccontextmanager
    async def make(
        *,
        database_url: str | None = None,
        builtins: dict[str, Any] | None = None,
        mapper: dict[str, Any] | None = None,
        mapper_link: dict[str, Any] | None = None,
        **orch: Any,
    ) -> AsyncIterator[OrchRuntime]:
        overrides: dict[str, Any] = dict(mapper or {})
        if database_url is not None:
            overrides["database"] = {"url": database_url}
        if mapper_link is not None:
            orch["mapper"] = mapper_link
        settings = OrchSettings(**orch)
        runtime = build_orch_runtime(
            settings, load_settings(**overrides), builtins=builtins if builtins is not None else {}
        )
        await upgrade(runtime.shared.engine)
        try:
            yield runtime
        finally:
            await runtime.aclose()

    return make


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with postgres_database() as url:
        yield url


@asynccontextmanager
async def api(runtime: OrchRuntime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime=runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://orch") as http:
        yield http


def fms_spec(name: str, endpoint: str, **kwargs: Any) -> DetectorSpec:
    return DetectorSpec(
        name=name,
        kind="fms",
        endpoint=endpoint,
        pack="fms-detector",
        settings={"detector_id": f"{name}-v1"},
        **kwargs,
    )


async def submit_active(runtime: OrchRuntime, tenant: str, document: str) -> int:
    version = await runtime.policy_store.submit(tenant, document)
    await runtime.policy_store.approve(tenant, version.bundle, version.version)
    runtime.policies.invalidate()
    return version.version


def bundle_yaml(
    name: str,
    required: list[str],
    optional: list[str] | None = None,
    **decision: Any,
) -> str:
    import yaml

    doc: dict[str, Any] = {
        "name": name,
        "detectors": {"required": required, "optional": optional or []},
        "coverage": decision.pop("coverage", {"method": "required_set", "minimum": 1.0}),
        "decision": {
            "block_labels": ["SECRET.*", "JAILBREAK.*"],
            "redact_labels": ["PII.*"],
            **decision,
        },
    }
    if "deadline_ms" in doc["decision"]:
        doc["deadline_ms"] = doc["decision"].pop("deadline_ms")
    if "conflicts" in doc["decision"]:
        doc["conflicts"] = doc["decision"].pop("conflicts")
    return yaml.safe_dump(doc)
