"""Privacy rules at the edge: what we refuse to receive and how we refer to content."""

from llama_mapper.privacy.guard import GuardLimits, RawContentError, check_raw_content

__all__ = ["GuardLimits", "RawContentError", "check_raw_content"]
