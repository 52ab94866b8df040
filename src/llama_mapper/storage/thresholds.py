"""Operator thresholds set with ``mapper set-threshold``, kept in a small YAML file.

The file lives in the state directory so that ``mapper serve`` and the CLI agree without a
database; the service re-reads it when it changes.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llama_mapper.yamlio import DataFileError, dump_yaml, load_yaml_file

FILE_NAME = "thresholds.yaml"
RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class StoredThresholds:
    detectors: dict[str, float] = field(default_factory=dict)
    labels: dict[str, dict[str, float]] = field(default_factory=dict)


NONE_STORED = StoredThresholds()


class ThresholdFile:
    def __init__(self, state_dir: Path, recheck_seconds: float = RECHECK_SECONDS) -> None:
        self.path = state_dir / FILE_NAME
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, StoredThresholds] | None = None
        self._checked_at = -1e9

    def load(self) -> StoredThresholds:
        """Current thresholds; the file is stat-ed at most once per ``recheck_seconds``
        and re-read only when it changed, so this is cheap on the request path."""
        now = time.monotonic()
        if self._cached is not None and now - self._checked_at < self.recheck_seconds:
            return self._cached[1]
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            mtime = -1.0
        with self._lock:
            self._checked_at = now
            if self._cached is not None and self._cached[0] == mtime:
                return self._cached[1]
        stored = NONE_STORED if mtime < 0 else _parse(load_yaml_file(self.path), self.path)
        with self._lock:
            self._cached = (mtime, stored)
        return stored

    def set(self, detector: str, threshold: float, label: str | None = None) -> StoredThresholds:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must lie in [0, 1]")
        current = self.load()
        detectors = dict(current.detectors)
        labels = {d: dict(v) for d, v in current.labels.items()}
        if label is None:
            detectors[detector] = threshold
        else:
            labels.setdefault(detector, {})[label] = threshold
        stored = StoredThresholds(detectors, labels)
        self._write({"detectors": detectors, "labels": labels})
        with self._lock:
            self._cached = None
        return stored

    def _write(self, data: dict[str, Any]) -> None:
        """Atomic replace, so a concurrent reader never sees half a file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".thresholds-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(dump_yaml(data))
        os.replace(tmp, self.path)


def _parse(data: Any, path: Path) -> StoredThresholds:
    if data is None:
        return StoredThresholds()
    if not isinstance(data, dict):
        raise DataFileError(f"{path}: expected a mapping")
    try:
        detectors = {str(k): float(v) for k, v in (data.get("detectors") or {}).items()}
        labels = {
            str(d): {str(k): float(v) for k, v in (m or {}).items()}
            for d, m in (data.get("labels") or {}).items()
        }
    except (TypeError, ValueError, AttributeError):
        raise DataFileError(f"{path}: thresholds must be numbers") from None
    return StoredThresholds(detectors, labels)
