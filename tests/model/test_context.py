"""The detector context of the embedding mapper: what it reads, and how training varies it."""

from __future__ import annotations

from llama_mapper.catalog import Catalog
from llama_mapper.model.context import KIND_NAMES, NEUTRAL_NAMES, contexts, kind_free, kind_words
from llama_mapper.model.data import (
    BRANDS,
    EVALUATION_DETECTORS,
    TAXONOMY_SOURCE,
    build_splits,
    words,
)
from llama_mapper.model.text import model_text


def test_the_label_comes_first_and_the_detector_is_optional() -> None:
    assert model_text("StripeDetector", "detect-secrets") == "stripe detector | detect secrets"
    assert model_text("PL_PESEL") == "pl pesel"
    # A name without words adds nothing (not an empty segment).
    assert model_text("PL_PESEL", "--") == "pl pesel"


def test_made_up_names_share_no_word_with_the_evaluation_detectors() -> None:
    vocabulary = {w for names in KIND_NAMES.values() for n in names for w in words(n)}
    vocabulary |= set(NEUTRAL_NAMES) | set(BRANDS)
    held_out = {w for name in EVALUATION_DETECTORS for w in words(name)}
    assert vocabulary & held_out == set()


def test_contexts_are_seeded_and_never_name_a_held_out_detector(catalog: Catalog) -> None:
    splits = build_splits(catalog.taxonomy, catalog.packs)
    first = contexts(splits.train, 0, 0)
    assert first == contexts(splits.train, 0, 0)
    assert first != contexts(splits.train, 0, 1)
    assert [text for text, _ in first] == [e.text for e in splits.train]
    names = [name for _, name in first]
    real = {e.detector for e in splits.train} - {TAXONOMY_SOURCE}
    shown = {name for name in names if name is not None}
    assert real <= shown
    assert TAXONOMY_SOURCE not in shown
    held_out = {e.detector for e in (*splits.calibration, *splits.evaluation)}
    assert not shown & held_out
    # Some examples are shown without any name, so the model still works without one.
    assert 0.2 < names.count(None) / len(names) < 0.5


def test_kind_free_labels_name_one_label_and_come_with_a_kind_name(catalog: Catalog) -> None:
    splits = build_splits(catalog.taxonomy, catalog.packs)
    bare = kind_free(splits.train, kind_words(catalog.taxonomy))
    owners: dict[str, set[str]] = {}
    for row, text in bare.items():
        owners.setdefault(text, set()).add(splits.train[row].label)
        assert set(words(text)) < set(words(splits.train[row].text))
        assert not set(words(text)) & set(BRANDS)
    assert all(len(labels) == 1 for labels in owners.values())
    shown = contexts(splits.train, 0, 0, bare)
    changed = [(row, pair) for row, pair in enumerate(shown) if pair[0] != splits.train[row].text]
    assert changed
    kind = {w for names in KIND_NAMES.values() for n in names for w in words(n)}
    for row, (text, name) in changed:
        assert text == bare[row]
        assert name is not None
        assert set(words(name)) & kind
