"""Training and evaluation data for the learned tier, generated from the reference data.

Pure: taxonomy and packs in, examples out, no I/O and no global random state.

Sources: the taxonomy's aliases, descriptions and the words of each label's name, every
detector pack's ``maps`` entries (the vendor's own spelling), the identifier lexicons
(:mod:`llama_mapper.model.lexicon`, training only) and made-up labels with no target
(training only: they teach the model to be unsure). Augmentation imitates how
vendors spell the same thing differently: case and separator styles, vendor prefixes
(``pii/``, ``yes_``, ``S7: ``), common abbreviations, plurals and suffixes.

No leakage: the split is by detector. A model is trained on the taxonomy and the training
detectors' packs, its confidence is calibrated on other detectors, and it is evaluated on
detectors it never saw, so the evaluation measures what the tier is for: labels from a
vendor nobody wrote a pack for. Generated text never contains the canonical answer; only a
vendor's own label may (where the vendor really emits it).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import orjson

from llama_mapper.packs.model import DetectorPack
from llama_mapper.taxonomy.model import UNKNOWN, Taxonomy
from llama_mapper.taxonomy.normalize import normalize_label

if TYPE_CHECKING:
    from llama_mapper.model.lexicon import Lexicon

#: Bumped whenever the generation rules change (it is part of the data hash).
#: 2: packs in ``UNTRAINED_DETECTORS`` are left out of every split.
#: 3: the identifier lexicons (``model/lexicon.py``) and made-up labels with no target
#: (``nonsense_examples``) join the training data.
DATA_VERSION = "3"
TAXONOMY_SOURCE = "taxonomy"
#: Held out for evaluation: one PII scanner, two harm classifiers, a secret scanner, and
#: a content-safety service with injection and grounding labels.
EVALUATION_DETECTORS = (
    "azure-content-safety",
    "detect-secrets",
    "llama-guard",
    "openai-moderation",
    "presidio",
)
#: Held out from training to fit the confidence calibration.
CALIBRATION_DETECTORS = ("deberta-toxicity", "nemo-guardrails", "regex-pii")
#: Packs the rules use but the model does not learn from. TruffleHog names a detector by
#: its service alone (``Stripe``, ``Mailgun``: 949 names, 83% of them API keys); trained on
#: them, the model read any word it did not know as a service's API key (``emial`` ->
#: SECRET.APIKey at 0.86 instead of an unsure answer), so they stay out.
#: azure-ai-language-pii arrived after the shipped model (embedding-1.2.0) was trained:
#: it stays out until the next model is trained with it, so the shipped card's data hash
#: still describes the data the model saw.
UNTRAINED_DETECTORS = ("trufflehog", "azure-ai-language-pii")

#: Vendor codes with no words in them (``S7``, ``O3``, ``LABEL_1``, ``SH``): only a pack can
#: say what they mean, so they neither train nor test the model.
_OPAQUE = re.compile(r"^(?:label_?\d+|[a-z]{1,2}\d*|[a-z]\d+)$")
_MEANINGFUL_SHORT = frozenset({"ok", "id"})

_PREFIXES = (
    "pii/",
    "yes_",
    "S{n}: ",
    "category:",
    "detected_",
    "flag_",
    "is_",
    "risk/",
    "cat_",
    "entity_",
    "content/",
    "guard.",
)
_SUFFIXES = (
    "_detected",
    " (high)",
    "_flag",
    "-check",
    "_violation",
    " risk",
    "Detector",
    "Recognizer",
    "_scanner",
    "_entity",
)
#: Made-up company names: vendors put their own or a product's name in front of a label
#: (``Acme Access Key``); the model must learn that a brand says nothing about the class.
BRANDS = ("acme", "contoso", "globex", "initech", "umbrella", "hooli", "vandelay", "stark")
#: Country codes, as PII scanners prefix locale-specific identifiers (``PL_PESEL``).
COUNTRIES = ("us", "uk", "de", "fr", "in", "au", "ca", "br", "jp", "kr", "es", "it", "nl", "sg")
_ABBREVIATIONS = {
    "number": ("num", "no", "nr"),
    "address": ("addr",),
    "identifier": ("id",),
    "identification": ("id",),
    "account": ("acct",),
    "license": ("lic",),
    "licence": ("lic",),
    "telephone": ("tel",),
    "phone": ("tel",),
    "information": ("info",),
    "password": ("pwd", "pass"),
    "credentials": ("creds",),
    "credential": ("cred",),
    "security": ("sec",),
    "social": ("soc",),
    "medical": ("med",),
    "personal": ("pers",),
    "government": ("gov",),
    "application": ("app",),
    "organization": ("org",),
    "date": ("dt",),
    "international": ("intl",),
    "harassment": ("harass",),
    "violence": ("viol",),
    "national": ("natl",),
    "insurance": ("ins",),
    "reference": ("ref",),
    "private": ("priv",),
    "configuration": ("config",),
    "certificate": ("cert",),
}
#: Every vendor prefix and suffix the augmentation adds (noise to the model's reading).
AFFIXES = (*_PREFIXES, *_SUFFIXES)
_STYLES = ("upper_snake", "lower_snake", "kebab", "pascal", "title", "lower_space")
_WORD = re.compile(r"[a-z0-9]+")
_SHORT_DESCRIPTION_WORDS = 8


@dataclass(frozen=True, slots=True)
class Example:
    """One (vendor label text -> canonical label) pair."""

    text: str
    label: str
    #: Every canonical label that counts as right (packs may map one key to several).
    targets: tuple[str, ...]
    #: The detector whose pack the text comes from, or ``taxonomy``.
    detector: str
    #: ``pack``, ``alias``, ``description``, ``name``, ``lexicon``, ``nonsense`` (no
    #: targets: the label is ``OTHER.Unknown``) or ``augmented:<style>``.
    source: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["targets"] = list(self.targets)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Example:
        return cls(
            text=str(data["text"]),
            label=str(data["label"]),
            targets=tuple(str(t) for t in data["targets"]),
            detector=str(data["detector"]),
            source=str(data["source"]),
        )


@dataclass(frozen=True)
class Splits:
    train: tuple[Example, ...]
    calibration: tuple[Example, ...]
    evaluation: tuple[Example, ...]

    def data_hash(self) -> str:
        """SHA-256 over every split, in order: the model card's ``data_hash``."""
        digest = hashlib.sha256(f"llama-mapper-data-{DATA_VERSION}\n".encode())
        for name, examples in (
            ("train", self.train),
            ("calibration", self.calibration),
            ("evaluation", self.evaluation),
        ):
            digest.update(f"#{name}\n".encode())
            digest.update(to_jsonl(examples))
        return digest.hexdigest()


def is_opaque(label: str) -> bool:
    """A code without words: nothing in its text says what it means."""
    normalized = normalize_label(label)
    return bool(_OPAQUE.match(normalized)) and normalized not in _MEANINGFUL_SHORT


def leaks_answer(text: str, label: str) -> bool:
    """Whether ``text`` spells out the canonical ``label`` (which generated text must not)."""
    return normalize_label(label) in normalize_label(text)


def words(text: str) -> list[str]:
    from llama_mapper.model.text import label_text

    return _WORD.findall(label_text(text))


def styled(tokens: Sequence[str], style: str) -> str:
    """``tokens`` written in one of the vendor spelling styles."""
    if style == "upper_snake":
        return "_".join(tokens).upper()
    if style == "lower_snake":
        return "_".join(tokens)
    if style == "kebab":
        return "-".join(tokens)
    if style == "pascal":
        return "".join(t.capitalize() for t in tokens)
    if style == "title":
        return " ".join(t.capitalize() for t in tokens)
    return " ".join(tokens)


def _plural(word: str) -> str:
    if word.endswith(("s", "x", "z")) or word.isdigit():
        return word
    if word.endswith("y") and len(word) > 2 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    if word.endswith(("ch", "sh")):
        return word + "es"
    return word + "s"


def variants(text: str, count: int, seed: str, *, personal: bool = False) -> list[tuple[str, str]]:
    """Up to ``count`` distinct vendor-style respellings of ``text`` as ``(text, source)``.

    Seeded by the text itself, so adding a pack never changes another pack's variants.
    ``personal`` labels (PII) may also get a country-code prefix.
    """
    tokens = words(text)
    if not tokens:
        return []
    rng = random.Random(f"{seed}:{text}")  # noqa: S311 - augmentation, not security
    kinds = ["style", "prefix", "plural", "abbrev", "suffix", "brand"]
    if personal:
        kinds.append("country")
    found: dict[str, str] = {}
    for _ in range(count * 4):
        if len(found) >= count:
            break
        kind = rng.choice(kinds)
        style = rng.choice(_STYLES)
        current = list(tokens)
        if kind == "plural":
            current[-1] = _plural(current[-1])
        elif kind == "abbrev":
            options = [i for i, t in enumerate(current) if t in _ABBREVIATIONS]
            if not options:
                continue
            index = rng.choice(options)
            current[index] = rng.choice(_ABBREVIATIONS[current[index]])
        spelled = styled(current, style)
        if kind == "prefix":
            prefix = rng.choice(_PREFIXES).replace("{n}", str(rng.randint(1, 20)))
            spelled = prefix + spelled
        elif kind == "suffix":
            spelled += rng.choice(_SUFFIXES)
        elif kind == "brand":
            spelled = styled([rng.choice(BRANDS), *current], style)
        elif kind == "country":
            spelled = styled([rng.choice(COUNTRIES), *current], style)
        if spelled != text and spelled not in found:
            found[spelled] = f"augmented:{kind}"
    return list(found.items())


def short_description(description: str) -> str:
    """The first clause of a description, at most a few words (how vendors title things)."""
    clause = re.split(r"[,.;:(]", description, maxsplit=1)[0]
    tokens = clause.split()
    for article in ("A", "An", "The", "a", "an", "the"):
        if tokens and tokens[0] == article:
            tokens = tokens[1:]
    return " ".join(tokens[:_SHORT_DESCRIPTION_WORDS])


def name_words(name: str) -> str:
    """The last two segments of a canonical name as words (``identifier ssn``)."""
    from llama_mapper.model.text import label_text

    return label_text(" ".join(name.split(".")[-2:]))


def taxonomy_examples(taxonomy: Taxonomy, seed: int, augment: int) -> Iterator[Example]:
    """Aliases, descriptions and name words of every label but ``OTHER.Unknown``."""
    for name, label in taxonomy.labels.items():
        if name == UNKNOWN:
            continue
        texts: list[tuple[str, str]] = [(alias, "alias") for alias in label.aliases]
        texts.append((name_words(name), "name"))
        if label.description:
            texts.append((label.description, "description"))
            texts.append((short_description(label.description), "description"))
        for text, source in texts:
            if not text or leaks_answer(text, name):
                continue
            yield Example(text, name, (name,), TAXONOMY_SOURCE, source)
            if source == "description" and len(text.split()) > _SHORT_DESCRIPTION_WORDS:
                continue
            personal = name.startswith("PII.")
            seed_text = f"{seed}:{TAXONOMY_SOURCE}"
            for spelled, style in variants(text, augment, seed_text, personal=personal):
                if not leaks_answer(spelled, name):
                    yield Example(spelled, name, (name,), TAXONOMY_SOURCE, style)


def pack_examples(pack: DetectorPack, seed: int, augment: int) -> Iterator[Example]:
    """The pack's own labels (as the vendor emits them) and respellings of them."""
    for key, raw_targets in pack.maps.items():
        targets = tuple(t for t in dict.fromkeys(raw_targets) if t != UNKNOWN)
        if not targets or is_opaque(key):
            continue
        yield Example(key, targets[0], targets, pack.detector, "pack")
        personal = targets[0].startswith("PII.")
        for spelled, style in variants(key, augment, f"{seed}:{pack.detector}", personal=personal):
            if is_opaque(spelled) or any(leaks_answer(spelled, t) for t in targets):
                continue
            yield Example(spelled, targets[0], targets, pack.detector, style)


_TITLE_HEAD = re.compile(r"^([^(]*)\((.*)\)$")
_TITLE_WORDS = 8
NONSENSE = "nonsense"
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def lexicon_examples(lexicon: Lexicon, seed: int, augment: int) -> Iterator[Example]:
    """A lexicon's identifiers as a vendor would label them, with respellings.

    ``au.abn`` titled "ABN (Australian Business Number)." gives ``AU_ABN`` (how PII
    scanners name a local identifier), ``ABN`` and ``Australian Business Number``. Of a
    title like "NRT (Número de Registre Tributari, Andorra tax number)." only the
    abbreviation and the last, English part are used: whole names in the local language
    taught the model to read any unfamiliar word as a tax number. Entries without a
    target say only what something is *not*, and are skipped.
    """
    source = f"lexicon:{lexicon.name}"
    for entry in lexicon.entries:
        if entry.target is None:
            continue
        segments = [part.strip("_") for part in entry.key.split(".")]
        texts = ["_".join(segments).upper(), *_title_texts(entry.title)]
        for text in dict.fromkeys(texts):
            if is_opaque(text) or leaks_answer(text, entry.target):
                continue
            yield Example(text, entry.target, (entry.target,), source, "lexicon")
            personal = entry.target.startswith("PII.")
            for spelled, style in variants(text, augment, f"{seed}:{source}", personal=personal):
                if not is_opaque(spelled) and not leaks_answer(spelled, entry.target):
                    yield Example(spelled, entry.target, (entry.target,), source, style)


def _title_texts(title: str) -> list[str]:
    """The abbreviations and the English description of a lexicon title."""
    title = title.strip().rstrip(".")
    match = _TITLE_HEAD.match(title)
    if match is None:
        return [title] if len(title.split()) <= _TITLE_WORDS else []
    head, inner = match.group(1), match.group(2)
    texts = [part.strip() for part in head.split(",")]
    texts.append(inner.split(",")[-1].strip())
    return [text for text in texts if 0 < len(text.split()) <= _TITLE_WORDS]


def nonsense_examples(seed: int, count: int) -> Iterator[Example]:
    """Made-up labels (``Zxqv_Blorp``) with no acceptable target (training only).

    A classifier over known labels must put every input somewhere; taught nothing else,
    it files words it has never seen under whichever label's vocabulary looks least
    familiar (tax numbers from a lexicon of local abbreviations, API keys from a list of
    service names) and is sure of it. These examples train it to spread its confidence
    instead, so the tier's threshold turns them into ``OTHER.Unknown``.
    """
    rng = random.Random(f"{seed}:{NONSENSE}")  # noqa: S311 - augmentation, not security
    for _ in range(count):
        tokens = [
            "".join(rng.choice(_LETTERS) for _ in range(rng.randint(3, 8)))
            for _ in range(rng.choice((1, 1, 2, 2, 3)))
        ]
        yield Example(styled(tokens, rng.choice(_STYLES)), UNKNOWN, (), NONSENSE, NONSENSE)


def _dedupe(examples: Iterable[Example]) -> tuple[Example, ...]:
    """First example per (detector, normalized text) wins: no duplicated votes."""
    seen: set[tuple[str, str]] = set()
    kept: list[Example] = []
    for example in examples:
        key = (example.detector, normalize_label(example.text))
        if key in seen or not key[1]:
            continue
        seen.add(key)
        kept.append(example)
    return tuple(kept)


def build_splits(
    taxonomy: Taxonomy,
    packs: Iterable[DetectorPack],
    *,
    seed: int = 0,
    train_augment: int = 3,
    heldout_augment: int = 2,
    evaluation: Sequence[str] = EVALUATION_DETECTORS,
    calibration: Sequence[str] = CALIBRATION_DETECTORS,
    lexicons: Sequence[Lexicon] = (),
    nonsense: int = 400,
) -> Splits:
    """Leave-detectors-out splits; a pack's targets must be canonical (roll them up first).

    ``lexicons`` are training data only: they are no detector's output."""
    by_name = {
        pack.detector: pack
        for pack in sorted(packs, key=lambda p: p.detector)
        if pack.detector not in UNTRAINED_DETECTORS
    }
    missing = [name for name in (*evaluation, *calibration) if name not in by_name]
    if missing:
        raise ValueError(f"held-out detectors without a pack: {', '.join(missing)}")
    if set(evaluation) & set(calibration):
        raise ValueError("a detector cannot be both calibration and evaluation data")
    train: list[Example] = list(taxonomy_examples(taxonomy, seed, train_augment))
    for lexicon in lexicons:
        train.extend(lexicon_examples(lexicon, seed, train_augment))
    train.extend(nonsense_examples(seed, nonsense))
    held: dict[str, list[Example]] = {"calibration": [], "evaluation": []}
    for name, pack in by_name.items():
        if name in evaluation:
            held["evaluation"].extend(pack_examples(pack, seed, heldout_augment))
        elif name in calibration:
            held["calibration"].extend(pack_examples(pack, seed, heldout_augment))
        else:
            train.extend(pack_examples(pack, seed, train_augment))
    known = set(taxonomy.labels)
    for example in (*train, *held["calibration"], *held["evaluation"]):
        unknown = [t for t in example.targets if t not in known]
        if unknown:
            raise ValueError(f"{example.detector}: target {unknown[0]} is not a canonical label")
    return Splits(_dedupe(train), _dedupe(held["calibration"]), _dedupe(held["evaluation"]))


def to_jsonl(examples: Iterable[Example]) -> bytes:
    return b"".join(
        orjson.dumps(example.to_dict(), option=orjson.OPT_SORT_KEYS) + b"\n" for example in examples
    )


def from_jsonl(data: bytes) -> tuple[Example, ...]:
    return tuple(Example.from_dict(orjson.loads(line)) for line in data.splitlines() if line)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
