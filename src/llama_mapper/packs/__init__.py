"""Detector packs: each detector's vocabulary mapped onto the canonical taxonomy."""

from llama_mapper.packs.lint import PackIssue, lint_pack
from llama_mapper.packs.model import DetectorPack, PackError, PackSet

__all__ = ["DetectorPack", "PackError", "PackIssue", "PackSet", "lint_pack"]
