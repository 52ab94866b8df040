"""``set-threshold`` / ``show-thresholds`` and their effect on ``mapper map``."""

from __future__ import annotations

import json

import pytest
import yaml

from llama_mapper.catalog import load_catalog


def _row(ok, detector: str) -> dict:
    rows = json.loads(ok("show-thresholds", "--json").stdout)
    return next(row for row in rows if row["detector"] == detector)


def _labels(ok, output: str) -> list[str]:
    return json.loads(ok("map", "-d", "openai-moderation", "-o", output).stdout)["taxonomy"]


def test_show_thresholds_defaults_come_from_packs(ok):
    catalog = load_catalog()
    rows = json.loads(ok("show-thresholds", "--json").stdout)
    assert [row["detector"] for row in rows] == [pack.detector for pack in catalog.packs]
    for row in rows:
        pack = catalog.packs.get(row["detector"])
        assert row == {
            "detector": pack.detector,
            "threshold": pack.threshold,
            "source": "pack",
            "labels": dict(pack.thresholds),
        }


def test_set_threshold_changes_mapping(ok, state_dir, openai_output):
    # Pack default 0.5: a 0.6 harassment score maps.
    assert _labels(ok, openai_output({"harassment": 0.6})) == ["HARM.SPEECH.Harassment"]

    result = ok("set-threshold", "--detector", "openai-moderation", "--threshold", "0.7")
    assert result.stdout == "threshold for openai-moderation set to 0.7\n"
    assert result.stderr == ""
    assert yaml.safe_load((state_dir / "thresholds.yaml").read_text()) == {
        "detectors": {"openai-moderation": 0.7},
        "labels": {},
    }

    row = _row(ok, "openai-moderation")
    assert row["threshold"] == 0.7
    assert row["source"] == "set-threshold"

    below = json.loads(
        ok("map", "-d", "openai-moderation", "-o", openai_output({"harassment": 0.6})).stdout
    )
    assert below["taxonomy"] == ["OTHER.Safe"]
    assert below["scores"] == {"OTHER.Safe": 0.4}
    assert below["notes"] == ["every finding was below its threshold"]
    assert _labels(ok, openai_output({"harassment": 0.8})) == ["HARM.SPEECH.Harassment"]
    # The pack's own per-label threshold (self-harm: 0.3) is more specific: still applies.
    assert _labels(ok, openai_output({"self-harm": 0.4})) == ["HARM.VIOLENCE.SelfHarm"]
    # Other detectors are untouched.
    assert _row(ok, "deberta-toxicity")["source"] == "pack"


def test_set_label_threshold(ok, state_dir, openai_output):
    result = ok(
        "set-threshold", "-d", "openai-moderation", "--label", "harassment", "--threshold", "0.9"
    )
    assert result.stdout == "threshold for openai-moderation label 'harassment' set to 0.9\n"
    assert yaml.safe_load((state_dir / "thresholds.yaml").read_text()) == {
        "detectors": {},
        "labels": {"openai-moderation": {"harassment": 0.9}},
    }
    row = _row(ok, "openai-moderation")
    assert row["source"] == "pack"
    assert row["labels"]["harassment"] == 0.9
    assert row["labels"]["self-harm"] == 0.3  # the pack's own label thresholds remain

    assert _labels(ok, openai_output({"harassment": 0.8})) == ["OTHER.Safe"]
    assert _labels(ok, openai_output({"harassment": 0.95})) == ["HARM.SPEECH.Harassment"]
    # Only that label: violence still uses the pack default 0.5.
    assert _labels(ok, openai_output({"violence": 0.6})) == ["HARM.VIOLENCE.Physical"]


def test_label_threshold_can_lower_a_pack_label_threshold(ok, openai_output):
    assert _labels(ok, openai_output({"self-harm": 0.2})) == ["OTHER.Safe"]
    ok("set-threshold", "-d", "openai-moderation", "-l", "self-harm", "--threshold", "0.1")
    assert _labels(ok, openai_output({"self-harm": 0.2})) == ["HARM.VIOLENCE.SelfHarm"]


def test_thresholds_accumulate_and_overwrite(ok, state_dir):
    ok("set-threshold", "-d", "openai-moderation", "--threshold", "0.7")
    ok("set-threshold", "-d", "deberta-toxicity", "--threshold", "0.2")
    ok("set-threshold", "-d", "openai-moderation", "--threshold", "0.65")
    stored = yaml.safe_load((state_dir / "thresholds.yaml").read_text())
    assert stored["detectors"] == {"openai-moderation": 0.65, "deberta-toxicity": 0.2}


def test_config_beats_set_threshold(ok, tmp_path, openai_output):
    ok("set-threshold", "-d", "openai-moderation", "--threshold", "0.7")
    config = tmp_path / "mapper.yaml"
    config.write_text("mapping:\n  detector_thresholds:\n    openai-moderation: 0.55\n")
    rows = json.loads(ok("show-thresholds", "--json", "-c", config).stdout)
    row = next(r for r in rows if r["detector"] == "openai-moderation")
    assert (row["threshold"], row["source"]) == (0.55, "config")
    result = ok("map", "-d", "openai-moderation", "-o", openai_output({"hate": 0.6}), "-c", config)
    assert json.loads(result.stdout)["taxonomy"] == ["HARM.SPEECH.Hate.Other"]


def test_show_thresholds_text(ok):
    ok("set-threshold", "-d", "openai-moderation", "--threshold", "0.7")
    lines = ok("show-thresholds").stdout.splitlines()
    assert "openai-moderation        0.7    (set-threshold)" in lines
    assert any(line.split() == ["sexual/minors", "0.2"] for line in lines)


def test_unknown_detector_warns_but_stores(ok, state_dir):
    result = ok("set-threshold", "-d", "not-a-pack", "--threshold", "0.3")
    assert result.stderr == "warning: no detector pack named 'not-a-pack'\n"
    stored = yaml.safe_load((state_dir / "thresholds.yaml").read_text())
    assert stored["detectors"] == {"not-a-pack": 0.3}


@pytest.mark.parametrize("value", ["1.5", "-0.1", "high"])
def test_threshold_out_of_range_is_a_usage_error(cli, state_dir, value):
    result = cli("set-threshold", "-d", "openai-moderation", "--threshold", value)
    assert result.exit_code == 2
    assert "--threshold" in result.stderr
    assert "Usage: mapper set-threshold" in result.stderr
    assert not (state_dir / "thresholds.yaml").exists()


@pytest.mark.parametrize("value", ["0", "1"])
def test_threshold_bounds_are_inclusive(ok, value):
    ok("set-threshold", "-d", "openai-moderation", "--threshold", value)
    assert _row(ok, "openai-moderation")["threshold"] == float(value)


def test_broken_threshold_file_is_reported(cli, state_dir, openai_output):
    state_dir.mkdir()
    (state_dir / "thresholds.yaml").write_text("detectors:\n  openai-moderation: high\n")
    result = cli("map", "-d", "openai-moderation", "-o", openai_output({"hate": 0.9}))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: CONFIGURATION_ERROR: ")
    assert "thresholds must be numbers" in result.stderr


@pytest.mark.parametrize(
    "args",
    [("show-thresholds",), ("set-threshold", "-d", "openai-moderation", "--threshold", "0.4")],
    ids=["show", "set"],
)
def test_broken_threshold_file_is_one_error_line(cli, state_dir, args):
    state_dir.mkdir()
    (state_dir / "thresholds.yaml").write_text("detectors: [\n")
    result = cli(*args)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # no traceback
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {state_dir / 'thresholds.yaml'}: invalid YAML")
    assert (state_dir / "thresholds.yaml").read_text() == "detectors: [\n"
