"""`mapper audit anchor` / `verify` end to end with the s3 backend on the real SeaweedFS,
and each S3 failure as one clear CLI line."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from tests.audit.store_support import make_event
from tests.objects.support import admin_client, bucket, use_s3_settings
from tests.servicecheck import S3_ADMIN
from typer.testing import CliRunner

from llama_mapper.audit import EventStore
from llama_mapper.audit.anchors import ANCHOR_SECRET
from llama_mapper.cli import audit_cmd
from llama_mapper.secrets import env_var_name
from llama_mapper.storage.db.engine import SQLITE_FILE, create_engine
from llama_mapper.storage.db.migrate import upgrade

runner = CliRunner()


async def _append(db: Path, tenant: str, numbers: range) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        await upgrade(engine)
        await EventStore(engine).append([make_event(tenant, n) for n in numbers])
    finally:
        await engine.dispose()


@pytest.fixture
def db(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(env_var_name(ANCHOR_SECRET), "s3-test-anchor-key")
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / SQLITE_FILE
    asyncio.run(_append(path, "acme", range(1, 9)))
    return path


def test_anchor_and_verify_through_s3_object_lock(
    db: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = use_s3_settings(monkeypatch, locked=True)
    result = runner.invoke(audit_cmd.app, ["anchor"])
    assert result.exit_code == 0, result.output
    assert "store: s3, write-once by object-lock" in result.output
    assert "COMPLIANCE" in result.output
    assert "anchored acme at seq 8" in result.output

    endpoint, name = bucket(locked=True)
    raw = admin_client(endpoint)
    listed = raw.list_objects_v2(Bucket=name, Prefix=f"{prefix}/")["Contents"]
    keys = [item["Key"] for item in listed]
    assert len(keys) == 1
    assert keys[0].startswith(f"{prefix}/anchors/acme/000000000008-")
    assert raw.head_object(Bucket=name, Key=keys[0])["ObjectLockMode"] == "COMPLIANCE"
    assert not (state_dir / "objects").exists()  # nothing went to the local folder

    assert "nothing to anchor" in runner.invoke(audit_cmd.app, ["anchor"]).output
    result = runner.invoke(audit_cmd.app, ["verify", "-t", "acme"])
    assert result.exit_code == 0, result.output
    assert "anchor: seq 8 verified" in result.output

    # Cut off the newest events with the head row: the anchor in S3 catches it.
    with sqlite3.connect(db) as connection:
        connection.execute("DELETE FROM audit_events WHERE tenant_id = 'acme' AND seq > 6")
        (hash6,) = connection.execute(
            "SELECT hash FROM audit_events WHERE tenant_id = 'acme' AND seq = 6"
        ).fetchone()
        connection.execute(
            "UPDATE audit_heads SET seq = 6, hash = ? WHERE tenant_id = 'acme'", (hash6,)
        )
    connection.close()
    result = runner.invoke(audit_cmd.app, ["verify", "-t", "acme"])
    assert result.exit_code == 1
    assert "does not match its anchor at seq 8" in result.output


def test_bucket_without_lock_is_reported_as_weaker(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_s3_settings(monkeypatch, locked=False)
    result = runner.invoke(audit_cmd.app, ["anchor", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["store"]["locked"] is False
    assert report["store"]["mechanism"] == "if-none-match"
    assert "CANNOT LOCK" in report["store"]["detail"]
    assert [a["seq"] for a in report["anchored"]] == [8]
    assert "anchor: seq 8 verified" in runner.invoke(audit_cmd.app, ["verify", "-t", "acme"]).output


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error: ")
    assert "Traceback" not in output
    return lines[0]


@pytest.mark.parametrize("command", [["anchor"], ["verify", "-t", "acme"]])
def test_wrong_credentials_are_one_line(
    db: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    use_s3_settings(monkeypatch, credentials=(S3_ADMIN[0], "wrong-secret-value-789"))
    result = runner.invoke(audit_cmd.app, command)
    assert result.exit_code == 1
    line = _one_error_line(result.output)
    assert "refused the credentials (SignatureDoesNotMatch)" in line
    assert "wrong-secret-value-789" not in result.output

    use_s3_settings(monkeypatch, credentials=("no-such-access-key", "whatever-secret-000"))
    result = runner.invoke(audit_cmd.app, command)
    assert result.exit_code == 1
    assert "InvalidAccessKeyId" in _one_error_line(result.output)
    assert "whatever-secret-000" not in result.output


def test_missing_bucket_is_one_line(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_s3_settings(monkeypatch, bucket_name="mapper-missing-bucket")
    result = runner.invoke(audit_cmd.app, ["anchor"])
    assert result.exit_code == 1
    line = _one_error_line(result.output)
    assert "bucket 'mapper-missing-bucket' does not exist at http://127.0.0.1:" in line


def test_unreachable_endpoint_is_one_line(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_s3_settings(monkeypatch)
    monkeypatch.setenv("LLAMA_MAPPER_OBJECT_STORE__ENDPOINT_URL", "http://127.0.0.1:9")
    result = runner.invoke(audit_cmd.app, ["anchor"])
    assert result.exit_code == 1
    assert "endpoint http://127.0.0.1:9 unreachable" in _one_error_line(result.output)


def test_s3_without_bucket_setting_is_one_line(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMA_MAPPER_OBJECT_STORE__BACKEND", "s3")
    result = runner.invoke(audit_cmd.app, ["anchor"])
    assert result.exit_code == 1
    assert "object_store.bucket must be set" in _one_error_line(result.output)


def test_unsafe_prefix_setting_is_one_line(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMA_MAPPER_OBJECT_STORE__PREFIX", "../elsewhere")
    result = runner.invoke(audit_cmd.app, ["anchor"])
    assert result.exit_code == 1
    assert "invalid object key '../elsewhere'" in _one_error_line(result.output)
