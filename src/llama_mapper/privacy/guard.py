"""The raw-content guard.

The mapper takes detector *output*: labels, scores, offsets. Clients sometimes send the
user's text along (a prompt under ``output``, an email body in ``metadata``). Accepting it
would put content where our privacy promise says it never goes, so requests whose string
values look like content are refused before any processing, with a message that says where
and why but never repeats the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
MAX_DEPTH = 32


@dataclass(frozen=True, slots=True)
class GuardLimits:
    max_string_chars: int = 512
    max_words: int = 16
    max_lines: int = 4
    base64_min_chars: int = 64

    @property
    def short_chars(self) -> int:
        return min(2 * self.max_words + 1, self.base64_min_chars, self.max_string_chars)


class RawContentError(ValueError):
    """A value looks like raw content. ``path`` locates it; the value is never included."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def check_raw_content(
    value: object,
    limits: GuardLimits,
    *,
    path: str = "output",
    skip_keys: frozenset[str] = frozenset(),
) -> None:
    """Raise :class:`RawContentError` at the first string that looks like content.

    Keys in ``skip_keys`` are a vendor's echo of matched text; the adapter drops them, so
    they are not judged here. The path of a violation is assembled only when one is found:
    this runs on every request.
    """
    try:
        _walk(value, limits, limits.short_chars, skip_keys, 0)
    except _Violation as violation:
        raise RawContentError(path + "".join(reversed(violation.parts)), violation.reason) from None


class _Violation(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.parts: list[str] = []


def _walk(value: object, limits: GuardLimits, short: int, skip: frozenset[str], depth: int) -> None:
    if isinstance(value, str):
        if len(value) >= short or "\n" in value:
            _check_string(value, limits)
        return
    if depth >= MAX_DEPTH:
        raise _Violation(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        for key, item in value.items():
            key_text = str(key)
            if len(key_text) >= short or "\n" in key_text:
                _descend(key_text, limits, short, skip, depth, ".<key>")
            if key_text not in skip:
                _descend(item, limits, short, skip, depth, key_text)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _descend(item, limits, short, skip, depth, index)


def _descend(
    item: object, limits: GuardLimits, short: int, skip: frozenset[str], depth: int, step: str | int
) -> None:
    """Walk one child; on a violation, record how we got there (built only then)."""
    if not isinstance(item, str | Mapping | list | tuple):
        return
    try:
        _walk(item, limits, short, skip, depth + 1)
    except _Violation as violation:
        if isinstance(step, int):
            violation.parts.append(f"[{step}]")
        else:
            violation.parts.append(step if step == ".<key>" else f".{_safe_key(step)}")
        raise


def _check_string(text: str, limits: GuardLimits) -> None:
    if len(text) > limits.max_string_chars:
        raise _Violation(f"string longer than {limits.max_string_chars} characters")
    if text.count("\n") + 1 > limits.max_lines:
        raise _Violation(f"multi-line text (more than {limits.max_lines} lines)")
    if len(text.split()) > limits.max_words:
        raise _Violation(f"free text (more than {limits.max_words} words)")
    for match in _BASE64_RUN.finditer(text):
        run = match.group()
        if len(run) >= limits.base64_min_chars and _mixed_case(run):
            raise _Violation("an encoded blob (base64-like run)")


def _mixed_case(run: str) -> bool:
    """Hex digests are one case; base64 of real data mixes both."""
    return any(c.islower() for c in run) and any(c.isupper() for c in run)


def _safe_key(key: str) -> str:
    return key if len(key) <= 64 and key.isprintable() else "<key>"
