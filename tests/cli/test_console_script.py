"""The installed ``mapper`` console script, run as a user would (one process per call)."""

from __future__ import annotations

import json
import os

from llama_mapper.catalog import load_catalog


def test_help(run_mapper):
    proc = run_mapper("--help")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert "Usage: mapper [OPTIONS] COMMAND [ARGS]..." in out
    for command in ("map", "batch", "serve", "taxonomy", "detectors", "validate-config"):
        assert command in out
    assert proc.stderr == b""


def test_map(run_mapper, openai_response, state_dir):
    proc = run_mapper(
        "map",
        "--detector",
        "openai-moderation",
        "--output",
        json.dumps(openai_response),
        env={"LLAMA_MAPPER_STATE_DIR": str(state_dir)},
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["taxonomy"] == [
        "HARM.VIOLENCE.Physical",
        "HARM.SPEECH.Harassment",
        "HARM.SPEECH.Threat",
    ]
    assert data["provenance"]["route"] == "cli:map"
    assert data["version_info"]["taxonomy"] == load_catalog().taxonomy.version
    # The first run generates the fingerprint key for the evidence store and says so once.
    other = [line for line in proc.stderr.splitlines() if not line.startswith(b"generated secret")]
    assert other == []


def test_batch_file(run_mapper, tmp_path, state_dir):
    rows = [
        json.dumps({"detector": "deberta-toxicity", "output": "toxic", "tenant_id": "t"}),
        "{oops",
        json.dumps({"detector": "deberta-toxicity", "output": "never_seen", "tenant_id": "t"}),
        json.dumps({"detector": "deberta-toxicity", "output": {"insult": 0.9}, "tenant_id": "t"}),
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out.jsonl"
    env = {"LLAMA_MAPPER_STATE_DIR": str(state_dir)}
    proc = run_mapper("batch", src, "-o", out, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b""
    lines = [line for line in proc.stderr.splitlines() if not line.startswith(b"generated secret")]
    assert lines == [b"mapped 3 of 4 lines (1 errors)"]
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(got) == 4
    assert got[0]["taxonomy"] == ["HARM.SPEECH.Toxicity"]
    assert got[0]["provenance"]["request_id"] == "line-1"
    assert got[1] == {
        "error": {
            "error_code": "INVALID_JSON",
            "message": "line is not valid JSON",
            "request_id": "line-2",
            "retryable": False,
        }
    }
    assert got[2]["taxonomy"] == ["OTHER.Unknown"]
    assert got[2]["provenance"]["request_id"] == "line-3"
    assert got[3]["taxonomy"] == ["HARM.SPEECH.Insult"]
    assert got[3]["provenance"]["request_id"] == "line-4"
    assert json.loads((state_dir / "unmapped.json").read_text()) == [
        {"detector": "deberta-toxicity", "label": "never_seen", "count": 1}
    ]
    assert not (tmp_path / ".llama-mapper").exists()


def test_batch_stdin_never_echoes_raw_content(run_mapper, prose, state_dir):
    lines = [
        json.dumps({"detector": "deberta-toxicity", "output": prose, "tenant_id": "t"}),
        json.dumps({"detector": "deberta-toxicity", "output": "OK", "tenant_id": "t"}),
    ]
    proc = run_mapper(
        "batch",
        "-",
        input=("\n".join(lines) + "\n").encode(),
        env={"LLAMA_MAPPER_STATE_DIR": str(state_dir)},
    )
    assert proc.returncode == 0, proc.stderr
    got = [json.loads(line) for line in proc.stdout.splitlines()]
    assert got[0]["error"]["error_code"] == "RAW_CONTENT_REJECTED"
    assert got[1]["taxonomy"] == ["OTHER.Safe"]
    for fragment in (b"Whitfield", b"surgery", prose[:40].encode()):
        assert fragment not in proc.stdout
        assert fragment not in proc.stderr


def test_invalid_config_is_one_line_without_traceback(run_mapper, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("serving: [\n")
    proc = run_mapper("validate-config", "--config", bad, env=dict(os.environ))
    assert proc.returncode == 1
    assert proc.stdout == b""
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {bad}: invalid YAML")
    assert b"Traceback" not in proc.stderr
