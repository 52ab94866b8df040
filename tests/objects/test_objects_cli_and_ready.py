"""`mapper objects list|get` and the `/ready` line of the object store, local and S3."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from tests.objects.support import use_s3_settings
from tests.servicecheck import S3_ADMIN
from typer.testing import CliRunner

from llama_mapper.api.app import create_app
from llama_mapper.cli.main import app as mapper
from llama_mapper.config.settings import load_settings
from llama_mapper.runtime import secret_provider
from llama_mapper.storage.objects import object_store_from_settings

runner = CliRunner()


@pytest.fixture(params=["local", "s3"])
def backend(
    request: pytest.FixtureRequest, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    if request.param == "s3":
        use_s3_settings(monkeypatch, locked=False)
    settings = load_settings()
    store = object_store_from_settings(settings, secret_provider(settings))
    asyncio.run(store.put("reports/acme/2026-01.json", b'{"r": 1}'))
    asyncio.run(
        store.put("anchors/acme/000000000001-00aa00aa00aa00aa.json", b"{}", write_once=True)
    )
    return str(request.param)


def test_list_and_get(backend: str, tmp_path: Path) -> None:
    result = runner.invoke(mapper, ["objects", "list", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["backend"] == backend
    assert [o["key"] for o in report["objects"]] == [
        "anchors/acme/000000000001-00aa00aa00aa00aa.json",
        "reports/acme/2026-01.json",
    ]
    result = runner.invoke(mapper, ["objects", "list", "--prefix", "reports/"])
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["8", "reports/acme/2026-01.json"]
    if backend == "s3":
        assert "CANNOT LOCK" in result.output  # a bucket without Object Lock says so
    out = tmp_path / "r.json"
    result = runner.invoke(mapper, ["objects", "get", "reports/acme/2026-01.json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == b'{"r": 1}'
    result = runner.invoke(mapper, ["objects", "get", "reports/acme/none.json"])
    assert result.exit_code == 1
    assert "no object 'reports/acme/none.json'" in result.output
    result = runner.invoke(mapper, ["objects", "get", "../etc/passwd"])
    assert result.exit_code == 1
    assert "invalid object key" in result.output


async def _ready() -> dict[str, object]:
    app = create_app(load_settings())
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mapper") as http:
            response = await http.get("/ready")
            body: dict[str, object] = response.json()
            body["http_status"] = response.status_code
            return body
    finally:
        await app.state.runtime.aclose()


def test_ready_reports_lock_and_outages(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checks = asyncio.run(_ready())["checks"]
    assert isinstance(checks, dict)
    assert checks["object_store"].startswith("local: ok, write-once by o_excl")
    assert "anchoring every 3600s" in checks["object_store"]

    use_s3_settings(monkeypatch, locked=True)
    checks = asyncio.run(_ready())["checks"]
    assert isinstance(checks, dict)
    assert "s3: ok, write-once by object-lock" in checks["object_store"]

    use_s3_settings(monkeypatch, locked=False)
    checks = asyncio.run(_ready())["checks"]
    assert isinstance(checks, dict)
    assert "CANNOT LOCK" in checks["object_store"]

    # Mapping does not need the object store: readiness stays, the line says what is wrong.
    use_s3_settings(monkeypatch, credentials=(S3_ADMIN[0], "wrong-ready-secret"))
    ready = asyncio.run(_ready())
    checks = ready["checks"]
    assert isinstance(checks, dict)
    assert checks["object_store"].startswith("s3: down (")
    assert "SignatureDoesNotMatch" in checks["object_store"]
    assert "wrong-ready-secret" not in json.dumps(ready)
    assert ready["http_status"] == 200
