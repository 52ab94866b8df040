"""``mapper batch``: JSONL in, exactly one JSONL line out per input line, in order."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

_TS = re.compile(rb'"ts":"[^"]*"')


def strip_ts(data: bytes) -> bytes:
    """Drop the one non-deterministic field, ``provenance.ts``."""
    return _TS.sub(b'"ts":""', data)


def write_jsonl(path: Path, rows: list[Any], *, newline: str = "\n") -> Path:
    """Dicts are dumped as JSON; strings are written verbatim (to make bad lines)."""
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_bytes((newline.join(lines) + newline).encode())
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def request_id(row: dict[str, Any]) -> str:
    return row["error"]["request_id"] if "error" in row else row["provenance"]["request_id"]


def payload(output: Any, detector: str = "deberta-toxicity", tenant: str = "t1") -> dict:
    return {"detector": detector, "output": output, "tenant_id": tenant}


def test_good_and_bad_lines_keep_their_positions(ok, tmp_path, prose, openai_response):
    rows = [
        payload("toxic"),  # 1
        "{not json",  # 2: invalid JSON
        {"detector": "deberta-toxicity", "output": {"toxic": 0.9}},  # 3: no tenant_id
        payload(prose),  # 4: raw content
        "",  # 5: blank line
        payload(openai_response, detector="openai-moderation", tenant="acme"),  # 6
        payload("insult|threat"),  # 7
        payload([{"label": "LABEL_1", "score": 0.97}]),  # 8
        "[1, 2, 3]",  # 9: valid JSON, not a payload
        payload("toxic", tenant="bad tenant"),  # 10: invalid tenant id
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    result = ok("batch", src, "-o", out)
    assert result.stdout == ""
    assert result.stderr == "mapped 4 of 10 lines (6 errors)\n"

    got = read_jsonl(out)
    assert len(got) == len(rows)
    assert [request_id(row) for row in got] == [f"line-{k}" for k in range(1, 11)]

    errors = {k: got[k - 1]["error"] for k in (2, 3, 4, 5, 9, 10)}
    assert errors[2]["error_code"] == "INVALID_JSON"
    assert errors[3]["error_code"] == "INVALID_REQUEST"
    assert "tenant_id: Field required" in errors[3]["message"]
    assert errors[4]["error_code"] == "RAW_CONTENT_REJECTED"
    assert errors[5]["error_code"] == "INVALID_JSON"
    assert errors[9]["error_code"] == "INVALID_REQUEST"
    assert errors[10]["error_code"] == "INVALID_REQUEST"
    for error in errors.values():
        assert set(error) == {"error_code", "message", "request_id", "retryable"}
        assert error["retryable"] is False

    assert got[0]["taxonomy"] == ["HARM.SPEECH.Toxicity"]
    assert got[5]["taxonomy"] == [
        "HARM.VIOLENCE.Physical",
        "HARM.SPEECH.Harassment",
        "HARM.SPEECH.Threat",
    ]
    assert got[5]["provenance"]["tenant_id"] == "acme"
    assert got[6]["taxonomy"] == ["HARM.SPEECH.Insult", "HARM.SPEECH.Threat"]
    assert got[7]["taxonomy"] == ["HARM.SPEECH.Toxicity"]
    assert got[7]["scores"] == {"HARM.SPEECH.Toxicity": 0.97}
    for k in (1, 6, 7, 8):
        assert got[k - 1]["provenance"]["route"] == "cli:batch"

    text = out.read_text()
    for fragment in ("Whitfield", "surgery", prose[:40]):
        assert fragment not in text
        assert fragment not in result.stderr


def test_legacy_request_without_tenant_uses_default_tenant(ok, tmp_path):
    """A string output without tenant_id is the deprecated DetectorRequest shape."""
    src = write_jsonl(tmp_path / "in.jsonl", [{"detector": "deberta-toxicity", "output": "toxic"}])
    out = tmp_path / "out.jsonl"
    ok("batch", src, "-o", out)
    (row,) = read_jsonl(out)
    assert row["taxonomy"] == ["HARM.SPEECH.Toxicity"]
    assert row["provenance"]["tenant_id"] == "default"


def test_stdin_to_stdout(ok):
    lines = [json.dumps(payload("toxic")), "nope", json.dumps(payload("OK"))]
    result = ok("batch", "-", input="\n".join(lines) + "\n")
    got = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(got) == 3
    assert got[0]["taxonomy"] == ["HARM.SPEECH.Toxicity"]
    assert got[1]["error"]["error_code"] == "INVALID_JSON"
    assert got[1]["error"]["request_id"] == "line-2"
    assert got[2]["taxonomy"] == ["OTHER.Safe"]
    assert result.stderr == "mapped 2 of 3 lines (1 errors)\n"


def test_crlf_and_missing_final_newline(ok, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        json.dumps(payload("toxic")).encode() + b"\r\n" + json.dumps(payload("insult")).encode()
    )
    out = tmp_path / "out.jsonl"
    ok("batch", src, "--output", out)
    got = read_jsonl(out)
    assert [row["taxonomy"] for row in got] == [["HARM.SPEECH.Toxicity"], ["HARM.SPEECH.Insult"]]


def test_empty_input(ok, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"")
    out = tmp_path / "out.jsonl"
    result = ok("batch", src, "-o", out)
    assert out.read_bytes() == b""
    assert result.stderr == "mapped 0 of 0 lines (0 errors)\n"


def test_missing_input_file(cli, tmp_path):
    result = cli("batch", tmp_path / "absent.jsonl", "-o", tmp_path / "out.jsonl")
    assert result.exit_code == 1
    assert result.stderr == f"error: input file {tmp_path / 'absent.jsonl'} not found\n"
    assert not (tmp_path / "out.jsonl").exists()


def _big_rows(n: int, prose: str) -> list[Any]:
    kinds: list[Any] = [
        payload("toxic"),
        payload({"toxic": 0.2, "insult": 0.8}),
        payload([{"label": "LABEL_1", "score": 0.7}]),
        payload(
            {"results": [{"category_scores": {"violence": 0.9, "self-harm": 0.4}}]},
            detector="openai-moderation",
        ),
        "{broken",
        payload(prose),
        payload("vendor_made_this_up"),
        payload("other_new_label", detector="openai-moderation"),
        "",
    ]
    return [kinds[k % len(kinds)] for k in range(n)]


@pytest.mark.parametrize("n", [3000])
def test_parallel_output_is_identical_to_serial(ok, tmp_path, prose, state_dir, n):
    rows = _big_rows(n, prose)
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    serial, parallel = tmp_path / "serial.jsonl", tmp_path / "parallel.jsonl"

    r1 = ok("batch", src, "-o", serial, "--workers", "1")
    unmapped_after_serial = json.loads((state_dir / "unmapped.json").read_text())
    r2 = ok("batch", src, "-o", parallel, "--workers", "2")

    assert strip_ts(serial.read_bytes()) == strip_ts(parallel.read_bytes())
    assert r1.stderr == r2.stderr
    got = read_jsonl(parallel)
    assert len(got) == n
    assert [request_id(row) for row in got] == [f"line-{k}" for k in range(1, n + 1)]
    errors = sum("error" in row for row in got)
    assert errors == sum(1 for k in range(n) if k % 9 in (4, 5, 8))
    assert r2.stderr == f"mapped {n - errors} of {n} lines ({errors} errors)\n"

    # Unmapped labels are counted once per line, in the parent and in forked workers alike.
    per_run = sum(1 for k in range(n) if k % 9 == 6)
    assert unmapped_after_serial == [
        {"detector": "deberta-toxicity", "label": "vendor_made_this_up", "count": per_run},
        {"detector": "openai-moderation", "label": "other_new_label", "count": per_run},
    ]
    assert json.loads((state_dir / "unmapped.json").read_text()) == [
        {"detector": "deberta-toxicity", "label": "vendor_made_this_up", "count": 2 * per_run},
        {"detector": "openai-moderation", "label": "other_new_label", "count": 2 * per_run},
    ]


def test_unmapped_labels_are_persisted(ok, tmp_path, state_dir):
    rows = [payload("shiny_new_category"), payload("toxic"), payload("shiny_new_category")]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    ok("batch", src, "-o", tmp_path / "out.jsonl")
    got = read_jsonl(tmp_path / "out.jsonl")
    assert got[0]["provenance"]["unmapped_labels"] == ["shiny_new_category"]
    assert got[0]["taxonomy"] == ["OTHER.Unknown"]
    rows_on_disk = json.loads((state_dir / "unmapped.json").read_text())
    assert rows_on_disk == [
        {"detector": "deberta-toxicity", "label": "shiny_new_category", "count": 2}
    ]


def test_unreadable_unmapped_file_only_warns(cli, tmp_path, state_dir):
    state_dir.mkdir()
    (state_dir / "unmapped.json").write_text("{oops")
    src = write_jsonl(tmp_path / "in.jsonl", [payload("shiny_new_category"), payload("toxic")])
    out = tmp_path / "out.jsonl"
    result = cli("batch", src, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert [row["taxonomy"] for row in read_jsonl(out)] == [
        ["OTHER.Unknown"],
        ["HARM.SPEECH.Toxicity"],
    ]
    assert result.stderr.splitlines() == [
        f"warning: unmapped labels not saved: {state_dir / 'unmapped.json'}: "
        "unreadable unmapped-label file",
        "mapped 2 of 2 lines (0 errors)",
    ]
