"""``mapper taxonomy labels | migrate-plan | migrate-apply``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from llama_mapper.catalog import PACKAGED_DATA, load_catalog
from llama_mapper.packs.loader import load_pack
from llama_mapper.taxonomy.loader import load_taxonomy

OLD_PACKAGED = PACKAGED_DATA / "migrations" / "taxonomy-2025.09.yaml"

#: A made-up older taxonomy with one renamed, one finer (rolled-up) and one removed label.
OLD_TAXONOMY = """\
version: "2024.01"
labels:
  - name: PII.Contact.EmailAddress
    description: Email address.
    aliases: ["e-mail"]
  - name: HARM.SPEECH.Toxicity.Severe
    description: Very toxic language.
  - name: OTHER.Legacy
    description: A label nobody kept.
  - name: OTHER.Safe
    description: Nothing found.
  - name: OTHER.Unknown
    description: Could not map.
"""

OLD_PACK = """\
# A pack written against the 2024.01 taxonomy.
detector: legacy-scan
version: "0.9.0"
vendor: Acme
adapter: generic
threshold: 0.5
maps:
  mail: PII.Contact.EmailAddress
  work_mail: PII.Contact.EmailAddress.Work
  very_toxic: [HARM.SPEECH.Toxicity.Severe, HARM.SPEECH.Insult]
  legacy: OTHER.Legacy
  ok: OTHER.Safe
"""

SEXUAL_PACK = """\
detector: old-moderation
version: "2025.09.0"
vendor: Acme
maps:
  sexual_violence: HARM.VIOLENCE.Sexual
  api_token: SECRET.APIKey
  toxic: HARM.SPEECH.Toxicity
"""


@pytest.fixture
def old_taxonomy(tmp_path: Path) -> Path:
    path = tmp_path / "taxonomy-2024.01.yaml"
    path.write_text(OLD_TAXONOMY, encoding="utf-8")
    return path


# --- labels ------------------------------------------------------------------------


def test_labels_one_per_line(ok):
    taxonomy = load_catalog().taxonomy
    result = ok("taxonomy", "labels")
    assert result.stdout.splitlines() == list(taxonomy)
    assert len(result.stdout.splitlines()) == len(taxonomy)
    assert "OTHER.Safe" in result.stdout.splitlines()


def test_labels_json(ok):
    taxonomy = load_catalog().taxonomy
    data = json.loads(ok("taxonomy", "labels", "--json").stdout)
    assert data["version"] == taxonomy.version
    assert [row["name"] for row in data["labels"]] == list(taxonomy)
    for row in data["labels"]:
        label = taxonomy.labels[row["name"]]
        assert row == {
            "name": label.name,
            "description": label.description,
            "aliases": list(label.aliases),
        }


def test_labels_of_a_data_dir(ok, tmp_path, old_taxonomy):
    data_dir = tmp_path / "mydata"
    data_dir.mkdir()
    (data_dir / "taxonomy.yaml").write_text(OLD_TAXONOMY)
    result = ok("taxonomy", "labels", "--data-dir", data_dir)
    assert result.stdout.splitlines() == list(load_taxonomy(old_taxonomy))


def test_labels_of_a_broken_taxonomy(cli, tmp_path):
    data_dir = tmp_path / "mydata"
    data_dir.mkdir()
    (data_dir / "taxonomy.yaml").write_text("version: x\nlabels:\n  - name: lower.case\n")
    result = cli("taxonomy", "labels", "--data-dir", data_dir)
    assert result.exit_code == 1
    assert result.stderr == "error: invalid label name 'lower.case'\n"


# --- migrate-plan ------------------------------------------------------------------


def test_plan_between_packaged_versions(ok):
    result = ok(
        "taxonomy", "migrate-plan", "--from-taxonomy", "2025.09", "--to-taxonomy", "2026.11"
    )
    plan = yaml.safe_load(result.stdout)
    old = load_taxonomy(OLD_PACKAGED)
    new = load_catalog().taxonomy
    assert plan["from_version"] == "2025.09"
    assert plan["to_version"] == "2026.11"
    assert [change["old"] for change in plan["changes"]] == sorted(old)
    assert sum(plan["summary"].values()) == len(old)
    assert plan["added"] == sorted(set(new) - set(old))
    by_old = {change["old"]: change for change in plan["changes"]}
    for name in old:
        change = by_old[name]
        assert new.resolve(change["new"]) is not None, change
    # Same name, changed meaning: flagged for review with a note.
    sexual = by_old["HARM.VIOLENCE.Sexual"]
    assert sexual["new"] == "HARM.VIOLENCE.Sexual"
    assert "HARM.CRIME.SexCrime" in sexual["note"]
    assert any(note.startswith("HARM.VIOLENCE.Sexual: ") for note in plan["notes"])


def test_plan_with_file_paths_json_and_output(ok, tmp_path, old_taxonomy):
    out = tmp_path / "plan.yaml"
    result = ok(
        "taxonomy",
        "migrate-plan",
        "--from-taxonomy",
        old_taxonomy,
        "--to-taxonomy",
        PACKAGED_DATA / "taxonomy.yaml",
        "-o",
        out,
        "--json",
    )
    plan = json.loads(result.stdout)
    assert yaml.safe_load(out.read_text()) == plan  # -o writes the same plan, as YAML
    assert not out.read_text().lstrip().startswith("{")
    assert plan["from_version"] == "2024.01"
    assert plan["summary"] == {"kept": 2, "renamed": 1, "rolled_up": 1, "removed": 1}
    by_old = {change["old"]: change for change in plan["changes"]}
    assert by_old["PII.Contact.EmailAddress"]["new"] == "PII.Contact.Email"
    assert by_old["PII.Contact.EmailAddress"]["kind"] == "renamed"
    assert by_old["HARM.SPEECH.Toxicity.Severe"]["new"] == "HARM.SPEECH.Toxicity"
    assert by_old["HARM.SPEECH.Toxicity.Severe"]["kind"] == "rolled_up"
    assert by_old["OTHER.Legacy"] == {
        "old": "OTHER.Legacy",
        "new": None,
        "kind": "removed",
        "reason": "no label, alias or ancestor in 2026.11",
    }
    assert by_old["OTHER.Safe"]["kind"] == "kept"


def test_plan_yaml_output_equals_stdout(ok, tmp_path):
    out = tmp_path / "plan.yaml"
    result = ok(
        "taxonomy",
        "migrate-plan",
        "--from-taxonomy",
        OLD_PACKAGED,
        "--to-taxonomy",
        "2026.11",
        "--output",
        out,
    )
    assert out.read_text() == result.stdout


@pytest.mark.parametrize("ref", ["1999.01", "no/such/file.yaml"])
def test_plan_unknown_taxonomy(cli, ref):
    result = cli("taxonomy", "migrate-plan", "--from-taxonomy", ref, "--to-taxonomy", "2026.11")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"error: taxonomy {ref!r} is neither a file nor a packaged version\n"


def test_plan_broken_taxonomy_file(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: '1'\nlabels: [\n")
    result = cli("taxonomy", "migrate-plan", "--from-taxonomy", bad, "--to-taxonomy", "2026.11")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {bad}: invalid YAML")


def test_plan_requires_both_versions(cli):
    result = cli("taxonomy", "migrate-plan", "--from-taxonomy", "2025.09")
    assert result.exit_code == 2
    assert "--to-taxonomy" in result.stderr


# --- migrate-apply -----------------------------------------------------------------


@pytest.fixture
def legacy_data(data_copy: Path) -> Path:
    (data_copy / "detectors" / "legacy-scan.yaml").write_text(OLD_PACK, encoding="utf-8")
    return data_copy


def migrate_apply(invoke, data_dir: Path, source: object, *extra: str):
    return invoke(
        "taxonomy",
        "migrate-apply",
        "--data-dir",
        data_dir,
        "--from-taxonomy",
        source,
        "--to-taxonomy",
        "2026.11",
        *extra,
    )


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.yaml"))}


def test_apply_dry_run_writes_nothing(ok, legacy_data, old_taxonomy):
    before = _snapshot(legacy_data / "detectors")
    result = migrate_apply(ok, legacy_data, old_taxonomy, "--dry-run")
    assert _snapshot(legacy_data / "detectors") == before
    lines = result.stdout.splitlines()
    assert "legacy-scan.yaml: mail: PII.Contact.EmailAddress -> PII.Contact.Email" in lines
    assert lines[-1] == "dry run: would change 1 pack(s); nothing written"


def test_apply_rewrites_renamed_labels(ok, legacy_data, old_taxonomy):
    before = _snapshot(legacy_data / "detectors")
    result = migrate_apply(ok, legacy_data, old_taxonomy)
    assert result.stdout.splitlines() == [
        "legacy-scan.yaml: mail: PII.Contact.EmailAddress -> PII.Contact.Email",
        "legacy-scan.yaml: work_mail: PII.Contact.EmailAddress.Work -> PII.Contact.Email.Work",
        "legacy-scan.yaml: very_toxic: HARM.SPEECH.Toxicity.Severe -> HARM.SPEECH.Toxicity",
        "legacy-scan.yaml: legacy: OTHER.Legacy has no successor; edit by hand",
        "changed 1 pack(s)",
    ]
    after = _snapshot(legacy_data / "detectors")
    assert {name for name in after if after[name] != before[name]} == {"legacy-scan.yaml"}

    pack = load_pack(legacy_data / "detectors" / "legacy-scan.yaml")
    assert dict(pack.maps) == {
        "mail": ("PII.Contact.Email",),
        "work_mail": ("PII.Contact.Email.Work",),
        "very_toxic": ("HARM.SPEECH.Toxicity", "HARM.SPEECH.Insult"),
        "legacy": ("OTHER.Legacy",),  # no successor: left for a person
        "ok": ("OTHER.Safe",),
    }
    assert (pack.detector, pack.version, pack.vendor, pack.threshold) == (
        "legacy-scan",
        "0.9.0",
        "Acme",
        0.5,
    )

    # Running it again finds nothing left to rename.
    again = migrate_apply(ok, legacy_data, old_taxonomy)
    assert again.stdout.splitlines()[-1] == "changed 0 pack(s)"
    assert _snapshot(legacy_data / "detectors") == after


def test_apply_packaged_versions_flags_changed_meaning(ok, tmp_path):
    data_dir = tmp_path / "d"
    (data_dir / "detectors").mkdir(parents=True)
    (data_dir / "detectors" / "old-moderation.yaml").write_text(SEXUAL_PACK)
    result = migrate_apply(ok, data_dir, "2025.09")
    lines = result.stdout.splitlines()
    assert lines[-1] == "changed 0 pack(s)"
    assert any(
        line.startswith("old-moderation.yaml: sexual_violence: review HARM.VIOLENCE.Sexual: ")
        for line in lines
    )
    assert any(
        line.startswith("old-moderation.yaml: api_token: review SECRET.APIKey: ") for line in lines
    )
    assert (data_dir / "detectors" / "old-moderation.yaml").read_text() == SEXUAL_PACK


def test_apply_missing_detectors_folder(cli, tmp_path):
    result = migrate_apply(cli, tmp_path / "empty", "2025.09")
    assert result.exit_code == 1
    assert result.stderr == f"error: {tmp_path / 'empty' / 'detectors'} not found\n"


def test_apply_broken_pack(cli, tmp_path):
    folder = tmp_path / "d" / "detectors"
    folder.mkdir(parents=True)
    (folder / "bad.yaml").write_text("detector: bad\nmaps: {}\n")
    result = migrate_apply(cli, tmp_path / "d", "2025.09")
    assert result.exit_code == 1
    assert result.stderr == f"error: {folder / 'bad.yaml'}: missing version, vendor\n"


def test_plan_file_overrides_inferred_renames(ok, tmp_path):
    plan_file = tmp_path / "renames.yaml"
    plan_file.write_text("BIAS.Other: OTHER.PolicyViolation\n")
    result = ok(
        "taxonomy", "migrate-plan", "--from-taxonomy", "2025.09", "--to-taxonomy", "2026.11",
        "--plan", str(plan_file), "--json",
    )  # fmt: skip
    changes = {c["old"]: c for c in json.loads(result.stdout)["changes"]}
    assert changes["BIAS.Other"]["new"] == "OTHER.PolicyViolation"
    assert changes["BIAS.Other"]["kind"] == "renamed"
    assert changes["BIAS.Race"]["kind"] == "kept"


def test_plan_file_with_unknown_target_is_one_clear_error(cli, tmp_path):
    plan_file = tmp_path / "renames.yaml"
    plan_file.write_text("BIAS.Other: NOT.A.Label\n")
    result = cli(
        "taxonomy", "migrate-plan", "--from-taxonomy", "2025.09", "--to-taxonomy", "2026.11",
        "--plan", str(plan_file),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "Traceback" not in result.output
