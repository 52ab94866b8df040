"""``regex-pii``: llama-mapper's own offline PII detector (validated regex recognizers).

Its output is the ``regex-pii`` pack's native shape ``[{"label", "start", "end", "score"}]``:
offsets and confidence, never the matched text.
"""

from __future__ import annotations

from detector_orchestration.detectors.base import DetectorOutput, Span
from detector_orchestration.detectors.builtin._common import (
    TEXT_CONTENT_TYPES,
    check_content_type,
    run_cpu,
)
from detector_orchestration.detectors.builtin.regex_pii.recognizer import Match
from detector_orchestration.detectors.builtin.regex_pii.registry import MIN_SCORE, analyze

__all__ = ["RegexPiiDetector", "analyze"]

VERSION = "2026.12.0"


class RegexPiiDetector:
    name = "regex-pii"
    pack = "regex-pii"
    version = f"regex-pii@{VERSION}"
    content_types = TEXT_CONTENT_TYPES

    def __init__(self, min_score: float = MIN_SCORE) -> None:
        self.min_score = min_score

    async def detect(self, content: str, content_type: str) -> DetectorOutput:
        check_content_type(self.name, content_type, self.content_types)
        matches = await run_cpu(self._analyze, content)
        return to_output(matches)

    def _analyze(self, content: str) -> list[Match]:
        return analyze(content, min_score=self.min_score)


def to_output(matches: list[Match]) -> DetectorOutput:
    return DetectorOutput(
        output=[
            {"label": m.label, "start": m.start, "end": m.end, "score": m.score} for m in matches
        ],
        spans=tuple(Span(m.start, m.end, m.label, m.score) for m in matches),
    )
