"""Counts of vendor labels nothing could map, for ``mapper detectors fix``.

Only label-shaped strings are kept: anything longer or wordier than a label is counted
under a placeholder, so content sent as a "label" is never retained.
"""

from __future__ import annotations

import re
import threading
from collections import Counter

_LABEL_SHAPED = re.compile(r"^[\w .:/&()+'-]{1,64}$")
_DIGIT_RUN = re.compile(r"\d[\d .-]{3,}")
_TOKEN_LIKE = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9]{16,}$")
MAX_WORDS = 6
NOT_A_LABEL = "<not-label-shaped>"


def label_shaped(label: str) -> bool:
    """Vendor vocabulary, not data: short, few words, no number runs, no key-like tokens.

    Numbers (SSNs, cards, phones) and credential-like tokens are what leaks when a client
    sends a finding's value where its label belongs.
    """
    return (
        bool(_LABEL_SHAPED.match(label))
        and len(label.split()) <= MAX_WORDS
        and not _DIGIT_RUN.search(label)
        and not any(_TOKEN_LIKE.match(word) for word in label.split())
    )


class UnmappedLabels:
    """A thread-safe, bounded counter of ``(detector, vendor label)`` pairs."""

    def __init__(self, max_pairs: int = 10_000) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._max_pairs = max_pairs
        self.dropped = 0

    def record(self, detector: str, label: str) -> None:
        self.merge({(detector, label): 1})

    def merge(self, counts: dict[tuple[str, str], int]) -> None:
        """Add counts gathered elsewhere (for example by batch worker processes)."""
        for (detector, label), count in counts.items():
            key = (detector, label if label_shaped(label) else NOT_A_LABEL)
            with self._lock:
                if key in self._counts or len(self._counts) < self._max_pairs:
                    self._counts[key] += count
                else:
                    self.dropped += count

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)

    def drain(self) -> dict[tuple[str, str], int]:
        """Return and reset the counts (used when they are persisted)."""
        with self._lock:
            counts = dict(self._counts)
            self._counts.clear()
            return counts
