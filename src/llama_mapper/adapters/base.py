"""The adapter contract shared by every vendor parser."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Signal:
    """One thing a detector reported, before any mapping.

    ``score`` is already on the [0, 1] scale (see ``adapters.scales``); ``None`` means the
    detector asserted the label without a score, which the engine reads as 1.0.
    Offsets locate a finding without carrying its text.
    """

    label: str
    score: float | None = None
    start: int | None = None
    end: int | None = None


class OutputShapeError(ValueError):
    """The detector output does not have a shape the adapter understands.

    Messages name the expected shape only; they never quote the offending value.
    """


class Adapter(Protocol):
    """Parses one vendor's native response into signals."""

    name: str
    #: JSON keys that carry matched raw text in this vendor's responses. They are dropped at
    #: the edge and skipped by the raw-content guard, because they are the vendor's echo of
    #: the user's content rather than detector output.
    raw_text_keys: frozenset[str]

    def parse(self, output: object) -> list[Signal] | None:
        """Return the signals in ``output``.

        ``None`` means "not this vendor's shape": the caller then tries the generic forms
        (a label string, a list of labels, ``[{label, score}]``). A shape that is this
        vendor's but malformed raises :class:`OutputShapeError`.
        """
        ...
