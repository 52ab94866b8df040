"""Detectors as the orchestrator sees them: built-in ones and clients of remote services."""

from detector_orchestration.detectors.base import (
    Detector,
    DetectorError,
    DetectorOutput,
    Span,
)

__all__ = ["Detector", "DetectorError", "DetectorOutput", "Span"]
