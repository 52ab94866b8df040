"""`mapper audit export --to-store` on the local folder and on SeaweedFS S3, and the
documented offline procedure run on what the store holds: a windowed export's starting
point is confirmed by an anchor inside the window, or stated when there is none."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.audit.store_support import make_event
from tests.objects.support import use_s3_settings
from typer.testing import CliRunner

from llama_mapper.audit import EventStore
from llama_mapper.audit.anchors import ANCHOR_SECRET
from llama_mapper.cli import audit_cmd
from llama_mapper.config.settings import load_settings
from llama_mapper.runtime import secret_provider
from llama_mapper.secrets import env_var_name
from llama_mapper.storage.db.engine import SQLITE_FILE, create_engine
from llama_mapper.storage.db.migrate import upgrade
from llama_mapper.storage.objects import ObjectStore, object_store_from_settings

runner = CliRunner()
DOC = Path(__file__).resolve().parents[2] / "docs" / "audit-verification.md"


def _procedure() -> dict[str, Any]:
    """``verify`` and ``check_anchors`` exactly as docs/audit-verification.md prints them."""
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert code is not None
    namespace: dict[str, Any] = {"__name__": "audit_doc"}
    exec(code.group(1), namespace)
    return namespace


async def _append(db: Path, numbers: range) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        await upgrade(engine)
        await EventStore(engine).append([make_event("acme", n) for n in numbers])
    finally:
        await engine.dispose()


@pytest.fixture(params=["local", "s3"])
def objects(
    request: pytest.FixtureRequest, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> ObjectStore:
    """Anchors at seq 4 and 8 of tenant acme's 8 events, in the store under test."""
    monkeypatch.setenv(env_var_name(ANCHOR_SECRET), "export-test-anchor-key")
    if request.param == "s3":
        use_s3_settings(monkeypatch, locked=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    db = state_dir / SQLITE_FILE
    asyncio.run(_append(db, range(1, 5)))
    assert runner.invoke(audit_cmd.app, ["anchor"]).exit_code == 0
    asyncio.run(_append(db, range(5, 9)))
    assert runner.invoke(audit_cmd.app, ["anchor"]).exit_code == 0
    settings = load_settings()
    return object_store_from_settings(settings, secret_provider(settings))


def _to_store(*window: str) -> str:
    result = runner.invoke(audit_cmd.app, ["export", "-t", "acme", *window, "--to-store"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert re.fullmatch(r"exports/acme/\d{8}T\d{12}Z-\d{12}-\d{12}\.jsonl", key), key
    return key


def _fetch(objects: ObjectStore, key: str, folder: Path) -> tuple[Path, Path]:
    """Download an export and its manifest, as an auditor would."""
    export, manifest = folder / "export.jsonl", folder / "export.jsonl.manifest.json"
    export.write_bytes(asyncio.run(objects.get(key)))
    manifest.write_bytes(asyncio.run(objects.get(key.removesuffix(".jsonl") + ".manifest.json")))
    return export, manifest


WINDOW_3_5 = ("--from", "2026-01-01T00:00:03Z", "--to", "2026-01-01T00:00:06Z")
WINDOW_5_7 = ("--from", "2026-01-01T00:00:05Z", "--to", "2026-01-01T00:00:08Z")


def test_windowed_export_is_anchored_and_verifies_offline(
    objects: ObjectStore, tmp_path: Path
) -> None:
    procedure = _procedure()
    key = _to_store(*WINDOW_3_5)
    assert key.endswith("-000000000003-000000000005.jsonl")
    export, manifest_path = _fetch(objects, key, tmp_path)
    assert [json.loads(line)["seq"] for line in export.read_text().splitlines()] == [3, 4, 5]
    manifest = json.loads(manifest_path.read_text())
    assert manifest["starting_point"] == "anchored"
    assert manifest["first_seq"] == 3
    assert manifest["last_seq"] == 5
    assert [a["seq"] for a in manifest["anchors"]] == [4]
    assert (
        manifest["starting_prev_hash"]
        == json.loads(export.read_text().splitlines()[0])["prev_hash"]
    )
    last = procedure["verify"](str(export))
    assert last == manifest["last_hash"]
    assert procedure["check_anchors"](str(export), str(manifest_path)) == [4]

    # The same bytes as a file export of the same window.
    local = tmp_path / "same.jsonl"
    result = runner.invoke(audit_cmd.app, ["export", "-t", "acme", *WINDOW_3_5, "-o", str(local)])
    assert result.exit_code == 0, result.output
    assert "checkable against the anchor(s) at seq 4" in result.output
    assert local.read_bytes() == export.read_bytes()
    assert (
        json.loads((tmp_path / "same.jsonl.manifest.json").read_text())["anchors"]
        == (manifest["anchors"])
    )


def test_forged_starting_point_is_caught_by_the_anchor(
    objects: ObjectStore, tmp_path: Path
) -> None:
    """Rewrite the window on a different starting prev_hash and re-hash every line: the
    chain check alone accepts it (the start is taken on trust), the anchor does not."""
    procedure = _procedure()
    export, manifest = _fetch(objects, _to_store(*WINDOW_3_5), tmp_path)
    records = [orjson.loads(line) for line in export.read_bytes().splitlines()]
    prev = "f" * 64
    for record in records:
        record["prev_hash"] = prev
        canonical = orjson.dumps(record["event"], option=orjson.OPT_SORT_KEYS)
        prev = record["hash"] = hashlib.sha256(prev.encode() + b"\n" + canonical).hexdigest()
    export.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    procedure["verify"](str(export))
    with pytest.raises(SystemExit, match="anchor at seq 4"):
        procedure["check_anchors"](str(export), str(manifest))


def test_window_without_anchor_states_its_starting_point(
    objects: ObjectStore, tmp_path: Path
) -> None:
    result = runner.invoke(audit_cmd.app, ["export", "-t", "acme", *WINDOW_5_7, "--to-store"])
    assert result.exit_code == 0, result.output
    assert "stated (no anchor inside the window)" in result.output
    export, manifest_path = _fetch(objects, result.stdout.strip(), tmp_path)
    manifest = json.loads(manifest_path.read_text())
    assert manifest["starting_point"] == "stated"
    assert manifest["anchors"] == []
    assert manifest["first_seq"] == 5
    _procedure()["verify"](str(export))

    full = _fetch(objects, _to_store(), tmp_path)
    manifest = json.loads(full[1].read_text())
    assert manifest["starting_point"] == "genesis"
    assert [a["seq"] for a in manifest["anchors"]] == [4, 8]
    assert _procedure()["check_anchors"](str(full[0]), str(full[1])) == [4, 8]


def test_exports_are_write_once_objects_under_exports(objects: ObjectStore) -> None:
    first, second = _to_store(*WINDOW_3_5), _to_store(*WINDOW_3_5)
    assert first != second
    keys = [info.key for info in asyncio.run(objects.list("exports/acme/"))]
    assert (
        sorted([first, second, *(k.replace(".jsonl", ".manifest.json") for k in (first, second))])
        == keys
    )
    with pytest.raises(FileExistsError):
        asyncio.run(objects.put(first, b"rewritten", write_once=True))


def test_export_store_errors_are_one_line(objects: ObjectStore, tmp_path: Path) -> None:
    result = runner.invoke(
        audit_cmd.app, ["export", "-t", "acme", "--to-store", "-o", str(tmp_path / "x")]
    )
    assert result.exit_code == 1
    assert "choose one of --output and --to-store" in result.output
    empty = ("--from", "2027-01-01T00:00:00Z")
    result = runner.invoke(audit_cmd.app, ["export", "-t", "acme", *empty, "--to-store"])
    assert result.exit_code == 1
    assert "no events of acme in that window" in result.output
