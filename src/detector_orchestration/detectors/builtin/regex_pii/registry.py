"""Every recognizer, and the one function that runs them all over a text."""

from __future__ import annotations

from detector_orchestration.detectors.builtin.regex_pii.contact import (
    EmailRecognizer,
    PhoneRecognizer,
)
from detector_orchestration.detectors.builtin.regex_pii.crypto import (
    BitcoinAddressRecognizer,
    EthereumAddressRecognizer,
)
from detector_orchestration.detectors.builtin.regex_pii.dates import DateOfBirthRecognizer
from detector_orchestration.detectors.builtin.regex_pii.identifiers import (
    CreditCardRecognizer,
    IbanRecognizer,
    UsSsnRecognizer,
)
from detector_orchestration.detectors.builtin.regex_pii.network import (
    Ipv4Recognizer,
    Ipv6Recognizer,
    MacAddressRecognizer,
)
from detector_orchestration.detectors.builtin.regex_pii.recognizer import Match, Recognizer

RECOGNIZERS: tuple[Recognizer, ...] = (
    EmailRecognizer(),
    PhoneRecognizer(),
    UsSsnRecognizer(),
    CreditCardRecognizer(),
    IbanRecognizer(),
    Ipv4Recognizer(),
    Ipv6Recognizer(),
    MacAddressRecognizer(),
    BitcoinAddressRecognizer(),
    EthereumAddressRecognizer(),
    DateOfBirthRecognizer(),
)
#: Matches scoring below this are not reported (weak shapes with no validation or context).
MIN_SCORE = 0.3


def analyze(
    text: str,
    recognizers: tuple[Recognizer, ...] = RECOGNIZERS,
    min_score: float = MIN_SCORE,
) -> list[Match]:
    """All matches at or above ``min_score``, overlaps resolved, in text order.

    Where matches overlap, the surest wins (then the longest): a card number is not also
    reported as a phone number, and a national phone format matched by two countries'
    patterns is reported once.
    """
    found = [m for r in recognizers for m in r.find(text) if m.score >= min_score]
    found.sort(key=lambda m: (-m.score, -(m.end - m.start), m.start))
    kept: list[Match] = []
    for match in found:
        if all(match.end <= other.start or match.start >= other.end for other in kept):
            kept.append(match)
    kept.sort(key=lambda m: (m.start, m.end))
    return kept
