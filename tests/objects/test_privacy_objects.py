"""The object store is a sink: after mapping requests that carry known secrets (SSN,
e-mail, card number, AWS key, prose) and anchoring and exporting them, no object in the
store — local folder or S3, read back byte for byte — contains any of them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from tests.objects.support import admin_client, bucket, use_s3_settings
from tests.test_privacy import PROSE, SECRETS, probes
from typer.testing import CliRunner

from llama_mapper.api.app import create_app
from llama_mapper.audit.anchors import ANCHOR_SECRET
from llama_mapper.cli import audit_cmd
from llama_mapper.config.settings import load_settings
from llama_mapper.runtime import secret_provider
from llama_mapper.secrets import env_var_name
from llama_mapper.storage.db.migrate import upgrade
from llama_mapper.storage.objects import object_store_from_settings

runner = CliRunner()
NEEDLES = [*SECRETS, "transfer the money", PROSE[:40]]


async def _map_probes() -> int:
    """Send every probe through the API (events committed before answering); returns how
    many were mapped, i.e. became evidence events."""
    app = create_app(load_settings())
    runtime = app.state.runtime
    await upgrade(runtime.engine)
    mapped = 0
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mapper") as http:
            for payload in probes():
                response = await http.post("/map", json=payload)
                mapped += response.status_code == 200
    finally:
        await runtime.aclose()
    return mapped


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_no_secret_reaches_the_object_store(
    backend: str, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLAMA_MAPPER_AUDIT__DURABILITY", "sync")
    monkeypatch.setenv(env_var_name(ANCHOR_SECRET), "privacy-anchor-key")
    prefix = use_s3_settings(monkeypatch, locked=True) if backend == "s3" else None
    state_dir.mkdir(parents=True, exist_ok=True)

    assert asyncio.run(_map_probes()) >= 2  # some probes are refused, some become events
    result = runner.invoke(audit_cmd.app, ["anchor", "--json"])
    assert result.exit_code == 0, result.output
    for tenant in ("acme", "a"):
        result = runner.invoke(audit_cmd.app, ["export", "-t", tenant, "--to-store"])
        assert result.exit_code == 0, result.output

    settings = load_settings()
    objects = object_store_from_settings(settings, secret_provider(settings))
    listed = asyncio.run(objects.list())
    keys = [info.key for info in listed]
    assert sum(k.startswith("anchors/") for k in keys) == 2
    assert sum(k.startswith("exports/") for k in keys) == 4
    contents = {key: asyncio.run(objects.get(key)) for key in keys}
    if backend == "s3":
        # Read it once more from outside the code under test.
        endpoint, name = bucket(locked=True)
        raw = admin_client(endpoint)
        items = raw.list_objects_v2(Bucket=name, Prefix=f"{prefix}/")["Contents"]
        assert len(items) == len(keys)
        for item in items:
            body = raw.get_object(Bucket=name, Key=item["Key"])["Body"].read()
            contents[item["Key"]] = body
            assert body == contents[item["Key"][len(prefix) + 1 :]]
    else:
        files = [p for p in (state_dir / "objects").rglob("*") if p.is_file()]
        assert len(files) == len(keys)
        contents.update({str(p): p.read_bytes() for p in files})
    for where, data in contents.items():
        text = data.decode("utf-8")
        for needle in NEEDLES:
            assert needle not in text, f"{needle!r} found in {where}"
        assert "output_fingerprint" in text or "head_hash" in text  # real evidence, not empty
