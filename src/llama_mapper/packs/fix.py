"""Proposals for ``mapper detectors fix``: canonical labels for what packs get wrong or miss.

Two things need a person's attention: pack targets that are not canonical labels (a typo
or a label from an older taxonomy), and vendor labels seen at run time that no pack maps.
For both this module ranks canonical labels by similarity and, if asked, writes the
confident ones into the pack. The ranking is pluggable (``suggest``) so that a learned tier
can replace the lexical one without touching the rest (:func:`learned_suggester`, with
the lexical ranking kept as its fallback). Nothing here touches files.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from rapidfuzz import fuzz, process

from llama_mapper.mapping.unmapped import NOT_A_LABEL
from llama_mapper.packs.model import DetectorPack
from llama_mapper.taxonomy.model import UNKNOWN, Taxonomy
from llama_mapper.taxonomy.normalize import normalize_label

#: ``(detector, text) -> [(canonical label, similarity in [0, 1]), ...]``, best first.
Suggester = Callable[[str, str], list[tuple[str, float]]]

FixReason = Literal["invalid_target", "unmapped"]


class RankingModel(Protocol):
    """What the learned tier offers here: canonical labels for a text, best first."""

    def rank(self, text: str, detector: str = ...) -> list[tuple[str, float]]: ...


SUGGESTIONS = 3
#: Labels are a few words; anything longer is prose, and scoring it costs without helping.
_MAX_WORDS = 24
_ACRONYM_END = re.compile(r"(?<=[A-Z])(?=[A-Z][a-z])")
_NEGATIONS = frozenset({"no", "non", "not"})
#: A word found only in a label's description counts for less than one in its name or aliases.
_DESCRIPTION_WEIGHT = 0.85
#: Share of the score from how much of the text the label explains, against how closely one
#: of its names matches as a whole (which separates ``card number`` from ``id card number``).
_COVERAGE_SHARE = 0.7
#: Scores closer than this to the runner-up are lowered by the shortfall: a near tie means
#: the text does not say which label it is, so it must not clear an ``--apply`` threshold.
_TIE_MARGIN = 0.1
_FUZZY_MIN_LENGTH = 5
_FUZZY_CUTOFF = 80.0
_PREFIX_MIN_LENGTH = 3
_CACHE_LIMIT = 8192


@dataclass(frozen=True, slots=True)
class Proposal:
    detector: str
    vendor_label: str
    #: The invalid target being replaced; ``None`` for an unmapped label.
    current: str | None
    proposed: str
    similarity: float
    reason: FixReason
    alternatives: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "vendor_label": self.vendor_label,
            "current": self.current,
            "proposed": self.proposed,
            "similarity": self.similarity,
            "reason": self.reason,
            "alternatives": [{"label": label, "similarity": s} for label, s in self.alternatives],
        }


def propose_fixes(
    packs: Iterable[DetectorPack],
    taxonomy: Taxonomy,
    unmapped: Iterable[tuple[str, str]] = (),
    suggest: Suggester | None = None,
) -> list[Proposal]:
    """One proposal per invalid target and per unmapped ``(detector, vendor label)`` pair.

    An invalid target is judged by both the broken target and the vendor key, since either
    may carry the meaning (``PII.Contact.EmailAddr`` under ``EMAIL``). Unmapped labels the
    pack has mapped since they were counted are skipped. Suggestions outside the taxonomy
    are dropped: a fix must never introduce the very error it is meant to remove.
    """
    rank = suggest if suggest is not None else LexicalSuggester(taxonomy)
    by_detector = {pack.detector: pack for pack in packs}
    proposals: list[Proposal] = []
    for pack in by_detector.values():
        for key, targets in pack.maps.items():
            for target in dict.fromkeys(targets):
                if taxonomy.resolve(target) is not None:
                    continue
                ranked = _ranked(rank, taxonomy, pack.detector, (target, key))
                if ranked:
                    proposals.append(
                        _proposal(pack.detector, key, target, "invalid_target", ranked)
                    )
    for detector, label in dict.fromkeys(unmapped):
        if label == NOT_A_LABEL:
            continue
        owner = by_detector.get(detector)
        if owner is not None and owner.lookup(label) is not None:
            continue
        texts = (label,) if owner is None else (label, owner.normal_form(label))
        ranked = _ranked(rank, taxonomy, detector, texts)
        if ranked:
            proposals.append(_proposal(detector, label, None, "unmapped", ranked))
    proposals.sort(key=lambda p: (p.detector, p.vendor_label, p.current or ""))
    return proposals


def learned_suggester(model: RankingModel, fallback: Suggester) -> Suggester:
    """Rank with the learned tier (calibrated confidences as similarities).

    ``fallback`` answers whenever the model gives nothing, for example because it could
    not be loaded: ``detectors fix`` then behaves exactly as without a model.
    """

    def suggest(detector: str, text: str) -> list[tuple[str, float]]:
        ranked = model.rank(text, detector)
        return ranked if ranked else fallback(detector, text)

    return suggest


def _ranked(
    rank: Suggester, taxonomy: Taxonomy, detector: str, texts: Iterable[str]
) -> list[tuple[str, float]]:
    best: dict[str, float] = {}
    for text in dict.fromkeys(texts):
        for label, similarity in rank(detector, text):
            if taxonomy.resolve(label) is None or label == UNKNOWN:
                continue
            clamped = min(1.0, max(0.0, float(similarity)))
            best[label] = max(best.get(label, 0.0), clamped)
    return sorted(best.items(), key=lambda item: (-item[1], item[0]))[:SUGGESTIONS]


def _proposal(
    detector: str,
    vendor_label: str,
    current: str | None,
    reason: FixReason,
    ranked: list[tuple[str, float]],
) -> Proposal:
    (proposed, similarity), *alternatives = ranked
    return Proposal(
        detector, vendor_label, current, proposed, similarity, reason, tuple(alternatives)
    )


def apply_proposals(
    pack: DetectorPack, proposals: Iterable[Proposal], threshold: float
) -> tuple[DetectorPack, list[Proposal]]:
    """Write the proposals for ``pack`` at or above ``threshold`` into a copy of it.

    An invalid target is replaced in place, keeping the key's other targets; an unmapped
    label becomes a new ``maps`` entry unless the pack already maps its normal form (two
    spellings of one label must not map differently). Proposals that no longer fit the
    pack are skipped, so only what was actually written comes back.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], not {threshold}")
    maps = dict(pack.maps)
    mapped = {pack.normal_form(key) for key in maps}
    applied: list[Proposal] = []
    for proposal in proposals:
        if proposal.detector != pack.detector or proposal.similarity < threshold:
            continue
        key = proposal.vendor_label
        if proposal.reason == "invalid_target":
            targets = maps.get(key, ())
            if proposal.current not in targets:
                continue
            swapped = (proposal.proposed if t == proposal.current else t for t in targets)
            maps[key] = tuple(dict.fromkeys(swapped))
        else:
            if pack.normal_form(key) in mapped:
                continue
            maps[key] = (proposal.proposed,)
            mapped.add(pack.normal_form(key))
        applied.append(proposal)
    if not applied:
        return pack, []
    return replace(pack, maps=maps), applied


def _words(text: str) -> tuple[str, ...]:
    """Words of ``text`` as the matcher compares them.

    An acronym ends before a capitalised word (``APIKey`` is ``api key``), single letters
    join the next word (``e-mail`` is ``email``), runs of them form one word (``U.S.`` is
    ``us``), and a negation is fused onto the word it negates (``non-toxic`` is
    ``!toxic``) so that it can never match the un-negated word.
    """
    words: list[str] = []
    negation: str | None = None

    def push(word: str) -> None:
        nonlocal negation
        if negation is None and word in _NEGATIONS:
            negation = word
            return
        words.append(word if negation is None else "!" + word)
        negation = None

    letters = ""
    for token in normalize_label(_ACRONYM_END.sub("_", text)).split("_"):
        if len(token) == 1 and token.isalpha():
            letters += token
            continue
        word = token
        if len(letters) == 1:
            word = letters + token
        elif letters:
            push(letters)
        letters = ""
        if word:
            push(word)
    if letters:
        push(letters)
    if negation is not None:
        words.append(negation)
    return tuple(words[:_MAX_WORDS])


class LexicalSuggester:
    """Ranks canonical labels by the words of their names, aliases and descriptions.

    A label scores high when it explains every word of the text, weighted by how rare
    each word is across the taxonomy (``ssn`` says more than ``number``), and when one of
    its names matches the text as a whole. Words match exactly, as abbreviations
    (``addr``/``address``) or, for longer words, by edit similarity (``licence``). An exact
    hit on a name or alias, ignoring separators, scores 1.0.
    """

    def __init__(self, taxonomy: Taxonomy) -> None:
        self._phrases: dict[str, tuple[tuple[str, ...], ...]] = {}
        self._bags: dict[str, dict[str, float]] = {}
        self._exact: dict[str, str] = {}
        for name, label in taxonomy.labels.items():
            if name == UNKNOWN:
                continue
            phrases = (_words(name), *(_words(alias) for alias in label.aliases))
            bag = {word: 1.0 for phrase in phrases for word in phrase}
            for word in _words(label.description):
                bag.setdefault(word, _DESCRIPTION_WEIGHT)
            self._phrases[name] = tuple(phrase for phrase in phrases if phrase)
            self._bags[name] = bag
            for phrase in phrases:
                self._exact.setdefault("".join(phrase), name)
        frequency: dict[str, int] = {}
        for bag in self._bags.values():
            for word in bag:
                frequency[word] = frequency.get(word, 0) + 1
        count = len(self._bags)
        self._idf = {word: math.log(1 + count / n) for word, n in frequency.items()}
        self._max_idf = math.log(1 + count)
        self._vocabulary = {
            negated: [w for w in frequency if w.startswith("!") is negated]
            for negated in (False, True)
        }
        self._long_cores = {
            negated: [w.lstrip("!") for w in words if len(w.lstrip("!")) >= _FUZZY_MIN_LENGTH]
            for negated, words in self._vocabulary.items()
        }
        self._matches: dict[str, dict[str, float]] = {}

    def __call__(self, detector: str, text: str) -> list[tuple[str, float]]:
        words = _words(text)
        if not words:
            return []
        scores = self._scores(words)
        ranked = sorted(
            ((name, score) for name, score in scores.items() if score > 0.0),
            key=lambda item: (-item[1], item[0]),
        )[:SUGGESTIONS]
        if len(ranked) > 1 and scores[ranked[0][0]] < 1.0:
            shortfall = max(0.0, _TIE_MARGIN - (ranked[0][1] - ranked[1][1]))
            ranked = [(name, score - shortfall) for name, score in ranked]
        return [(name, round(min(1.0, max(0.0, score)), 3)) for name, score in ranked]

    def _scores(self, words: tuple[str, ...]) -> dict[str, float]:
        exact = self._exact.get("".join(words))
        matches = [self._word_matches(word) for word in words]
        weights = [self._weight(word, found) for word, found in zip(words, matches, strict=True)]
        total = sum(weights)
        scores: dict[str, float] = {}
        for name, bag in self._bags.items():
            if name == exact:
                scores[name] = 1.0
                continue
            coverage = (
                sum(
                    weight * max((s * bag[w] for w, s in found.items() if w in bag), default=0.0)
                    for weight, found in zip(weights, matches, strict=True)
                )
                / total
            )
            fit = max(
                (
                    self._phrase_fit(phrase, matches, weights, total)
                    for phrase in self._phrases[name]
                ),
                default=0.0,
            )
            scores[name] = _COVERAGE_SHARE * coverage + (1 - _COVERAGE_SHARE) * fit
        return scores

    def _phrase_fit(
        self,
        phrase: tuple[str, ...],
        matches: list[dict[str, float]],
        weights: list[float],
        total: float,
    ) -> float:
        """F1 of the text against one name or alias, both sides weighted by rarity."""
        phrase_weights = [self._idf.get(word, self._max_idf) for word in phrase]
        precision = sum(
            weight * max(found.get(word, 0.0) for found in matches)
            for weight, word in zip(phrase_weights, phrase, strict=True)
        ) / sum(phrase_weights)
        recall = (
            sum(
                weight * max(found.get(word, 0.0) for word in phrase)
                for weight, found in zip(weights, matches, strict=True)
            )
            / total
        )
        if precision + recall == 0.0:
            return 0.0
        return 2 * precision * recall / (precision + recall)

    def _weight(self, word: str, found: dict[str, float]) -> float:
        """How much ``word`` says; an unknown word borrows the rarity of its closest match."""
        if word in self._idf:
            return self._idf[word]
        if found:
            closest = max(found, key=lambda w: (found[w], w))
            return self._idf[closest]
        return self._max_idf

    def _word_matches(self, word: str) -> dict[str, float]:
        """Vocabulary words similar to ``word`` with their similarity (memoized, bounded)."""
        cached = self._matches.get(word)
        if cached is not None:
            return cached
        negated = word.startswith("!")
        core = word.lstrip("!")
        mark = "!" if negated else ""
        vocabulary = self._vocabulary[negated]
        found: dict[str, float] = {}
        if len(core) >= _FUZZY_MIN_LENGTH:
            for other, score, _ in process.extract(
                core,
                self._long_cores[negated],
                scorer=fuzz.ratio,
                score_cutoff=_FUZZY_CUTOFF,
                limit=None,
            ):
                found[mark + other] = float(score) / 100.0
        if len(core) >= _PREFIX_MIN_LENGTH:
            for candidate in vocabulary:
                other = candidate.lstrip("!")
                if len(other) < _PREFIX_MIN_LENGTH or other == core:
                    continue
                if other.startswith(core) or core.startswith(other):
                    short, long = sorted((len(core), len(other)))
                    abbreviation = 0.6 + 0.4 * short / long
                    found[candidate] = max(found.get(candidate, 0.0), abbreviation)
        if word in self._idf:
            found[word] = 1.0
        if len(self._matches) >= _CACHE_LIMIT:
            self._matches.clear()
        self._matches[word] = found
        return found
