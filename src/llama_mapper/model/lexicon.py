"""Training-only lexicons: what identifiers are called, country by country.

A vendor's label for a local identifier is usually its country code and local
abbreviation (``PL_PESEL``, ``AU_ABN``), which no taxonomy alias can list in full. Public
registries of number formats do list them: ``data/lexicon/stdnum.yaml`` holds the module
names and titles of python-stdnum (``au.abn``: "ABN (Australian Business Number)"), each
with the canonical label a person gave it. The model learns from them; the rules never
use them, because a lexicon entry says what a number is called, not what a detector
emits.

This module is the I/O edge (reading the YAML); :func:`llama_mapper.model.data.
lexicon_examples` turns a lexicon into examples without any.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llama_mapper.catalog import PACKAGED_DATA, Catalog
from llama_mapper.model.data import Splits, build_splits
from llama_mapper.yamlio import load_yaml_file

LEXICON_DIR = PACKAGED_DATA / "lexicon"


class LexiconError(ValueError):
    """A lexicon file cannot be used."""


@dataclass(frozen=True, slots=True)
class LexiconEntry:
    #: Dotted name of the identifier (``au.abn``; a leading segment is a country code).
    key: str
    #: Its title as the source writes it.
    title: str
    #: The canonical label, or ``None`` where nothing in the taxonomy fits (book numbers).
    target: str | None


@dataclass(frozen=True)
class Lexicon:
    name: str
    source: str
    entries: tuple[LexiconEntry, ...]


def load_lexicon(path: Path) -> Lexicon:
    data = load_yaml_file(path)
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise LexiconError(f"{path.name}: needs an 'entries' mapping")
    parsed = []
    for key, value in entries.items():
        if not isinstance(value, dict) or not isinstance(value.get("title"), str):
            raise LexiconError(f"{path.name}: entry {key!r} needs a title")
        target: Any = value.get("target")
        if target is not None and not isinstance(target, str):
            raise LexiconError(f"{path.name}: entry {key!r} has a target that is not a label")
        parsed.append(LexiconEntry(str(key), value["title"], target))
    return Lexicon(path.stem, str(data.get("source", "")), tuple(parsed))


def packaged_lexicons(folder: Path = LEXICON_DIR) -> tuple[Lexicon, ...]:
    return tuple(load_lexicon(path) for path in sorted(folder.glob("*.yaml")))


def training_splits(catalog: Catalog, *, seed: int = 0) -> Splits:
    """The splits ``mapper train`` uses: the catalog's taxonomy and packs, and the lexicons."""
    return build_splits(catalog.taxonomy, catalog.packs, seed=seed, lexicons=packaged_lexicons())
