"""`mapper map` and `mapper batch` leave the same evidence the API does."""

from __future__ import annotations

import json

import pytest


@pytest.mark.parametrize("workers", ["1", "2"])
def test_cli_mappings_are_recorded_and_verify(ok, tmp_path, workers):
    ok("map", "-d", "presidio", "-o", "US_SSN", "-t", "acme")
    rows = [{"detector": "presidio", "output": "EMAIL_ADDRESS", "tenant_id": "acme"}] * 600
    rows[5] = {"detector": "presidio"}  # an error line leaves no event
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    ok("batch", str(source), "-o", str(tmp_path / "out.jsonl"), "--workers", workers)
    verified = json.loads(ok("audit", "verify", "--tenant", "acme", "--json").stdout)
    assert verified["ok"] is True
    assert verified["checked"] == 1 + 599
    export = tmp_path / "events.jsonl"
    ok("audit", "export", "--tenant", "acme", "-o", str(export))
    events = [json.loads(line)["event"] for line in export.read_text().splitlines()]
    assert events[0]["route"] == "cli:map"
    assert {e["route"] for e in events[1:]} == {"cli:batch"}
    assert [e["request_id"] for e in events[1:4]] == ["line-1", "line-2", "line-3"]
    assert "EMAIL_ADDRESS" not in export.read_text()  # labels yes, raw output never
