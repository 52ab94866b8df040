"""Contact details: e-mail addresses and phone numbers."""

from __future__ import annotations

import re

from detector_orchestration.detectors.builtin.regex_pii.recognizer import (
    Recognizer,
    context_regex,
    pattern,
)


class EmailRecognizer(Recognizer):
    """RFC 5321-sized addresses with a dotted domain and an alphabetic TLD."""

    label = "email"
    patterns = (
        pattern(
            r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
            r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![\w-])",
            0.9,
        ),
    )
    context = context_regex("email", "e-mail", "mail", "contact", "address")

    def score(self, candidate: str, base: float) -> float | None:
        local, _, domain = candidate.rpartition("@")
        if len(candidate) > 254 or ".." in local or local.endswith("."):
            return None
        return base if "." in domain else None


#: National significant number lengths (digits after the country code) for common codes.
#: Codes not listed are accepted with 8 to 15 digits in all, at a lower score.
_NSN_LENGTHS: dict[str, tuple[int, int]] = {
    "1": (10, 10),  # NANP
    "7": (10, 10),  # Russia, Kazakhstan
    "31": (9, 9),  # Netherlands
    "32": (8, 9),  # Belgium
    "33": (9, 9),  # France
    "34": (9, 9),  # Spain
    "39": (6, 11),  # Italy
    "41": (9, 9),  # Switzerland
    "43": (4, 13),  # Austria
    "44": (9, 10),  # United Kingdom
    "45": (8, 8),  # Denmark
    "46": (7, 9),  # Sweden
    "47": (8, 8),  # Norway
    "48": (9, 9),  # Poland
    "49": (6, 13),  # Germany
    "52": (10, 10),  # Mexico
    "55": (10, 11),  # Brazil
    "61": (9, 9),  # Australia
    "65": (8, 8),  # Singapore
    "81": (9, 10),  # Japan
    "86": (10, 11),  # China
    "91": (10, 10),  # India
    "353": (7, 9),  # Ireland
}
_NON_DIGITS = re.compile(r"\D")
_TRUNK_ZERO = re.compile(r"\(0\)")


def _digits(text: str) -> str:
    return _NON_DIGITS.sub("", text)


def e164_score(candidate: str, base: float) -> float | None:
    """``+<country code><number>``: 8-15 digits, and the known codes' exact lengths."""
    digits = _digits(_TRUNK_ZERO.sub("", candidate))
    if not 8 <= len(digits) <= 15 or candidate.count("(") != candidate.count(")"):
        return None
    for length in (1, 2, 3):
        limits = _NSN_LENGTHS.get(digits[:length])
        if limits is not None:
            low, high = limits
            return base if low <= len(digits) - length <= high else None
    return base - 0.15


class PhoneRecognizer(Recognizer):
    """International E.164 numbers and the national formats of the US, UK, Germany, France.

    International numbers are validated by their country's number length. National formats
    without separators are ordinary digit runs, so they score low unless a context word
    ("phone", "tel", "call"...) is near.
    """

    label = "phone"
    patterns = (
        # +CC followed by digits and the usual separators, e.g. +44 (0)20 7946 0958.
        pattern(r"(?<![\w+])\+\d[\d ().-]{6,22}\d(?!\d)", 0.7),
        # NANP: (NXX) NXX-XXXX, NXX-NXX-XXXX, NXX.NXX.XXXX, optional +1 / 1 prefix.
        pattern(
            r"(?<![\w+])(?:\+?1[ .-]?)?(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[ .-])"
            r"[2-9]\d{2}[ .-]\d{4}(?!\d)",
            0.6,
        ),
        # UK: 0 + 10 digits (geographic 01/02/03, mobile 07, freephone 08).
        pattern(r"(?<![\w+])0[1237-8]\d{2,3}[ -]?\d{3,4}[ -]?\d{3,4}(?![\d-])", 0.4),
        # France: 0X XX XX XX XX (one separator throughout) or ten bare digits.
        pattern(r"(?<![\w+])0[1-9]([ .-]?)\d{2}(?:\1\d{2}){3}(?![\d-])", 0.4),
        # Germany: 0 + area code (2-5 digits) + subscriber, e.g. 030 12345678, 0151/23456789.
        pattern(r"(?<![\w+])0[1-9]\d{1,4}[ /-]?\d{4,8}(?![\d-])", 0.35),
    )
    context = context_regex(
        "phone",
        "telephone",
        "tel",
        "mobile",
        "cell",
        "call",
        "fax",
        "contact",
        "number",
        "whatsapp",
        "Telefon",
        "Handy",
        "Rufnummer",
        "téléphone",
        "portable",
    )

    def score(self, candidate: str, base: float) -> float | None:
        if candidate.startswith("+"):
            return e164_score(candidate, base)
        digits = _digits(candidate)
        if digits.startswith("1") and len(digits) == 11:
            digits = digits[1:]
        if len(digits) == 10 and digits[0] in "23456789":
            return _nanp_score(digits, base)
        return _national_score(candidate, digits, base)


def _nanp_score(digits: str, base: float) -> float | None:
    area, exchange = digits[:3], digits[3:6]
    if area[1:] == "11" or exchange[1:] == "11" or exchange[0] in "01":
        return None  # N11 service codes; exchanges start 2-9
    return base


def _national_score(candidate: str, digits: str, base: float) -> float | None:
    if not digits.startswith("0") or not 9 <= len(digits) <= 12:
        return None
    if len(digits) == 10 and re.fullmatch(r"0[1-9](?:[ .]\d{2}){4}", candidate):
        return 0.6  # the French pairs layout is distinctive
    return base
