"""``secrets``: detect-secrets' plugins run in-process over the content.

The output is the report ``detect-secrets scan`` writes, which the mapper's
``detect-secrets`` pack parses, minus ``hashed_secret``: that field is an unkeyed SHA-1 of the
secret, which can be reversed for short or guessable secrets, and the pack does not need it.
Spans come from the line and the secret's column; the secret value never leaves the scanner.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import version as package_version
from typing import Any

from detector_orchestration.detectors.base import DetectorOutput, Span
from detector_orchestration.detectors.builtin._common import (
    TEXT_CONTENT_TYPES,
    check_content_type,
    run_cpu,
)
from detector_orchestration.detectors.builtin.secrets.scanner import (
    Finding,
    configured_plugins,
    scan,
)

__all__ = ["REPORT_FILENAME", "SecretsDetector", "to_report"]

#: The report keys results by file; content has none, so one constant name stands in.
REPORT_FILENAME = "content"
VERSION = "2026.12.0"


class SecretsDetector:
    name = "secrets"
    pack = "detect-secrets"
    content_types = TEXT_CONTENT_TYPES

    def __init__(self, *, entropy_needs_keyword: bool = True) -> None:
        self.entropy_needs_keyword = entropy_needs_keyword
        self.version = f"secrets@{VERSION}+detect-secrets.{package_version('detect-secrets')}"

    async def detect(self, content: str, content_type: str) -> DetectorOutput:
        check_content_type(self.name, content_type, self.content_types)
        findings = await run_cpu(self._scan, content)
        return DetectorOutput(
            output=to_report(findings),
            spans=tuple(Span(f.start, f.end, f.secret_type, 1.0) for f in findings),
        )

    def _scan(self, content: str) -> list[Finding]:
        return scan(content, entropy_needs_keyword=self.entropy_needs_keyword)


def to_report(findings: list[Finding]) -> dict[str, Any]:
    """The ``detect-secrets scan`` JSON for ``findings``, one entry per (type, line)."""
    entries: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for finding in findings:
        key = (finding.secret_type, finding.line_number)
        if key in seen:
            continue
        seen.add(key)
        entries.append(
            {
                "type": finding.secret_type,
                "filename": REPORT_FILENAME,
                "is_verified": False,
                "line_number": finding.line_number,
            }
        )
    return {
        "version": package_version("detect-secrets"),
        "plugins_used": configured_plugins(),
        "filters_used": [],
        "results": {REPORT_FILENAME: entries} if entries else {},
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
