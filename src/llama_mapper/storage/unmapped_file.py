"""Unmapped (detector, vendor label) counts persisted for ``mapper detectors fix``.

Only what :class:`~llama_mapper.mapping.unmapped.UnmappedLabels` kept (label-shaped
strings) is written; counts from several runs are added together.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

FILE_NAME = "unmapped.json"


class UnmappedFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> UnmappedFile:
        return cls(state_dir / FILE_NAME)

    def load(self) -> dict[tuple[str, str], int]:
        try:
            rows = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            raise ValueError(f"{self.path}: unreadable unmapped-label file") from None
        counts: dict[tuple[str, str], int] = {}
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict) and isinstance(row.get("count"), int):
                key = (str(row.get("detector", "")), str(row.get("label", "")))
                counts[key] = counts.get(key, 0) + row["count"]
        return counts

    def add(self, counts: dict[tuple[str, str], int]) -> None:
        if not counts:
            return
        merged = self.load()
        for key, count in counts.items():
            merged[key] = merged.get(key, 0) + count
        rows = [
            {"detector": d, "label": label, "count": n} for (d, label), n in sorted(merged.items())
        ]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".unmapped-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=1)
        os.replace(tmp, self.path)
