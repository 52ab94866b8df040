"""The values the domain rules work on: findings and coverage, never the content itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Decision(StrEnum):
    ALLOW = "allow"
    REDACT = "redact"
    BLOCK = "block"


@dataclass(frozen=True, slots=True)
class TextSpan:
    """Character offsets of a finding in the content (never the text)."""

    start: int
    end: int

    def overlaps(self, other: TextSpan) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True, slots=True)
class Finding:
    #: A canonical taxonomy label (``PII.Contact.Email``), as the mapper returned it.
    label: str
    score: float
    detector: str
    span: TextSpan | None = None
    #: Detectors that agreed on this finding after conflict resolution.
    detectors: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "score": round(self.score, 6),
            "detector": self.detector,
            "detectors": list(self.detectors or (self.detector,)),
            "span": None if self.span is None else {"start": self.span.start, "end": self.span.end},
        }


@dataclass(frozen=True, slots=True)
class Coverage:
    method: str
    achieved: float
    required: float
    missing: tuple[str, ...] = field(default=())

    @property
    def sufficient(self) -> bool:
        # A tolerance: 2/3 must count as meeting a minimum written as 0.6667.
        return self.achieved + 1e-9 >= self.required

    def as_dict(self) -> dict[str, object]:
        return {
            "method": self.method,
            "achieved": round(self.achieved, 6),
            "required": self.required,
            "missing": list(self.missing),
        }
