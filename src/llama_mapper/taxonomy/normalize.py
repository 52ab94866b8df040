"""One normal form for vendor labels, aliases and canonical names.

Vendors spell the same thing ``SelfHarm``, ``self-harm``, ``SELF_HARM`` or ``Self Harm``.
Folding camelCase, case and every run of separators to ``_`` makes those equal without
ever matching on substrings, so ``non-toxic`` stays ``non_toxic`` and cannot become
``toxic``.
"""

from __future__ import annotations

import re
from functools import lru_cache

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=65536)
def normalize_label(label: str) -> str:
    """Return the normal form of ``label`` (cached: the same labels recur constantly)."""
    folded = _CAMEL_BOUNDARY.sub("_", label.strip()).lower()
    return _SEPARATORS.sub("_", folded).strip("_")


def strip_prefixes(normalized: str, prefixes: tuple[str, ...]) -> str:
    """Remove the first matching vendor prefix (already normalized, ending with ``_``)."""
    for prefix in prefixes:
        if normalized.startswith(prefix) and len(normalized) > len(prefix):
            return normalized[len(prefix) :]
    return normalized
