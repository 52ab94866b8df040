"""Payloads hidden from a reader: encodings, invisible characters, obfuscated phrases.

An attack can be base64- or hex-encoded, rot13'd, or smuggled in Unicode tag characters
that render as nothing. Decoded text is scored by the phrase heuristics too, so an encoded
"ignore previous instructions" counts both as an encoded payload and as an override.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re

from detector_orchestration.detectors.builtin.prompt_injection.categories import (
    ENCODED_PAYLOAD,
    combine,
)
from detector_orchestration.detectors.builtin.prompt_injection.heuristics import (
    heuristic_scores,
)

_BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/=])")
_HEX_RUN = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[ ]?){16,}(?![0-9A-Fa-f])")
_TAG_CHARS = re.compile("[\U000e0000-\U000e007f]")
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_DECODE_REQUEST = re.compile(
    r"\b(?:decode|decrypt|decipher|translate|convert|interpret|unscramble|reverse)\b[^.\n]{0,60}"
    r"\b(?:base64|b64|hex|rot-?13|caesar|cipher|binary|morse|leet|reversed|backwards|encoded)\b"
    r"[^.\n]{0,80}\b(?:follow|obey|execute|do what|comply|carry out|perform|answer)",
    re.IGNORECASE,
)
#: rot13 of the words attacks are made of ("ignore", "instructions", "system", "prompt",
#: "jailbreak", "disregard", "previous", "reveal"): only then is the rot13 reading scored.
_ROT13_HINT = re.compile(
    r"\b(?:vtaber|vafgehpgvbaf?|flfgrz|cebzcg|wnvyoernx|qvfertneq|cerivbhf|erirny)\b",
    re.IGNORECASE,
)
#: Decoded bytes must be mostly printable ASCII text to count as a hidden message.
_PRINTABLE_SHARE = 0.9
#: Decoding is capped so that a large blob cannot make scanning slow.
_MAX_RUNS = 32
_MAX_DECODE = 4096


def _texts_from_base64(text: str) -> list[str]:
    decoded: list[str] = []
    for found in list(_BASE64_RUN.finditer(text))[:_MAX_RUNS]:
        run = found.group(0)[:_MAX_DECODE]
        try:
            raw = base64.b64decode(run + "=" * (-len(run) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        message = _as_text(raw)
        if message is not None:
            decoded.append(message)
    return decoded


def _texts_from_hex(text: str) -> list[str]:
    decoded: list[str] = []
    for found in list(_HEX_RUN.finditer(text))[:_MAX_RUNS]:
        try:
            raw = bytes.fromhex(found.group(0).replace(" ", "")[:_MAX_DECODE])
        except ValueError:
            continue
        message = _as_text(raw)
        if message is not None:
            decoded.append(message)
    return decoded


def _as_text(raw: bytes) -> str | None:
    """The bytes as text when they read like words (letters and spaces), else None."""
    if len(raw) < 12:
        return None
    printable = sum(32 <= byte < 127 or byte in (9, 10, 13) for byte in raw)
    if printable / len(raw) < _PRINTABLE_SHARE or b" " not in raw:
        return None
    return raw.decode("ascii", errors="replace")


def _tag_text(text: str) -> str:
    """Unicode tag characters mirror ASCII (U+E0041 is an invisible 'A'): read them out."""
    return "".join(chr(ord(char) - 0xE0000) for char in _TAG_CHARS.findall(text))


def encoded_scores(text: str) -> dict[str, float]:
    """ENCODED_PAYLOAD evidence, plus the heuristic scores of any hidden message found."""
    evidence: list[float] = []
    hidden: list[str] = []
    for message in _texts_from_base64(text) + _texts_from_hex(text):
        evidence.append(0.45)
        hidden.append(message)
    tags = _tag_text(text)
    if tags:
        evidence.append(0.9)
        hidden.append(tags)
    if len(_ZERO_WIDTH.findall(text)) >= 3:
        evidence.append(0.4)
    if _BIDI.search(text):
        evidence.append(0.4)
    if _DECODE_REQUEST.search(text):
        evidence.append(0.6)
    if _ROT13_HINT.search(text):
        unscrambled = codecs.decode(text[:_MAX_DECODE], "rot13")
        if heuristic_scores(unscrambled):
            evidence.append(0.5)
            hidden.append(unscrambled)
    scores: dict[str, float] = {}
    for message in hidden:
        for category, score in heuristic_scores(message).items():
            scores[category] = combine(scores.get(category, 0.0), score)
            evidence.append(0.4)  # the hidden text is itself an attack
    if evidence:
        scores[ENCODED_PAYLOAD] = combine(*evidence)
    return scores
