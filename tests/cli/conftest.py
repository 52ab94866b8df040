"""Shared fixtures for the ``mapper`` CLI tests.

Every test runs with its own state directory (``LLAMA_MAPPER_STATE_DIR``) and with the
temporary directory as working directory, so nothing is written inside the repository and
no ``LLAMA_MAPPER_*`` variable of the developer's shell leaks in.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llama_mapper.cli.main import app

Result = Any  # typer.testing's Result (from its vendored click)

ENV_PREFIX = "LLAMA_MAPPER_"

#: A real omni-moderation-latest response body: all 13 categories, scores as the API sends them.
OPENAI_SCORES: dict[str, float] = {
    "harassment": 0.8189693396524255,
    "harassment/threatening": 0.804985420696006,
    "hate": 0.007562942636942845,
    "hate/threatening": 0.004208854591835476,
    "illicit": 0.030535955153511665,
    "illicit/violent": 0.008925306722380033,
    "self-harm": 0.012305162449746755,
    "self-harm/intent": 0.00023023930975076432,
    "self-harm/instructions": 0.0002293869201073356,
    "sexual": 1.573112165348997e-06,
    "sexual/minors": 5.920916517463734e-07,
    "violence": 0.9999992735124786,
    "violence/graphic": 0.843064871157054,
}
OPENAI_RESPONSE: dict[str, Any] = {
    "id": "modr-0d9740456c391e43c445bf0f010940c7",
    "model": "omni-moderation-latest",
    "results": [
        {
            "flagged": True,
            "categories": {name: score > 0.5 for name, score in OPENAI_SCORES.items()},
            "category_scores": OPENAI_SCORES,
        }
    ],
}

#: Prose a client must never send as detector output (over the guard's word limit).
PROSE = (
    "Dear Ms Whitfield, thank you for your letter of the ninth. I am writing to confirm that "
    "the surgery on your left knee is booked for Tuesday morning at the Riverside clinic, and "
    "that you should not eat anything after midnight the evening before your appointment."
)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment and a private state directory for every test."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    state = tmp_path / "state"
    monkeypatch.setenv("LLAMA_MAPPER_STATE_DIR", str(state))
    # These are the rules' contract tests; tests/model/ runs the CLI with the tier on.
    monkeypatch.setenv("LLAMA_MAPPER_LEARNED__ENABLED", "false")
    monkeypatch.chdir(tmp_path)
    return state


@pytest.fixture
def state_dir(isolated: Path) -> Path:
    return isolated


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Invoke the typer app in-process: ``cli("map", "-d", ..., input=...)``."""
    runner = CliRunner()

    def invoke(*args: str, input: str | bytes | None = None) -> Result:
        return runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=True)

    return invoke


@pytest.fixture
def ok(cli: Callable[..., Result]) -> Callable[..., Result]:
    """Like ``cli`` but asserts exit code 0 and no traceback."""

    def invoke(*args: str, input: str | bytes | None = None) -> Result:
        result = cli(*args, input=input)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            result.exception
        )
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return result

    return invoke


@pytest.fixture
def mapper_bin() -> str:
    path = shutil.which("mapper")
    assert path is not None, "the `mapper` console script is not installed (pip install -e .)"
    return path


@pytest.fixture
def run_mapper(
    mapper_bin: str, tmp_path: Path
) -> Callable[..., subprocess.CompletedProcess[bytes]]:
    """Run the installed console script as a user would, with the isolated environment."""

    def run(
        *args: str,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        full_env = {**os.environ, **(env or {})}  # already holds LLAMA_MAPPER_STATE_DIR
        return subprocess.run(
            [mapper_bin, *map(str, args)],
            input=input,
            capture_output=True,
            env=full_env,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )

    return run


@pytest.fixture
def openai_response() -> dict[str, Any]:
    return json.loads(json.dumps(OPENAI_RESPONSE))


@pytest.fixture
def openai_output() -> Callable[..., str]:
    """``openai_output({"harassment": 0.6})``: a moderation response with only those scores."""

    def build(scores: dict[str, float]) -> str:
        return json.dumps({"results": [{"flagged": False, "category_scores": scores}]})

    return build


@pytest.fixture
def prose() -> str:
    return PROSE


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    """A writable copy of the packaged data folder (taxonomy, frameworks, packs)."""
    from llama_mapper.catalog import PACKAGED_DATA

    dest = tmp_path / "data"
    shutil.copytree(PACKAGED_DATA, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest
