"""Taxonomy migration: what each old label becomes, and how packs are rewritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from llama_mapper.catalog import PACKAGED_DATA
from llama_mapper.packs.loader import load_packs
from llama_mapper.packs.model import DetectorPack
from llama_mapper.taxonomy.loader import load_taxonomy
from llama_mapper.taxonomy.migrate import (
    SEMANTIC_NOTES_2025_09,
    LabelChange,
    MigrationError,
    MigrationPlan,
    apply_to_pack,
    explicit_mapping,
    plan_from_dict,
    plan_migration,
)
from llama_mapper.taxonomy.model import Label, Taxonomy

OLD_FILE = PACKAGED_DATA / "migrations" / "taxonomy-2025.09.yaml"
NEW_FILE = PACKAGED_DATA / "taxonomy.yaml"


def packaged(path: Path) -> Taxonomy:
    if not path.exists():
        pytest.skip(f"{path} is not packaged yet")
    return load_taxonomy(path)


def taxonomy(version: str, *labels: Label) -> Taxonomy:
    base = [Label("OTHER.Safe", "nothing found"), Label("OTHER.Unknown", "cannot be mapped")]
    return Taxonomy.from_labels(version, [*base, *labels])


OLD = taxonomy(
    "1.0",
    Label("PII.Contact.EMail", "email", ("mail",)),
    Label("SECRET.ApiToken", "api token"),
    Label("PII.Identifier.Tax", "tax number", ("tin", "tax_id")),
    Label("PII.Identifier.NationalID.KR", "Korean RRN", ("rrn",)),
    Label("OTHER.Legacy", "gone"),
    Label("HARM.Mixed", "ambiguous", ("one_a", "two_b")),
)
NEW = taxonomy(
    "2.0",
    Label("PII.Contact.Email", "email address", ("mail",)),
    Label("SECRET.AccessToken", "token", ("secret.api_token",)),
    Label("PII.Identifier.TaxID", "tax identifier", ("tax id", "tin")),
    Label("PII.Identifier.NationalID", "national id"),
    Label("HARM.One", "one", ("one a",)),
    Label("HARM.Two", "two", ("two b",)),
)


def by_old(plan: MigrationPlan) -> dict[str, LabelChange]:
    return {change.old: change for change in plan.changes}


def test_2025_09_to_2026_11_keeps_every_old_label() -> None:
    old, new = packaged(OLD_FILE), packaged(NEW_FILE)
    plan = plan_migration(old, new)
    assert (plan.from_version, plan.to_version) == ("2025.09", "2026.11")
    assert len(plan.changes) == len(old) == 39
    assert {change.kind for change in plan.changes} == {"kept"}
    assert all(change.new == change.old for change in plan.changes)
    assert plan.renames() == {}
    assert "HARM.CRIME.Fraud" in plan.added
    assert "HARM.CRIME.SexCrime" in plan.added
    assert "SECRET.APIKey" not in plan.added
    assert list(plan.added) == sorted(set(new) - set(old))


def test_2025_09_plan_warns_that_sexual_changed_meaning() -> None:
    plan = plan_migration(packaged(OLD_FILE), packaged(NEW_FILE))
    sexual = by_old(plan)["HARM.VIOLENCE.Sexual"]
    assert sexual.kind == "kept"
    assert "meaning changed" in sexual.reason
    assert SEMANTIC_NOTES_2025_09["HARM.VIOLENCE.Sexual"] in sexual.note
    assert "HARM.CRIME.SexCrime" in sexual.note
    # the old aliases that moved are found mechanically, not only from the written note
    assert "'sexual_violence'" in sexual.note
    assert any(note.startswith("HARM.VIOLENCE.Sexual: ") for note in plan.notes)
    assert by_old(plan)["PII.Contact.Email"].note == ""
    assert plan.to_dict()["summary"] == {"kept": 39, "renamed": 0, "rolled_up": 0, "removed": 0}


def test_packaged_packs_are_already_current() -> None:
    plan = plan_migration(packaged(OLD_FILE), packaged(NEW_FILE))
    reviewed = []
    for pack in load_packs(PACKAGED_DATA / "detectors"):
        migrated, lines = apply_to_pack(pack, plan)
        assert migrated is pack
        assert all(": review " in line for line in lines), lines
        reviewed += [f"{pack.detector} {line}" for line in lines]
    assert any(
        line.startswith("openai-moderation sexual: review HARM.VIOLENCE.Sexual")
        for line in reviewed
    )


def test_rules_in_order() -> None:
    changes = by_old(plan_migration(OLD, NEW))
    assert changes["OTHER.Safe"] == LabelChange(
        "OTHER.Safe", "OTHER.Safe", "kept", "same name in 2.0"
    )
    email = changes["PII.Contact.EMail"]
    assert (email.new, email.kind, email.reason) == (
        "PII.Contact.Email",
        "renamed",
        "spelled PII.Contact.Email in 2.0",
    )
    token = changes["SECRET.ApiToken"]
    assert (token.new, token.kind) == ("SECRET.AccessToken", "renamed")
    assert token.reason == "listed as an alias of SECRET.AccessToken"
    tax = changes["PII.Identifier.Tax"]
    assert (tax.new, tax.kind) == ("PII.Identifier.TaxID", "renamed")
    assert "'tin'" in tax.reason
    korean = changes["PII.Identifier.NationalID.KR"]
    assert (korean.new, korean.kind) == ("PII.Identifier.NationalID", "rolled_up")
    legacy = changes["OTHER.Legacy"]
    assert (legacy.new, legacy.kind) == (None, "removed")
    mixed = changes["HARM.Mixed"]
    assert (mixed.new, mixed.kind) == (None, "removed")
    assert "HARM.One, HARM.Two" in mixed.reason


def test_plan_order_renames_and_added_are_stable() -> None:
    plan = plan_migration(OLD, NEW)
    assert [change.old for change in plan.changes] == sorted(OLD)
    assert plan.renames() == {
        "PII.Contact.EMail": "PII.Contact.Email",
        "PII.Identifier.NationalID.KR": "PII.Identifier.NationalID",
        "PII.Identifier.Tax": "PII.Identifier.TaxID",
        "SECRET.ApiToken": "SECRET.AccessToken",
    }
    assert plan.added == (
        "HARM.One",
        "HARM.Two",
        "PII.Contact.Email",
        "PII.Identifier.NationalID",
        "PII.Identifier.TaxID",
        "SECRET.AccessToken",
    )
    assert plan.notes == ()


def test_explicit_mapping_wins_only_where_it_differs() -> None:
    plan = plan_migration(
        OLD,
        NEW,
        {"OTHER.Legacy": "OTHER.Unknown", "PII.Identifier.Tax": "PII.Identifier.TaxID"},
    )
    changes = by_old(plan)
    assert changes["OTHER.Legacy"] == LabelChange(
        "OTHER.Legacy", "OTHER.Unknown", "renamed", "mapped by hand in the plan"
    )
    assert "'tin'" in changes["PII.Identifier.Tax"].reason
    overridden = by_old(plan_migration(OLD, NEW, {"PII.Identifier.NationalID.KR": "HARM.One"}))
    assert overridden["PII.Identifier.NationalID.KR"].kind == "renamed"
    assert overridden["PII.Identifier.NationalID.KR"].new == "HARM.One"


def test_explicit_mapping_must_name_real_labels() -> None:
    with pytest.raises(MigrationError, match=r"'NOPE\.Label' is not a 1\.0 label"):
        plan_migration(OLD, NEW, {"NOPE.Label": "HARM.One"})
    with pytest.raises(MigrationError, match=r"'NOPE\.Target' is not a 2\.0 label"):
        plan_migration(OLD, NEW, {"OTHER.Legacy": "NOPE.Target"})


def test_edited_plan_round_trips() -> None:
    plan = plan_migration(OLD, NEW)
    data = plan.to_dict()
    assert plan_from_dict(data) == plan
    assert plan_migration(OLD, NEW, explicit_mapping(data)) == plan
    for entry in data["changes"]:
        if entry["old"] == "OTHER.Legacy":
            entry["new"] = "OTHER.Unknown"
    edited = by_old(plan_migration(OLD, NEW, explicit_mapping(data)))
    assert edited["OTHER.Legacy"].new == "OTHER.Unknown"
    assert explicit_mapping({"OTHER.Legacy": "OTHER.Unknown"}) == {"OTHER.Legacy": "OTHER.Unknown"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be a mapping"),
        ({"from_version": "1", "to_version": "2"}, "missing changes"),
        ({"from_version": "1", "to_version": "2", "changes": [{"new": "A.B"}]}, "'old'"),
        (
            {"from_version": "1", "to_version": "2", "changes": [{"old": "A.B", "kind": "moved"}]},
            "kind must be one of",
        ),
        (
            {"from_version": "1", "to_version": "2", "changes": [{"old": "A.B", "kind": "kept"}]},
            "only a removed label",
        ),
    ],
)
def test_plan_from_dict_rejects_broken_plans(data: object, message: str) -> None:
    with pytest.raises(MigrationError, match=message):
        plan_from_dict(data)


def test_explicit_mapping_rejects_non_labels() -> None:
    with pytest.raises(MigrationError):
        explicit_mapping(["A.B"])
    with pytest.raises(MigrationError):
        explicit_mapping({"A.B": 3})


def test_apply_rewrites_targets_and_reports_each_change() -> None:
    pack = DetectorPack(
        detector="legacy-det",
        version="1",
        vendor="test",
        maps={
            "mail": ("PII.Contact.EMail",),
            "both": ("PII.Identifier.Tax", "PII.Contact.EMail"),
            "us_tin": ("PII.Identifier.Tax.US",),
            "rrn": ("PII.Identifier.NationalID.KR",),
            "rrn_busan": ("PII.Identifier.NationalID.KR.Busan",),
            "gone": ("OTHER.Legacy",),
            "same": ("OTHER.Safe",),
            "already_new": ("PII.Contact.Email",),
            "dup": ("PII.Contact.EMail", "PII.Contact.Email"),
        },
        thresholds={"mail": 0.4},
    )
    migrated, lines = apply_to_pack(pack, plan_migration(OLD, NEW))
    assert dict(migrated.maps) == {
        "mail": ("PII.Contact.Email",),
        "both": ("PII.Identifier.TaxID", "PII.Contact.Email"),
        "us_tin": ("PII.Identifier.TaxID.US",),
        "rrn": ("PII.Identifier.NationalID",),
        "rrn_busan": ("PII.Identifier.NationalID",),
        "gone": ("OTHER.Legacy",),
        "same": ("OTHER.Safe",),
        "already_new": ("PII.Contact.Email",),
        "dup": ("PII.Contact.Email",),
    }
    assert lines == [
        "mail: PII.Contact.EMail -> PII.Contact.Email",
        "both: PII.Identifier.Tax -> PII.Identifier.TaxID",
        "both: PII.Contact.EMail -> PII.Contact.Email",
        "us_tin: PII.Identifier.Tax.US -> PII.Identifier.TaxID.US",
        "rrn: PII.Identifier.NationalID.KR -> PII.Identifier.NationalID",
        "rrn_busan: PII.Identifier.NationalID.KR.Busan -> PII.Identifier.NationalID",
        "gone: OTHER.Legacy has no successor; edit by hand",
        "dup: PII.Contact.EMail -> PII.Contact.Email",
    ]
    assert migrated.thresholds == {"mail": 0.4}
    assert (migrated.detector, migrated.version, migrated.vendor) == ("legacy-det", "1", "test")
    assert migrated.lookup("MAIL") == (("PII.Contact.Email",), "normalized")


def test_notes_depend_on_the_source_version() -> None:
    sexual = Label("HARM.VIOLENCE.Sexual", "sexual violence", ("sexual_assault",))
    new = taxonomy(
        "2026.11",
        Label("HARM.VIOLENCE.Sexual", "sexual content"),
        Label("HARM.CRIME.SexCrime", "sex crime", ("sexual assault",)),
    )
    noted = by_old(plan_migration(taxonomy("2025.09", sexual), new))["HARM.VIOLENCE.Sexual"]
    assert noted.note.startswith(SEMANTIC_NOTES_2025_09["HARM.VIOLENCE.Sexual"])
    assert "now belongs to HARM.CRIME.SexCrime" in noted.note
    other = by_old(plan_migration(taxonomy("2024.01", sexual), new))["HARM.VIOLENCE.Sexual"]
    assert other.note == "its old alias 'sexual_assault' now belongs to HARM.CRIME.SexCrime"

    pack = DetectorPack(
        detector="x", version="1", vendor="v", maps={"sexual": ("HARM.VIOLENCE.Sexual",)}
    )
    plan = plan_migration(taxonomy("2025.09", sexual), new)
    migrated, lines = apply_to_pack(pack, plan)
    assert migrated is pack
    assert lines == [f"sexual: review HARM.VIOLENCE.Sexual: {noted.note}"]
