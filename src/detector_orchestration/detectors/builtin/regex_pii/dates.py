"""Dates of birth: a valid calendar date with a birth keyword close before it.

A bare date is not personal data, so a date is reported only with context ("DOB",
"born on", "date of birth"...) in the few characters before it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

from detector_orchestration.detectors.builtin.regex_pii.recognizer import (
    Match,
    Recognizer,
    context_regex,
    pattern,
)

#: Characters before a date searched for a birth keyword.
DOB_WINDOW = 24
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january", "januar", "janvier"),
            ("feb", "february", "februar", "février", "fevrier"),
            ("mar", "march", "märz", "maerz", "mars"),
            ("apr", "april", "avril"),
            ("may", "mai"),
            ("jun", "june", "juni", "juin"),
            ("jul", "july", "juli", "juillet"),
            ("aug", "august", "août", "aout"),
            ("sep", "sept", "september", "septembre"),
            ("oct", "october", "oktober", "octobre"),
            ("nov", "november", "novembre"),
            ("dec", "december", "dezember", "décembre", "decembre"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = "|".join(sorted(map(re.escape, _MONTHS), key=len, reverse=True))
_DOB_CONTEXT = context_regex(
    "dob",
    "d.o.b",
    "d.o.b.",
    "date of birth",
    "birth date",
    "birthdate",
    "birthday",
    "born",
    "born on",
    "geburtsdatum",
    "geboren",
    "né le",
    "née le",
    "date de naissance",
)


def _year(text: str) -> int:
    value = int(text)
    if len(text) == 2:
        return value + (1900 if value > date.today().year % 100 else 2000)
    return value


def _valid(year: int, month: int, day: int) -> bool:
    try:
        born = date(year, month, day)
    except ValueError:
        return False
    return born.year >= 1900 and born <= date.today()


def _readings(found: re.Match[str]) -> list[tuple[int, int, int]]:
    """Every (year, month, day) the match can mean: numeric dates are day- or month-first."""
    parts = found.groupdict()
    if parts.get("iso_y"):
        return [(int(parts["iso_y"]), int(parts["iso_m"]), int(parts["iso_d"]))]
    if parts.get("num_y"):
        first, second, year = int(parts["num_a"]), int(parts["num_b"]), _year(parts["num_y"])
        return [(year, second, first), (year, first, second)]
    month = _MONTHS.get((parts.get("dm_month") or parts.get("md_month") or "").lower())
    day_text = parts.get("dm_day") or parts.get("md_day")
    year_text = parts.get("dm_year") or parts.get("md_year")
    if not (month and day_text and year_text):
        return []
    return [(_year(year_text), month, int(day_text))]


class DateOfBirthRecognizer(Recognizer):
    label = "date_of_birth"
    patterns = (
        pattern(
            r"(?<![\w/.-])(?P<iso_y>\d{4})-(?P<iso_m>\d{1,2})-(?P<iso_d>\d{1,2})(?![\w/-])", 0.85
        ),
        pattern(
            r"(?<![\w/.-])(?P<num_a>\d{1,2})([/.-])(?P<num_b>\d{1,2})\2(?P<num_y>\d{4}|\d{2})(?![\w/-]|\.\d)",
            0.85,
        ),
        pattern(
            rf"(?<!\w)(?P<dm_day>\d{{1,2}})(?:st|nd|rd|th)?\.?\s+(?:of\s+)?(?P<dm_month>{_MONTH})\.?,?\s+(?P<dm_year>\d{{4}})(?!\w)",
            0.85,
            re.IGNORECASE,
        ),
        pattern(
            rf"(?<!\w)(?P<md_month>{_MONTH})\.?\s+(?P<md_day>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<md_year>\d{{4}})(?!\w)",
            0.85,
            re.IGNORECASE,
        ),
    )
    context = _DOB_CONTEXT

    def find(self, text: str) -> Iterator[Match]:
        for item in self.patterns:
            for found in item.regex.finditer(text):
                start, end = found.span()
                before = text[max(0, start - DOB_WINDOW) : start]
                if _DOB_CONTEXT.search(before) is None:
                    continue
                if any(_valid(*reading) for reading in _readings(found)):
                    yield Match(self.label, start, end, item.score)
