"""Replacing spans of the content with ``[REDACTED:<label>]`` placeholders.

Overlapping spans merge into one placeholder (labelled by the first label in the merged
run) so no fragment of a finding survives between two placeholders.
"""

from __future__ import annotations

from collections.abc import Sequence

from detector_orchestration.domain.model import Finding


def redact(content: str, findings: Sequence[Finding]) -> str:
    spans = sorted(
        (max(0, f.span.start), min(len(content), f.span.end), f.label)
        for f in findings
        if f.span is not None and f.span.end > f.span.start
    )
    merged: list[tuple[int, int, str]] = []
    for start, end, label in spans:
        if merged and start < merged[-1][1]:
            first_start, first_end, first_label = merged[-1]
            merged[-1] = (first_start, max(first_end, end), first_label)
        else:
            merged.append((start, end, label))
    parts: list[str] = []
    cursor = 0
    for start, end, label in merged:
        parts.append(content[cursor:start])
        parts.append(f"[REDACTED:{label}]")
        cursor = end
    parts.append(content[cursor:])
    return "".join(parts)
