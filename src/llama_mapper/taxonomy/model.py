"""Canonical labels and their hierarchy."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from llama_mapper.taxonomy.normalize import normalize_label

LABEL_PATTERN = re.compile(r"^[A-Z][A-Z_]*(\.[A-Za-z0-9_]+)+$")
SAFE = "OTHER.Safe"
UNKNOWN = "OTHER.Unknown"
REQUIRED_LABELS = (SAFE, UNKNOWN)


class TaxonomyError(ValueError):
    """The taxonomy data is inconsistent."""


@dataclass(frozen=True, slots=True)
class Label:
    """One canonical label with the words people use for it."""

    name: str
    description: str
    aliases: tuple[str, ...] = ()

    @property
    def category(self) -> str:
        return self.name.split(".", 1)[0]


@dataclass(frozen=True)
class Taxonomy:
    """A versioned set of canonical labels.

    Finer labels roll up: a label the taxonomy does not know is read as its longest known
    dotted prefix, so a consumer that only knows ``PII.Identifier.NationalID`` still
    understands ``PII.Identifier.NationalID.KR``.
    """

    version: str
    labels: Mapping[str, Label]
    description: str = ""
    _alias_index: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, str] = {}
        for label in self.labels.values():
            if not LABEL_PATTERN.match(label.name):
                raise TaxonomyError(f"invalid label name {label.name!r}")
            for key in (label.name, *label.aliases):
                normalized = normalize_label(key)
                owner = index.setdefault(normalized, label.name)
                if owner != label.name:
                    raise TaxonomyError(
                        f"alias {key!r} of {label.name} collides with {owner} after normalization"
                    )
        object.__setattr__(self, "_alias_index", index)

    @classmethod
    def from_labels(cls, version: str, labels: Iterable[Label], description: str = "") -> Taxonomy:
        by_name: dict[str, Label] = {}
        for label in labels:
            if label.name in by_name:
                raise TaxonomyError(f"label {label.name} is defined twice")
            by_name[label.name] = label
        return cls(version=version, labels=by_name, description=description)

    def __contains__(self, name: object) -> bool:
        return name in self.labels

    def __iter__(self) -> Iterator[str]:
        return iter(self.labels)

    def __len__(self) -> int:
        return len(self.labels)

    def resolve(self, name: str) -> str | None:
        """Return ``name`` if known, else its longest known dotted prefix, else ``None``."""
        candidate = name
        while candidate:
            if candidate in self.labels:
                return candidate
            if "." not in candidate:
                return None
            candidate = candidate.rsplit(".", 1)[0]
        return None

    def ancestors(self, name: str) -> list[str]:
        """Known labels above ``name``, nearest first."""
        parts = name.split(".")
        return [
            ".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1) if ".".join(parts[:i]) in self
        ]

    def missing_required(self) -> list[str]:
        """Labels the engine needs to express "nothing found" and "cannot map"."""
        return [name for name in REQUIRED_LABELS if name not in self.labels]

    def lookup_alias(self, normalized: str) -> str | None:
        """The label whose name or alias has this normal form."""
        return self._alias_index.get(normalized)
