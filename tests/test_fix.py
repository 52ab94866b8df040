"""``detectors fix``: proposals for invalid targets and unmapped labels, and applying them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llama_mapper.catalog import PACKAGED_DATA
from llama_mapper.mapping.unmapped import NOT_A_LABEL
from llama_mapper.packs.fix import LexicalSuggester, Proposal, apply_proposals, propose_fixes
from llama_mapper.packs.lint import lint_pack
from llama_mapper.packs.loader import load_packs
from llama_mapper.packs.model import DetectorPack
from llama_mapper.taxonomy.loader import load_taxonomy
from llama_mapper.taxonomy.model import Label, Taxonomy

TAXONOMY = Taxonomy.from_labels(
    "test",
    [
        Label("PII.Contact.Email", "An email address.", ("email", "email address")),
        Label("PII.Contact.Phone", "A telephone or mobile number.", ("phone", "phone number")),
        Label("PII.Contact.Address", "A street or postal address.", ("address", "street address")),
        Label(
            "PII.Identifier.SSN",
            "A United States Social Security Number.",
            ("ssn", "us ssn", "social security number"),
        ),
        Label(
            "PII.Identifier.CreditCard",
            "A payment card number.",
            ("credit card", "credit card number", "card number"),
        ),
        Label("PII.Identifier.Other", "Any other identifying number.", ("id number",)),
        Label("PII.Network.IPAddress", "An IPv4 or IPv6 address.", ("ip address", "ipv4")),
        Label("SECRET.APIKey", "A key that authenticates a program to an API.", ("api key",)),
        Label("SECRET.Password", "A password or PIN.", ("password", "passwd")),
        Label("HARM.SPEECH.Toxicity", "Rude or abusive language.", ("toxic", "toxicity")),
        Label("OTHER.Safe", "The detector found nothing.", ("safe", "benign", "non toxic")),
        Label("OTHER.Unknown", "Output that cannot be mapped.", ("unknown", "unmapped")),
    ],
)
PACK = DetectorPack(
    detector="acme-pii",
    version="1",
    vendor="Acme",
    maps={
        "LABEL_7": ("PII.Contact.EmailAddr",),
        "PHONE": ("PII.Contact.Phone", "PII.Contact.Fone"),
        "SSN": ("PII.Identifier.SSN",),
        "VISA": ("PII.Identifier.CreditCard.Visa",),
        "misc": ("NOPE.Thing",),
    },
)
UNMAPPED = [
    ("acme-pii", "e-mail address"),
    ("acme-pii", "ssn number"),
    ("acme-pii", "number"),
    ("acme-pii", "ssn"),
    ("acme-pii", NOT_A_LABEL),
    ("acme-pii", "e-mail address"),
    ("other-det", "phone number"),
]
SUGGEST = LexicalSuggester(TAXONOMY)


def proposals() -> dict[tuple[str, str, str | None], Proposal]:
    found = propose_fixes([PACK], TAXONOMY, UNMAPPED)
    return {(p.detector, p.vendor_label, p.current): p for p in found}


def test_invalid_target_gets_the_label_it_misspells() -> None:
    proposal = proposals()[("acme-pii", "LABEL_7", "PII.Contact.EmailAddr")]
    assert proposal.reason == "invalid_target"
    assert proposal.proposed == "PII.Contact.Email"
    assert proposal.similarity >= 0.9
    assert [label for label, _ in proposal.alternatives] == [
        "PII.Contact.Address",
        "PII.Contact.Phone",
    ]
    assert all(s < proposal.similarity for _, s in proposal.alternatives)


def test_vendor_key_speaks_for_a_meaningless_target() -> None:
    proposal = proposals()[("acme-pii", "PHONE", "PII.Contact.Fone")]
    assert (proposal.proposed, proposal.similarity) == ("PII.Contact.Phone", 1.0)


def test_unmapped_labels_get_proposals() -> None:
    found = proposals()
    email = found[("acme-pii", "e-mail address", None)]
    assert (email.reason, email.proposed, email.similarity) == (
        "unmapped",
        "PII.Contact.Email",
        1.0,
    )
    ssn = found[("acme-pii", "ssn number", None)]
    assert ssn.proposed == "PII.Identifier.SSN"
    assert ssn.similarity >= 0.9
    vague = found[("acme-pii", "number", None)]
    assert vague.similarity < 0.9
    assert found[("other-det", "phone number", None)].proposed == "PII.Contact.Phone"


def test_what_needs_no_fix_gets_no_proposal() -> None:
    keys = {(detector, label) for detector, label, _ in proposals()}
    assert ("acme-pii", "SSN") not in keys  # valid target
    assert ("acme-pii", "VISA") not in keys  # finer label: rolls up, lint warns only
    assert ("acme-pii", "ssn") not in keys  # unmapped when counted, mapped by the pack now
    assert ("acme-pii", NOT_A_LABEL) not in keys


def test_proposals_are_sorted_and_unique() -> None:
    found = propose_fixes([PACK], TAXONOMY, UNMAPPED)
    assert [(p.detector, p.vendor_label) for p in found] == [
        ("acme-pii", "LABEL_7"),
        ("acme-pii", "PHONE"),
        ("acme-pii", "e-mail address"),
        ("acme-pii", "misc"),
        ("acme-pii", "number"),
        ("acme-pii", "ssn number"),
        ("other-det", "phone number"),
    ]
    assert propose_fixes([PACK], TAXONOMY, reversed(UNMAPPED)) == found


def test_apply_writes_only_confident_proposals() -> None:
    found = propose_fixes([PACK], TAXONOMY, UNMAPPED)
    fixed, applied = apply_proposals(PACK, found, threshold=0.9)
    assert [(p.vendor_label, p.proposed) for p in applied] == [
        ("LABEL_7", "PII.Contact.Email"),
        ("PHONE", "PII.Contact.Phone"),
        ("e-mail address", "PII.Contact.Email"),
        ("ssn number", "PII.Identifier.SSN"),
    ]
    assert dict(fixed.maps) == {
        "LABEL_7": ("PII.Contact.Email",),
        "PHONE": ("PII.Contact.Phone",),
        "SSN": ("PII.Identifier.SSN",),
        "VISA": ("PII.Identifier.CreditCard.Visa",),
        "misc": ("NOPE.Thing",),
        "e-mail address": ("PII.Contact.Email",),
        "ssn number": ("PII.Identifier.SSN",),
    }
    errors = {issue.key for issue in lint_pack(fixed, TAXONOMY) if issue.severity == "error"}
    assert errors == {"misc"}  # below the threshold, so still for a person to fix
    assert fixed.lookup("E-Mail Address") == (("PII.Contact.Email",), "normalized")
    assert PACK.maps["LABEL_7"] == ("PII.Contact.EmailAddr",)  # the input pack is untouched


def test_proposal_below_threshold_is_not_applied() -> None:
    vague = proposals()[("acme-pii", "number", None)]
    unchanged, applied = apply_proposals(PACK, [vague], threshold=0.9)
    assert (unchanged, applied) == (PACK, [])
    lowered, applied = apply_proposals(PACK, [vague], threshold=vague.similarity)
    assert applied == [vague]
    assert lowered.maps["number"] == (vague.proposed,)


def test_apply_skips_proposals_that_no_longer_fit() -> None:
    stale = [
        Proposal("other-det", "phone number", None, "PII.Contact.Phone", 1.0, "unmapped"),
        Proposal("acme-pii", "PHONE", "PII.Gone", "PII.Contact.Phone", 1.0, "invalid_target"),
        Proposal("acme-pii", "Ssn", None, "PII.Identifier.Other", 1.0, "unmapped"),
        Proposal("acme-pii", "new_one", None, "PII.Contact.Email", 1.0, "unmapped"),
        Proposal("acme-pii", "New-One", None, "PII.Contact.Phone", 1.0, "unmapped"),
    ]
    fixed, applied = apply_proposals(PACK, stale, threshold=0.5)
    assert applied == [stale[3]]
    assert fixed.maps["new_one"] == ("PII.Contact.Email",)
    assert "New-One" not in fixed.maps
    with pytest.raises(ValueError, match="threshold"):
        apply_proposals(PACK, stale, threshold=1.5)


def test_a_plugged_in_suggester_is_kept_honest() -> None:
    calls: list[tuple[str, str]] = []

    def learned(detector: str, text: str) -> list[tuple[str, float]]:
        calls.append((detector, text))
        return [("NOT.A.Label", 0.99), ("OTHER.Unknown", 0.98), ("PII.Contact.Phone", 1.7)]

    found = propose_fixes([PACK], TAXONOMY, [("acme-pii", "Fax")], suggest=learned)
    fax = next(p for p in found if p.vendor_label == "Fax")
    assert (fax.proposed, fax.similarity, fax.alternatives) == ("PII.Contact.Phone", 1.0, ())
    assert ("acme-pii", "Fax") in calls
    assert ("acme-pii", "PII.Contact.EmailAddr") in calls
    assert ("acme-pii", "LABEL_7") in calls


def test_negation_is_not_its_opposite() -> None:
    assert SUGGEST("d", "non-toxic")[0] == ("OTHER.Safe", 1.0)
    assert all(label != "HARM.SPEECH.Toxicity" for label, _ in SUGGEST("d", "not toxic"))
    assert SUGGEST("d", "toxic")[0] == ("HARM.SPEECH.Toxicity", 1.0)


def test_suggester_ranks_words_and_exact_hits() -> None:
    assert SUGGEST("d", "U.S. SSN")[0] == ("PII.Identifier.SSN", 1.0)
    assert SUGGEST("d", "PII.Network.IPAddr")[0][0] == "PII.Network.IPAddress"
    label, similarity = SUGGEST("d", "SECRET.Passwd")[0]
    assert label == "SECRET.Password"
    assert similarity >= 0.9
    assert SUGGEST("d", "unknown") == []  # OTHER.Unknown is never a fix
    assert SUGGEST("d", "") == []
    assert SUGGEST("d", "zzqx") == []


@pytest.mark.fuzz
@settings(max_examples=300, deadline=None)
@given(
    detector=st.text(max_size=20),
    text=st.one_of(
        st.text(max_size=300), st.from_regex(r"[A-Za-z0-9_ ./:-]{0,60}", fullmatch=True)
    ),
)
def test_lexical_suggester_never_raises_and_stays_in_range(detector: str, text: str) -> None:
    ranked = SUGGEST(detector, text)
    assert len(ranked) <= 3
    assert all(0.0 <= similarity <= 1.0 for _, similarity in ranked)
    assert all(label in TAXONOMY and label != "OTHER.Unknown" for label, _ in ranked)
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)


def test_packaged_packs_need_no_target_fixes() -> None:
    if not (PACKAGED_DATA / "taxonomy.yaml").exists():
        pytest.skip("taxonomy.yaml is not packaged yet")
    taxonomy = load_taxonomy(PACKAGED_DATA / "taxonomy.yaml")
    packs = list(load_packs(PACKAGED_DATA / "detectors"))
    assert propose_fixes(packs, taxonomy) == []
    ranked = LexicalSuggester(taxonomy)("presidio", "PII.Contact.EmailAddr")
    assert ranked[0][0] == "PII.Contact.Email"
    assert ranked[0][1] >= 0.9
