"""The recognizer model shared by every entity: find shapes, validate them, weigh context.

Presidio-style: a recognizer owns a few compiled patterns, each with a base score; a match
that passes ``validate`` keeps (or raises) its score, one that fails is dropped; context
words near the match raise the score further. Everything is compiled at import and the
methods are pure, so one recognizer instance serves every request and thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

#: How far context words are looked for, in characters before and after a match.
CONTEXT_BEFORE = 32
CONTEXT_AFTER = 16
#: Score added when a context word is near a match (Presidio's default similarity factor).
CONTEXT_BOOST = 0.35
#: A match with supporting context is at least this sure (Presidio's default).
CONTEXT_FLOOR = 0.4


@dataclass(frozen=True, slots=True)
class Match:
    """One finding: offsets into the analysed text, label and confidence; never the text."""

    label: str
    start: int
    end: int
    score: float


@dataclass(frozen=True, slots=True)
class Pattern:
    regex: re.Pattern[str]
    score: float


def pattern(source: str, score: float, flags: int = 0) -> Pattern:
    return Pattern(re.compile(source, flags), score)


def context_regex(*words: str) -> re.Pattern[str]:
    """Whole-word, case-insensitive alternation of context words or phrases."""
    alternatives = "|".join(re.escape(word).replace(r"\ ", r"\s+") for word in words)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def has_context(text: str, start: int, end: int, words: re.Pattern[str] | None) -> bool:
    if words is None:
        return False
    window = text[max(0, start - CONTEXT_BEFORE) : start] + " " + text[end : end + CONTEXT_AFTER]
    return words.search(window) is not None


class Recognizer:
    """Finds one entity type. Subclasses set the class attributes and may override ``score``.

    ``score`` gets the pattern's base score and the matched characters; it returns the
    validated score or None to reject the match (a failed checksum, an impossible date).
    """

    label: str
    patterns: tuple[Pattern, ...]
    context: re.Pattern[str] | None = None
    #: Group of the regex holding the entity, when the pattern also matches surroundings.
    group: int = 0

    def score(self, candidate: str, base: float) -> float | None:
        return base

    def find(self, text: str) -> Iterator[Match]:
        for item in self.patterns:
            for found in item.regex.finditer(text):
                start, end = found.span(self.group)
                if start < 0:
                    continue
                yield from self.matches(text, start, end, item.score)

    def matches(self, text: str, start: int, end: int, base: float) -> Iterator[Match]:
        """The validated match(es) at ``[start, end)``; one at most by default."""
        score = self.score(text[start:end], base)
        if score is None:
            return
        yield Match(self.label, start, end, self.with_context(text, start, end, score))

    def with_context(self, text: str, start: int, end: int, score: float) -> float:
        if has_context(text, start, end, self.context):
            score = max(CONTEXT_FLOOR, score + CONTEXT_BOOST)
        return round(min(1.0, score), 4)
