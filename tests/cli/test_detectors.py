"""``mapper detectors lint | add | fix``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from llama_mapper.catalog import PACKAGED_DATA, load_catalog
from llama_mapper.packs.loader import load_pack

BROKEN_PACK = """\
# A pack with typos in two targets.
detector: acme-scan
version: "1.0.0"
vendor: Acme
adapter: generic
threshold: 0.5
maps:
  toxic_speech: HARM.SPEECH.Toxicity
  mail: PII.Contact.Emial
  phone_no: PII.Contact.Phone
  card: PII.Identifier.CreditCrad
"""


def _data_dir(tmp_path: Path, pack: str = BROKEN_PACK, name: str = "acme-scan") -> Path:
    folder = tmp_path / "d" / "detectors"
    folder.mkdir(parents=True)
    (folder / f"{name}.yaml").write_text(pack, encoding="utf-8")
    return folder.parent


def _unmapped(state_dir: Path, rows: list[tuple[str, str, int]]) -> Path:
    state_dir.mkdir(exist_ok=True)
    path = state_dir / "unmapped.json"
    path.write_text(
        json.dumps([{"detector": d, "label": label, "count": n} for d, label, n in rows])
    )
    return path


# --- lint --------------------------------------------------------------------------


def test_lint_packaged_data(ok):
    result = ok("detectors", "lint")
    count = len(list((PACKAGED_DATA / "detectors").glob("*.yaml")))
    assert result.stdout.splitlines()[-1] == f"{count} pack(s) checked, 0 error(s), 0 warning(s)"


def test_lint_packaged_data_json(ok):
    data = json.loads(ok("detectors", "lint", "--json").stdout)
    assert data == {"issues": [], "errors": 0}


def test_lint_copied_data_dir(ok, data_copy):
    assert " 0 error(s)" in ok("detectors", "lint", "--data-dir", data_copy).stdout


def test_lint_invalid_target(cli, tmp_path):
    data_dir = _data_dir(tmp_path)
    result = cli("detectors", "lint", "--data-dir", data_dir)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "acme-scan.yaml: error: acme-scan: 'mail': target 'PII.Contact.Emial' "
        "is not a canonical label",
        "acme-scan.yaml: error: acme-scan: 'card': target 'PII.Identifier.CreditCrad' "
        "is not a canonical label",
        "1 pack(s) checked, 2 error(s), 0 warning(s)",
    ]


def test_lint_json_and_warnings(cli, tmp_path):
    pack = BROKEN_PACK.replace("PII.Identifier.CreditCrad", "PII.Identifier.SSN.US")
    data_dir = _data_dir(tmp_path, pack, name="acme")  # file name differs from detector
    result = cli("detectors", "lint", "--data-dir", data_dir, "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["errors"] == 1
    severities = [(row["severity"], row["problem"]) for row in data["issues"]]
    assert ("warning", "file name differs from detector 'acme-scan'") in severities
    assert any(
        sev == "error" and "'PII.Contact.Emial' is not a canonical label" in problem
        for sev, problem in severities
    )
    assert any(
        sev == "warning" and "it rolls up to PII.Identifier.SSN" in problem
        for sev, problem in severities
    )


def test_lint_unreadable_pack(cli, tmp_path):
    data_dir = _data_dir(tmp_path, "detector: x\nmaps: [\n", name="x")
    result = cli("detectors", "lint", "--data-dir", data_dir)
    assert result.exit_code == 1
    assert result.stdout.startswith("x.yaml: ")
    assert "invalid YAML" in result.stdout


def test_lint_uses_the_data_dirs_own_taxonomy(cli, ok, tmp_path):
    pack = BROKEN_PACK.replace("PII.Contact.Emial", "PII.Contact.Email").replace(
        "PII.Identifier.CreditCrad", "ACME.Special"
    )
    data_dir = _data_dir(tmp_path, pack)
    assert cli("detectors", "lint", "--data-dir", data_dir).exit_code == 1
    taxonomy = yaml.safe_load((PACKAGED_DATA / "taxonomy.yaml").read_text())
    taxonomy["labels"].append({"name": "ACME.Special", "description": "Ours."})
    (data_dir / "taxonomy.yaml").write_text(yaml.safe_dump(taxonomy))
    ok("detectors", "lint", "--data-dir", data_dir)


def test_lint_missing_folder(cli, tmp_path):
    result = cli("detectors", "lint", "--data-dir", tmp_path)
    assert result.exit_code == 1
    assert result.stderr == f"error: {tmp_path / 'detectors'} not found\n"


# --- add ---------------------------------------------------------------------------


def test_add_scaffolds_a_pack_that_lints(ok, tmp_path):
    out = tmp_path / "mine"
    result = ok("detectors", "add", "--name", "my-det", "--output-dir", out)
    path = out / "detectors" / "my-det.yaml"
    assert result.stdout == f"wrote {path}\n"
    pack = load_pack(path)
    assert pack.detector == "my-det"
    assert pack.adapter == "generic"
    assert pack.vendor == "custom"
    assert dict(pack.maps) == {"safe": ("OTHER.Safe",), "example_label": ("OTHER.Unknown",)}
    assert path.read_text().startswith("# Map every label the detector emits")
    lint = ok("detectors", "lint", "--data-dir", out)
    assert lint.stdout == "1 pack(s) checked, 0 error(s), 0 warning(s)\n"


def test_added_pack_is_used_by_map(ok, tmp_path):
    out = tmp_path / "mine"
    ok("detectors", "add", "-n", "my-det", "--output-dir", out, "--vendor", "Me")
    config = tmp_path / "mapper.yaml"
    config.write_text(f"data_dir: {out}\n")
    data = json.loads(ok("map", "-d", "my-det", "-o", "safe", "-c", config).stdout)
    assert data["taxonomy"] == ["OTHER.Safe"]
    assert data["provenance"]["vendor"] == "Me"
    assert data["provenance"]["detector_version"] == "my-det@0.1.0"


def test_add_with_native_adapter(ok, tmp_path):
    ok("detectors", "add", "-n", "my-moderation", "--output-dir", tmp_path, "--adapter", "presidio")
    assert load_pack(tmp_path / "detectors" / "my-moderation.yaml").adapter == "presidio"


def test_add_refuses_existing_name(cli, ok, tmp_path):
    ok("detectors", "add", "--name", "my-det", "--output-dir", tmp_path)
    path = tmp_path / "detectors" / "my-det.yaml"
    path.write_text("# edited by hand\n" + path.read_text())
    before = path.read_bytes()
    result = cli("detectors", "add", "--name", "my-det", "--output-dir", tmp_path)
    assert result.exit_code == 1
    assert result.stderr == f"error: {path} exists\n"
    assert path.read_bytes() == before


@pytest.mark.parametrize("name", ["My-Det", "my det", "-leading-dash", "a" * 65, "ümlaut", ""])
def test_add_refuses_invalid_name(cli, tmp_path, name):
    result = cli("detectors", "add", "--name", name, "--output-dir", tmp_path)
    assert result.exit_code == 1
    assert result.stderr == (
        "error: detector names are lowercase letters, digits, '.', '_' and '-' (max 64)\n"
    )
    assert not (tmp_path / "detectors").exists()


def test_add_refuses_unknown_adapter(cli, tmp_path):
    result = cli("detectors", "add", "-n", "x", "--output-dir", tmp_path, "--adapter", "nope")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: unknown adapter 'nope'; known: generic, ")
    assert not (tmp_path / "detectors").exists()


# --- fix ---------------------------------------------------------------------------

UNMAPPED_ROWS = [
    ("acme-scan", "social security number", 3),  # an exact alias: similarity 1.0
    ("acme-scan", "ip address v4", 2),
    ("acme-scan", "toxic_speech", 1),  # already mapped by the pack: no proposal
    ("other-det", "email", 2),  # no pack for it in this data dir: ignored
]


def _proposals(ok, data_dir: Path, *extra: str) -> list[dict]:
    result = ok("detectors", "fix", "--data-dir", data_dir, "--json", *extra)
    return json.loads(result.stdout)["proposals"]


def test_fix_proposes_without_writing(ok, tmp_path, state_dir):
    data_dir = _data_dir(tmp_path)
    _unmapped(state_dir, UNMAPPED_ROWS)
    pack_file = data_dir / "detectors" / "acme-scan.yaml"
    before = pack_file.read_bytes()
    unmapped_before = (state_dir / "unmapped.json").read_bytes()

    proposals = _proposals(ok, data_dir)
    by_label = {p["vendor_label"]: p for p in proposals}
    assert set(by_label) == {"mail", "card", "social security number", "ip address v4"}
    assert by_label["mail"]["current"] == "PII.Contact.Emial"
    assert by_label["mail"]["proposed"] == "PII.Contact.Email"
    assert by_label["mail"]["reason"] == "invalid_target"
    assert by_label["card"]["current"] == "PII.Identifier.CreditCrad"
    assert by_label["card"]["proposed"] == "PII.Identifier.CreditCard"
    assert by_label["social security number"] == {
        "detector": "acme-scan",
        "vendor_label": "social security number",
        "current": None,
        "proposed": "PII.Identifier.SSN",
        "similarity": 1.0,
        "reason": "unmapped",
        "applies": True,
    }
    assert by_label["ip address v4"]["proposed"] == "PII.Network.IPAddress"
    taxonomy = load_catalog().taxonomy
    for p in proposals:
        assert p["detector"] == "acme-scan"
        assert p["proposed"] in taxonomy
        assert 0.0 <= p["similarity"] <= 1.0
        assert p["applies"] == (p["similarity"] >= 0.9)

    text = ok("detectors", "fix", "--data-dir", data_dir)
    lines = text.stdout.splitlines()
    assert lines[-1] == "4 proposal(s); nothing written (use --apply)"
    assert "+ acme-scan: 'social security number' -> PII.Identifier.SSN [1.00, unmapped]" in lines
    mail = f"[{by_label['mail']['similarity']:.2f}, invalid_target]"
    assert any(
        line.endswith(f"'mail' (now PII.Contact.Emial) -> PII.Contact.Email {mail}")
        for line in lines
    )

    assert pack_file.read_bytes() == before
    assert (state_dir / "unmapped.json").read_bytes() == unmapped_before


def test_fix_apply_writes_only_confident_proposals(ok, tmp_path, state_dir):
    data_dir = _data_dir(tmp_path)
    _unmapped(state_dir, UNMAPPED_ROWS)
    proposals = _proposals(ok, data_dir, "--threshold", "0.9")
    confident = [p for p in proposals if p["applies"]]
    doubtful = [p for p in proposals if not p["applies"]]
    assert confident, "expected at least one proposal >= 0.9"
    assert doubtful, "expected at least one proposal < 0.9"

    result = ok("detectors", "fix", "--data-dir", data_dir, "--apply", "--threshold", "0.9")
    assert result.stdout.splitlines()[-1] == (
        f"applied {len(confident)} proposal(s) at similarity >= 0.9"
    )

    original = yaml.safe_load(BROKEN_PACK)["maps"]
    expected = dict(original)
    for p in confident:
        expected[p["vendor_label"]] = p["proposed"]
    reloaded = yaml.safe_load((data_dir / "detectors" / "acme-scan.yaml").read_text())
    assert reloaded["maps"] == expected
    assert reloaded["maps"]["social security number"] == "PII.Identifier.SSN"
    for p in doubtful:
        assert reloaded["maps"].get(p["vendor_label"]) == original.get(p["vendor_label"])
    assert reloaded["detector"] == "acme-scan"
    assert reloaded["version"] == "1.0.0"

    # Nothing confident is left: a second --apply writes nothing.
    before = (data_dir / "detectors" / "acme-scan.yaml").read_bytes()
    again = ok("detectors", "fix", "--data-dir", data_dir, "--apply", "--threshold", "0.9")
    assert again.stdout.splitlines()[-1] == "applied 0 proposal(s) at similarity >= 0.9"
    assert (data_dir / "detectors" / "acme-scan.yaml").read_bytes() == before


def test_fix_apply_threshold_zero_applies_everything(ok, tmp_path, state_dir):
    data_dir = _data_dir(tmp_path)
    _unmapped(state_dir, UNMAPPED_ROWS)
    proposals = _proposals(ok, data_dir)
    ok("detectors", "fix", "--data-dir", data_dir, "--apply", "--threshold", "0")
    maps = load_pack(data_dir / "detectors" / "acme-scan.yaml").maps
    for p in proposals:
        assert maps[p["vendor_label"]] == (p["proposed"],)
    assert ok("detectors", "lint", "--data-dir", data_dir).exit_code == 0


def test_fix_closes_the_loop_with_map_and_batch(ok, tmp_path, state_dir):
    """Labels `map`/`batch` could not map become proposals; applied, they map next time."""
    fixed = BROKEN_PACK.replace("Emial", "Email").replace("Crad", "Card")
    data_dir = _data_dir(tmp_path, fixed)
    config = tmp_path / "mapper.yaml"
    config.write_text(f"data_dir: {data_dir}\n")

    first = json.loads(ok("map", "-d", "acme-scan", "-o", "home_addr", "-c", config).stdout)
    assert first["taxonomy"] == ["OTHER.Unknown"]
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({"detector": "acme-scan", "output": "usr_passwd", "tenant_id": "t"}) + "\n"
    )
    ok("batch", src, "-o", tmp_path / "out.jsonl", "-c", config)
    assert json.loads((state_dir / "unmapped.json").read_text()) == [
        {"detector": "acme-scan", "label": "home_addr", "count": 1},
        {"detector": "acme-scan", "label": "usr_passwd", "count": 1},
    ]

    by_label = {p["vendor_label"]: p for p in _proposals(ok, data_dir, "--threshold", "0.8")}
    assert set(by_label) == {"home_addr", "usr_passwd"}
    assert by_label["home_addr"]["proposed"] == "PII.Contact.Address"
    assert by_label["home_addr"]["applies"] is True
    assert by_label["usr_passwd"]["proposed"] == "SECRET.Password"
    assert by_label["usr_passwd"]["applies"] is False

    ok("detectors", "fix", "--data-dir", data_dir, "--apply", "--threshold", "0.8")
    maps = yaml.safe_load((data_dir / "detectors" / "acme-scan.yaml").read_text())["maps"]
    assert maps["home_addr"] == "PII.Contact.Address"
    assert "usr_passwd" not in maps

    again = json.loads(ok("map", "-d", "acme-scan", "-o", "home_addr", "-c", config).stdout)
    assert again["taxonomy"] == ["PII.Contact.Address"]
    assert again["provenance"]["method"] == {"PII.Contact.Address": "exact"}
    # The fixed label is no longer proposed; the doubtful one still is.
    assert [p["vendor_label"] for p in _proposals(ok, data_dir)] == ["usr_passwd"]


def test_fix_custom_unmapped_file(ok, tmp_path, state_dir):
    data_dir = _data_dir(tmp_path)
    custom = _unmapped(tmp_path / "elsewhere", [("acme-scan", "social security number", 1)])
    _unmapped(state_dir, [("acme-scan", "ip address v4", 1)])
    proposals = _proposals(ok, data_dir, "--unmapped", custom)
    labels = {p["vendor_label"] for p in proposals if p["reason"] == "unmapped"}
    assert labels == {"social security number"}


def test_fix_missing_unmapped_file_is_a_usage_error(cli, tmp_path):
    data_dir = _data_dir(tmp_path)
    result = cli("detectors", "fix", "--data-dir", data_dir, "--unmapped", tmp_path / "nope.json")
    assert result.exit_code == 2
    assert "--unmapped" in result.stderr


def test_fix_without_unmapped_file(ok, tmp_path):
    proposals = _proposals(ok, _data_dir(tmp_path))
    assert {p["reason"] for p in proposals} == {"invalid_target"}


def test_fix_unreadable_unmapped_file(cli, tmp_path, state_dir):
    data_dir = _data_dir(tmp_path)
    state_dir.mkdir()
    (state_dir / "unmapped.json").write_text("{not json")
    result = cli("detectors", "fix", "--data-dir", data_dir)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {state_dir / 'unmapped.json'}: unreadable unmapped-label file\n"
    )


@pytest.mark.parametrize("value", ["1.01", "-1"])
def test_fix_threshold_out_of_range(cli, tmp_path, value):
    data_dir = _data_dir(tmp_path)
    before = (data_dir / "detectors" / "acme-scan.yaml").read_bytes()
    result = cli("detectors", "fix", "--data-dir", data_dir, "--apply", "--threshold", value)
    assert result.exit_code == 2
    assert (data_dir / "detectors" / "acme-scan.yaml").read_bytes() == before


def test_fix_packaged_data_has_nothing_to_fix(ok):
    result = ok("detectors", "fix", "--json")
    assert json.loads(result.stdout) == {
        "proposals": [],
        "applied": 0,
        "suggester": "lexical, rules-only (learned.enabled=false)",
    }


def test_fix_apply_never_rewrites_the_packaged_data(cli):
    from llama_mapper.catalog import PACKAGED_DATA

    before = {p: p.read_bytes() for p in (PACKAGED_DATA / "detectors").glob("*.yaml")}
    result = cli("detectors", "fix", "--apply")
    assert result.exit_code == 1
    assert "--apply needs --data-dir" in result.output
    assert before == {p: p.read_bytes() for p in (PACKAGED_DATA / "detectors").glob("*.yaml")}


def test_lint_uses_the_configured_data_dir(cli, tmp_path, monkeypatch):
    data_dir = _data_dir(tmp_path)
    monkeypatch.setenv("LLAMA_MAPPER_DATA_DIR", str(data_dir))
    result = cli("detectors", "lint")
    assert result.exit_code == 1  # the fixture pack has misspelled targets
    assert "acme-scan.yaml" in result.output
