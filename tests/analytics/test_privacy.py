"""Known secrets sent through /map and /map/batch never reach ClickHouse: not its tables,
not its files on disk, not the shipper's logs."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from tests.analytics.support import KEEP_DAYS, embedded_target, select
from tests.test_privacy import PROSE, SECRETS, probes

from llama_mapper.analytics import ship
from llama_mapper.api.app import create_app
from llama_mapper.catalog import Catalog
from llama_mapper.config.settings import load_settings
from llama_mapper.runtime import build_runtime
from llama_mapper.service import MapperService
from llama_mapper.storage.db.migrate import upgrade

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
NEEDLES = [*SECRETS, AWS_SECRET, "transfer the money", "friday noon"]


def _requests() -> list[dict[str, object]]:
    extra = [
        {"detector": "detect-secrets", "output": f"AWS Key {AWS_SECRET}", "tenant_id": "acme"},
        {
            "detector": "presidio",
            "output": "US_SSN",
            "tenant_id": "acme",
            "metadata": {"note": PROSE, "key": AWS_SECRET},
        },
        {
            "detector": "regex-pii",
            "output": [{"label": "EMAIL", "match": SECRETS[1]}],
            "tenant_id": "acme",
        },
    ]
    return [*probes(), *extra]


async def test_secrets_reach_no_clickhouse_table_file_or_log(
    state_dir: Path, catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = load_settings()
    runtime = build_runtime(settings, service=MapperService(settings, catalog))
    await upgrade(runtime.engine)
    app = create_app(runtime=runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
        answered = 0
        for payload in _requests():
            response = await client.post("/map", json=payload)
            assert response.status_code < 500
            answered += response.status_code == 200
        batch = await client.post("/map/batch", json={"requests": _requests()})
        assert batch.status_code == 200
        answered += sum("error" not in item for item in batch.json()["results"])
    assert runtime.events is not None
    await runtime.events.stop()
    assert answered >= 10, f"the probes must produce events ({answered})"
    target = embedded_target(state_dir)
    report = await ship(runtime.engine, target, retention_days=KEEP_DAYS, batch_size=100)
    await runtime.aclose()
    assert report.total == answered

    tables = select(
        target,
        "SELECT database, name FROM system.tables WHERE database NOT IN "
        "('system', 'INFORMATION_SCHEMA', 'information_schema')",
    )
    assert ("mapper", "events") in tables
    dumps = {
        f"{db}.{name}": str(select(target, f"SELECT * FROM {db}.{name}")) for db, name in tables
    }
    assert "PII." in dumps["mapper.events"]  # the dump holds the shipped events
    assert target.folder is not None
    files = {str(path): path.read_bytes() for path in target.folder.rglob("*") if path.is_file()}
    assert files
    for needle in NEEDLES:
        for name, text in {**dumps, "logs": caplog.text}.items():
            assert needle not in text, f"{needle!r} reached {name}"
        for name, data in files.items():
            assert needle.encode() not in data, f"{needle!r} reached {name}"
