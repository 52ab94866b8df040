"""The detector context a training example is shown with (the embedding mapper's input).

At serving time the tier knows which detector emitted a label; its name often says what
kind of scanner it is. Training shows each example with its own detector's name, with no
name, or with a made-up one, drawn afresh every epoch, so the model learns to use a name
that says something (``acme-secret-scanner``), to ignore one that does not
(``globex-api``) and still to work without any.

The made-up names are built from a fixed vocabulary of scanner kinds that shares no word
with the held-out evaluation detectors' names (a test checks it): those names are seen at
evaluation time only, exactly as a new vendor's would be.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from llama_mapper.model.data import AFFIXES, BRANDS, COUNTRIES, TAXONOMY_SOURCE, Example, words
from llama_mapper.taxonomy.model import Taxonomy

#: How vendors name a detector of each family (the canonical label's first segment).
KIND_NAMES: dict[str, tuple[str, ...]] = {
    "PII": ("pii scanner", "dlp", "privacy filter", "pii redactor", "personal data finder"),
    "SECRET": ("secret scanner", "credential scanner", "key leak finder", "token scanner"),
    "HARM": ("toxicity classifier", "abuse filter", "harm classifier", "nsfw filter"),
    "BIAS": ("toxicity classifier", "fairness checker", "bias classifier"),
    "PROMPT_INJECTION": ("injection shield", "prompt firewall", "attack classifier"),
    "JAILBREAK": ("jailbreak classifier", "prompt firewall", "attack classifier"),
    "SECURITY": ("code scanner", "malware scanner", "prompt firewall"),
}
#: Names that say nothing about what the detector finds.
NEUTRAL_NAMES = ("scanner", "api", "checker", "service", "filter", "engine", "analyzer")


def synthetic_name(label: str, rng: random.Random) -> str:
    """A made-up detector name for an example of ``label``: by kind, or neutral."""
    kinds = KIND_NAMES.get(family(label))
    words = rng.choice(kinds) if kinds and rng.random() < 0.6 else rng.choice(NEUTRAL_NAMES)
    if rng.random() < 0.5:
        words = f"{rng.choice(BRANDS)} {words}"
    return words.replace(" ", rng.choice(("-", "_", "-")))


def family(label: str) -> str:
    return label.split(".", maxsplit=1)[0]


def kind_words(taxonomy: Taxonomy) -> dict[str, frozenset[str]]:
    """Per family, the words its labels' names and aliases use (``key``, ``token``)."""
    found: dict[str, set[str]] = {}
    for name, label in taxonomy.labels.items():
        bag = found.setdefault(family(name), set())
        for text in (name.replace(".", " "), *label.aliases):
            bag.update(words(text))
    return {name: frozenset(bag) for name, bag in found.items()}


def kind_free(examples: Sequence[Example], kinds: dict[str, frozenset[str]]) -> dict[int, str]:
    """Examples whose label names something specific besides its kind (``stripe api key``).

    The text without its family's kind words and without augmentation noise (brands,
    country codes, vendor prefixes and suffixes), kept only where what remains belongs
    to one canonical label in all of ``examples``: ``stripe`` says APIKey once the
    detector says "secret scanner", ``contoso`` or ``numbers`` say nothing.
    """
    noise = set(BRANDS) | set(COUNTRIES) | {w for a in AFFIXES for w in words(a)}
    bare: dict[int, str] = {}
    owners: dict[str, set[str]] = {}
    for row, example in enumerate(examples):
        if example.source == "description" or family(example.label) not in KIND_NAMES:
            continue
        tokens = words(example.text)
        kind = kinds.get(family(example.label), frozenset())
        kept = [t for t in tokens if t not in kind and t not in noise and len(t) > 2]
        if kept and len(kept) < len(tokens):
            text = " ".join(kept)
            bare[row] = text
            owners.setdefault(text, set()).add(example.label)
    return {row: text for row, text in bare.items() if len(owners[text]) == 1}


def contexts(
    examples: Sequence[Example],
    seed: int,
    epoch: int,
    bare_texts: dict[int, str] | None = None,
) -> list[tuple[str, str | None]]:
    """Each example's text and detector context for this epoch (deterministic).

    A pack's example keeps its detector's name half of the time, gets none a quarter and a
    made-up name a quarter; the taxonomy's own texts (no detector emits them) get none or a
    made-up name, half and half. With ``bare_texts`` (:func:`kind_free`), 30% of those
    examples are shown without their kind words and with a kind-revealing made-up name
    (``stripe | acme-secret-scanner``): the case where only the detector says the kind.
    """
    rng = random.Random(f"context:{seed}:{epoch}")  # noqa: S311 - augmentation
    chosen: list[tuple[str, str | None]] = []
    for row, example in enumerate(examples):
        draw = rng.random()
        names = KIND_NAMES.get(family(example.label))
        if bare_texts is not None and names and rng.random() < 0.3:
            bare = bare_texts.get(row)
            if bare is not None:
                name = rng.choice(names)
                if rng.random() < 0.5:
                    name = f"{rng.choice(BRANDS)} {name}"
                chosen.append((bare, name.replace(" ", "-")))
                continue
        if example.detector == TAXONOMY_SOURCE:
            draw = 0.5 + draw / 2
        if draw < 0.5:
            chosen.append((example.text, example.detector))
        elif draw < 0.75:
            chosen.append((example.text, None))
        else:
            chosen.append((example.text, synthetic_name(example.label, rng)))
    return chosen
