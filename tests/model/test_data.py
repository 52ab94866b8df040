"""Training data: split by detector, no leaked answers, a fixed evaluation set."""

from __future__ import annotations

from pathlib import Path

import pytest

from llama_mapper.catalog import Catalog
from llama_mapper.model.data import (
    CALIBRATION_DETECTORS,
    EVALUATION_DETECTORS,
    NONSENSE,
    TAXONOMY_SOURCE,
    UNTRAINED_DETECTORS,
    build_splits,
    is_opaque,
    leaks_answer,
    lexicon_examples,
    nonsense_examples,
    to_jsonl,
    variants,
)
from llama_mapper.model.evaluate import EVAL_SET, EVAL_SET_SHA256, eval_set_hash, load_eval_set
from llama_mapper.model.lexicon import (
    LEXICON_DIR,
    Lexicon,
    LexiconEntry,
    LexiconError,
    load_lexicon,
    packaged_lexicons,
)
from llama_mapper.taxonomy.model import UNKNOWN
from llama_mapper.taxonomy.normalize import normalize_label


def test_splits_are_disjoint_by_detector(catalog: Catalog) -> None:
    splits = build_splits(catalog.taxonomy, catalog.packs)
    train = {e.detector for e in splits.train}
    assert {e.detector for e in splits.evaluation} == set(EVALUATION_DETECTORS)
    assert {e.detector for e in splits.calibration} == set(CALIBRATION_DETECTORS)
    assert not train & (set(EVALUATION_DETECTORS) | set(CALIBRATION_DETECTORS))
    assert TAXONOMY_SOURCE in train


def test_untrained_packs_serve_the_rules_but_feed_no_split(catalog: Catalog) -> None:
    splits = build_splits(catalog.taxonomy, catalog.packs)
    used = {e.detector for e in (*splits.train, *splits.calibration, *splits.evaluation)}
    for detector in UNTRAINED_DETECTORS:
        assert catalog.packs.get(detector) is not None, detector
        assert detector not in used


def test_generated_text_never_spells_the_answer(catalog: Catalog) -> None:
    splits = build_splits(catalog.taxonomy, catalog.packs)
    for example in (*splits.train, *splits.calibration, *splits.evaluation):
        if example.source == NONSENSE:  # no answer to spell
            assert example.targets == ()
            continue
        assert example.label in example.targets
        assert UNKNOWN not in example.targets
        if example.source != "pack":  # only a vendor's own label may contain it
            assert not any(leaks_answer(example.text, t) for t in example.targets), example


def test_opaque_codes_are_left_to_the_packs(catalog: Catalog) -> None:
    assert is_opaque("S7")
    assert is_opaque("O3")
    assert is_opaque("LABEL_1")
    assert is_opaque("SH")
    assert not is_opaque("OK")
    assert not is_opaque("ID")
    assert not is_opaque("PIN")
    splits = build_splits(catalog.taxonomy, catalog.packs)
    assert not [e for e in splits.evaluation if is_opaque(e.text)]


def test_augmentation_is_seeded_and_realistic() -> None:
    first = variants("social security number", 6, "0:x")
    assert first == variants("social security number", 6, "0:x")
    assert first != variants("social security number", 6, "1:x")
    texts = [text for text, _ in first]
    assert len(texts) == len(set(texts))
    assert "social security number" not in texts
    assert all(source.startswith("augmented:") for _, source in first)


def test_multi_target_entries_accept_every_target(catalog: Catalog) -> None:
    splits = build_splits(catalog.taxonomy, catalog.packs)
    suicide = [e for e in splits.evaluation if e.text == "Suicide & Self-Harm"]
    assert suicide
    assert set(suicide[0].targets) == {
        "HARM.VIOLENCE.Suicide",
        "HARM.VIOLENCE.SelfHarm",
    }


def test_committed_evaluation_set_is_the_fixed_versioned_one(catalog: Catalog) -> None:
    assert eval_set_hash() == EVAL_SET_SHA256
    committed = load_eval_set()
    assert {e.detector for e in committed} == set(EVALUATION_DETECTORS)
    # Regenerating from the packaged data gives the same file (until the packs change:
    # then the committed set stays the yardstick and this test says so).
    regenerated = build_splits(catalog.taxonomy, catalog.packs).evaluation
    assert to_jsonl(regenerated) == EVAL_SET.read_bytes()


def test_no_evaluation_label_is_a_training_example_of_its_own_vendor(catalog: Catalog) -> None:
    splits = build_splits(catalog.taxonomy, catalog.packs)
    seen = {(e.detector, normalize_label(e.text)) for e in splits.train}
    assert not [e for e in splits.evaluation if (e.detector, normalize_label(e.text)) in seen]


def test_data_hash_is_deterministic(catalog: Catalog) -> None:
    first = build_splits(catalog.taxonomy, catalog.packs, seed=0).data_hash()
    assert first == build_splits(catalog.taxonomy, catalog.packs, seed=0).data_hash()
    assert first != build_splits(catalog.taxonomy, catalog.packs, seed=1).data_hash()


def test_lexicon_entries_train_the_model_as_vendors_label_them(catalog: Catalog) -> None:
    lexicon = Lexicon(
        "demo",
        "test",
        (
            LexiconEntry("au.abn", "ABN (Australian Business Number).", "PII.Identifier.TaxID"),
            LexiconEntry("isbn", "ISBN (International Standard Book Number).", None),
        ),
    )
    examples = list(lexicon_examples(lexicon, seed=0, augment=2))
    texts = {e.text for e in examples if e.source == "lexicon"}
    assert texts == {"AU_ABN", "ABN", "Australian Business Number"}
    assert {e.label for e in examples} == {"PII.Identifier.TaxID"}  # no target, no example
    assert len(examples) > len(texts)  # respelled too
    splits = build_splits(catalog.taxonomy, catalog.packs, lexicons=[lexicon])
    assert any(e.detector == "lexicon:demo" for e in splits.train)
    held = (*splits.calibration, *splits.evaluation)
    assert not any(e.detector.startswith("lexicon:") for e in held)


def test_packaged_lexicons_name_only_canonical_labels(catalog: Catalog) -> None:
    lexicons = packaged_lexicons()
    assert lexicons, "data/lexicon/ ships at least one lexicon"
    for lexicon in lexicons:
        targets = {e.target for e in lexicon.entries if e.target is not None}
        assert targets
        assert all(target in catalog.taxonomy for target in targets), lexicon.name


def test_the_hl7_identifier_type_lexicon_trains_only_canonical_unspelled_labels(
    catalog: Catalog,
) -> None:
    lexicon = load_lexicon(LEXICON_DIR / "hl7-identifier-types.yaml")
    assert lexicon.name in {lex.name for lex in packaged_lexicons()}
    assert "v2-0203" in lexicon.source
    keys = {entry.key: entry for entry in lexicon.entries}
    assert len(keys) == len(lexicon.entries) == 138  # every concept of the CodeSystem
    targets = {entry.target for entry in lexicon.entries if entry.target is not None}
    assert all(target in catalog.taxonomy for target in targets)
    assert keys["mr"].target == "PII.Health.MedicalRecord"
    assert keys["ppn"].target == "PII.Identifier.Passport"
    assert keys["ss"].target == "PII.Identifier.SSN"
    assert keys["sid"].target is None  # specimens are not personal data
    examples = list(lexicon_examples(lexicon, seed=0, augment=3))
    assert examples
    for example in examples:
        assert not is_opaque(example.text), example
        assert not leaks_answer(example.text, example.label), example
    texts = {e.text: e.label for e in examples if e.source == "lexicon"}
    # "MR" is opaque; its title still trains, and so do three-letter codes.
    assert "MR" not in texts
    assert texts["Medical record number"] == "PII.Health.MedicalRecord"
    assert texts["NPI"] == "PII.Health.MedicalRecord"
    assert texts["American Express"] == "PII.Identifier.CreditCard"


def test_a_malformed_lexicon_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("entries:\n  au.abn: {target: PII.Identifier.TaxID}\n")
    with pytest.raises(LexiconError, match="needs a title"):
        load_lexicon(path)
    path.write_text("entries: [1, 2]\n")
    with pytest.raises(LexiconError, match="needs an 'entries' mapping"):
        load_lexicon(path)


def test_made_up_labels_train_only_and_have_no_target(catalog: Catalog) -> None:
    first = [e.text for e in nonsense_examples(seed=0, count=50)]
    assert first == [e.text for e in nonsense_examples(seed=0, count=50)]  # seeded
    assert first != [e.text for e in nonsense_examples(seed=1, count=50)]
    splits = build_splits(catalog.taxonomy, catalog.packs, nonsense=30)
    made_up = [e for e in splits.train if e.source == NONSENSE]
    assert 0 < len(made_up) <= 30
    assert all(e.targets == () for e in made_up)
    assert not any(e.source == NONSENSE for e in (*splits.calibration, *splits.evaluation))


def test_a_lexicon_title_gives_its_abbreviations_and_english_description() -> None:
    lexicon = Lexicon(
        "demo",
        "test",
        (
            LexiconEntry(
                "al.nipt",
                "NIPT, NUIS (Numri i Identifikimit për Personin e Tatueshëm, Albanian tax number).",
                "PII.Identifier.TaxID",
            ),
        ),
    )
    texts = {e.text for e in lexicon_examples(lexicon, seed=0, augment=0)}
    assert texts == {"AL_NIPT", "NIPT", "NUIS", "Albanian tax number"}
