"""`mapper model list|register|show|promote|rollback|history` on the local store and S3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.objects.support import use_s3_settings
from typer.testing import CliRunner

from llama_mapper.cli.main import app as mapper
from llama_mapper.model.artifact import CARD, DEFAULT_MODEL_DIR, read_json, write_json

from .registry_support import model_folder

runner = CliRunner()
SHIPPED = read_json(DEFAULT_MODEL_DIR / CARD)


@pytest.fixture(params=["local", "s3"])
def backend(
    request: pytest.FixtureRequest, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    if request.param == "s3":
        use_s3_settings(monkeypatch, locked=False)
    return str(request.param)


def invoke(*args: str, code: int = 0) -> Any:
    result = runner.invoke(mapper, ["model", *args])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


def as_json(*args: str, code: int = 0) -> Any:
    result = invoke(*args, "--json", code=code)
    return json.loads(result.stdout if code == 0 else result.stderr)


def test_register_list_promote_rollback_show(backend: str, tmp_path: Path) -> None:
    one = model_folder(tmp_path, "embedding-30.0.0", top1=0.71)
    two = model_folder(tmp_path, "embedding-30.1.0", top1=0.79)
    result = invoke("register", str(one))
    assert result.stdout.startswith("registered embedding-30.0.0 (embedding, 8 files,")
    again = invoke("register", str(one))
    assert "already registered with these exact files" in again.stdout
    registered = as_json("register", str(two))
    assert registered["created"] is True
    assert registered["model"]["version"] == "embedding-30.1.0"

    assert invoke("promote", "embedding-30.0.0").stdout == (
        "production: embedding-30.0.0 (was nothing)\n"
    )
    promoted = as_json("promote", "embedding-30.1.0", "--stage", "production")
    assert promoted["changed"] is True
    assert promoted["record"]["previous"] == "embedding-30.0.0"
    invoke("promote", "embedding-30.0.0", "--stage", "staging")

    listed = as_json("list")["models"]
    assert [m["version"] for m in listed] == ["embedding-30.0.0", "embedding-30.1.0"]
    by_version = {m["version"]: m for m in listed}
    assert by_version["embedding-30.1.0"]["stages"] == ["production"]
    assert by_version["embedding-30.0.0"]["stages"] == ["staging"]
    assert by_version["embedding-30.1.0"]["metrics"] == {
        "top1_accuracy": 0.79,
        "ece": SHIPPED["metrics"]["overall"]["ece"],
    }
    first = by_version["embedding-30.0.0"]
    assert first["kind"] == "embedding"
    assert first["base_model"] == SHIPPED["base_model"]
    assert first["data_hash"] == SHIPPED["data_hash"]
    assert first["date"] == SHIPPED["date"]
    table = invoke("list").stdout.splitlines()
    assert table[0].split()[:6] == ["VERSION", "KIND", "DATE", "TOP-1", "ECE", "STAGES"]
    assert table[2].split()[:7] == [
        "embedding-30.1.0",
        "embedding",
        SHIPPED["date"],
        "0.7900",
        f"{SHIPPED['metrics']['overall']['ece']:.4f}",
        "production",
        SHIPPED["data_hash"][:12],
    ]

    shown = as_json("show", "embedding-30.1.0")
    assert shown["card"] == {**read_json(two / CARD)}
    assert shown["model"]["stages"] == ["production"]
    text = invoke("show", "embedding-30.1.0").stdout
    assert "serving on:  production" in text
    assert f"data hash:   {SHIPPED['data_hash']}" in text

    back = invoke("rollback")
    assert back.stdout == "production: rolled back to embedding-30.0.0 (was embedding-30.1.0)\n"
    history = as_json("history", "--stage", "production")["records"]
    assert [(r["seq"], r["action"], r["version"]) for r in history] == [
        (1, "promote", "embedding-30.0.0"),
        (2, "promote", "embedding-30.1.0"),
        (3, "rollback", "embedding-30.0.0"),
    ]


def test_refusals_exit_2_with_one_line(backend: str, tmp_path: Path) -> None:
    error = invoke("rollback", code=2)
    assert error.stderr == (
        "error: nothing to roll back to on stage 'production': nothing was promoted there yet\n"
    )
    refused = as_json("promote", "embedding-0.0.9", code=2)
    assert refused["error"]["message"].startswith("unknown model version 'embedding-0.0.9'")
    assert "not a model folder" in invoke("register", str(tmp_path / "none"), code=2).stderr
    assert "unknown model version" in invoke("show", "embedding-0.0.9", code=2).stderr
    folder = model_folder(tmp_path, "embedding-31.0.0")
    invoke("register", str(folder))
    card = read_json(folder / CARD)
    card["seed"] = 1
    write_json(folder / CARD, card)
    changed = invoke("register", str(folder), code=2).stderr
    assert "embedding-31.0.0 is already registered with other files" in changed
    assert (
        "invalid stage" in invoke("promote", "embedding-31.0.0", "--stage", "Prod", code=2).stderr
    )
    invoke("promote", "embedding-31.0.0")
    only = invoke("rollback", code=2).stderr
    assert "embedding-31.0.0 is the only version promoted there" in only


def test_an_unreachable_store_exits_1(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_s3_settings(monkeypatch, locked=False)
    monkeypatch.setenv("LLAMA_MAPPER_OBJECT_STORE__ENDPOINT_URL", "http://127.0.0.1:9")
    result = invoke("list", code=1)
    assert "unreachable" in result.stderr
