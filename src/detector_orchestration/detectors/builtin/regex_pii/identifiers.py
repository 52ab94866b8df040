"""Government and financial identifiers: US SSN, payment cards, IBAN."""

from __future__ import annotations

from collections.abc import Iterator

from detector_orchestration.detectors.builtin.regex_pii.checksums import (
    iban_mod97_valid,
    luhn_valid,
)
from detector_orchestration.detectors.builtin.regex_pii.recognizer import (
    Match,
    Recognizer,
    context_regex,
    pattern,
)

#: Numbers the SSA never issued or that were voided after appearing in ads and samples.
_INVALID_SSNS = frozenset({"078051120", "219099999", "123456789", "111111111", "333333333"})


def ssn_valid(digits: str) -> bool:
    """SSA rules: no area 000, 666 or 900-999, no group 00, no serial 0000, no known voids."""
    if len(digits) != 9 or not digits.isascii() or not digits.isdigit():
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return (
        area not in ("000", "666")
        and area[0] != "9"
        and group != "00"
        and serial != "0000"
        and digits not in _INVALID_SSNS
        and len(set(digits)) > 1
    )


class UsSsnRecognizer(Recognizer):
    """``123-45-6789`` (same separator twice), ``123 45 6789`` or nine bare digits."""

    label = "us_ssn"
    patterns = (
        pattern(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])", 0.6),
        pattern(r"(?<![\w-])\d{3} \d{2} \d{4}(?![\w-])", 0.45),
        pattern(r"(?<![\w-])\d{9}(?![\w-])", 0.2),
    )
    context = context_regex("ssn", "ssns", "social security", "ss#", "ssn#", "ssa", "ss number")

    def score(self, candidate: str, base: float) -> float | None:
        return base if ssn_valid(candidate.replace("-", "").replace(" ", "")) else None


# (prefix low, prefix high, allowed lengths): IIN ranges of the major networks.
_IIN_RANGES: tuple[tuple[int, int, frozenset[int]], ...] = (
    (4, 4, frozenset({13, 16, 19})),  # Visa
    (51, 55, frozenset({16})),  # Mastercard
    (2221, 2720, frozenset({16})),  # Mastercard 2-series
    (34, 34, frozenset({15})),  # American Express
    (37, 37, frozenset({15})),
    (6011, 6011, frozenset({16, 17, 18, 19})),  # Discover
    (644, 649, frozenset({16, 17, 18, 19})),
    (65, 65, frozenset({16, 17, 18, 19})),
    (3528, 3589, frozenset({16, 17, 18, 19})),  # JCB
    (300, 305, frozenset({14, 15, 16, 17, 18, 19})),  # Diners Club
    (36, 36, frozenset({14, 15, 16, 17, 18, 19})),
    (38, 39, frozenset({16, 17, 18, 19})),
    (62, 62, frozenset({16, 17, 18, 19})),  # UnionPay
    (50, 50, frozenset(range(12, 20))),  # Maestro
    (56, 69, frozenset(range(12, 20))),
)


def iin_known(digits: str) -> bool:
    """The number starts with a card network's IIN prefix and has that network's length."""
    for low, high, lengths in _IIN_RANGES:
        width = len(str(low))
        if low <= int(digits[:width]) <= high and len(digits) in lengths:
            return True
    return False


class CreditCardRecognizer(Recognizer):
    """13-19 digits, optionally grouped by spaces or dashes; must pass Luhn.

    A known network prefix (Visa, Mastercard, Amex...) with its length raises the score.
    """

    label = "credit_card"
    patterns = (pattern(r"(?<![\w-])\d(?:[ -]?\d){11,18}(?![\w-])", 0.5),)
    context = context_regex(
        "card", "credit", "debit", "visa", "mastercard", "amex", "cc", "payment", "pan"
    )

    def score(self, candidate: str, base: float) -> float | None:
        digits = candidate.replace(" ", "").replace("-", "")
        separators = {char for char in candidate if not char.isdigit()}
        if len(separators) > 1 or not 12 <= len(digits) <= 19 or not luhn_valid(digits):
            return None
        if len(set(digits)) == 1:
            return None
        return base + 0.35 if iin_known(digits) else base - 0.25


#: IBAN length per country (SWIFT IBAN registry).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


class IbanRecognizer(Recognizer):
    """Country code, check digits, BBAN; compact or printed in groups of four.

    The printed form can run into a following word, so the match is cut at the country's
    IBAN length (on a group boundary) before the mod-97 check.
    """

    label = "iban"
    patterns = (
        pattern(r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?!\w)", 0.8),
    )
    context = context_regex("iban", "bank", "account", "transfer", "sepa", "kontonummer", "rib")

    def matches(self, text: str, start: int, end: int, base: float) -> Iterator[Match]:
        length = IBAN_LENGTHS.get(text[start : start + 2])
        if length is None:
            return
        kept = 0
        stop = start
        while stop < end and kept < length:
            if text[stop] != " ":
                kept += 1
            stop += 1
        if kept != length or (stop < end and text[stop] != " "):
            return
        if not iban_mod97_valid(text[start:stop].replace(" ", "")):
            return
        yield Match(self.label, start, stop, self.with_context(text, start, stop, base + 0.15))
