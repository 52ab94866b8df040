"""How a vendor label is shown to the model: words, not identifiers.

``US_SSN``, ``pii/email_address`` and ``SelfHarm`` become ``us ssn``, ``pii email address``
and ``self harm``: the tokenizer of a sentence encoder knows words, and folding spelling
styles here means the model does not have to learn them.
"""

from __future__ import annotations

import re
from functools import lru_cache

_ACRONYM_END = re.compile(r"(?<=[A-Z])(?=[A-Z][a-z]{2})")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^a-z0-9&+]+")
MAX_CHARS = 96


@lru_cache(maxsize=65536)
def label_text(label: str) -> str:
    """Lower-case words of ``label`` with camelCase and separators split into spaces."""
    split = _CAMEL_BOUNDARY.sub(" ", _ACRONYM_END.sub(" ", label.strip()[:MAX_CHARS]))
    return _SEPARATORS.sub(" ", split.lower()).strip()


def model_text(label: str, detector: str | None = None) -> str:
    """What the encoder reads: the label's words, then ``|`` and the detector's words.

    The detector's name is real input at serving time (the tier knows who emitted the
    label, a pack or not), and it often says what kind of scanner it is
    (``detect-secrets``, ``acme-pii-scanner``). The label comes first so that truncation
    at the token limit cuts the context, never the label.
    """
    words = label_text(label) or label
    context = label_text(detector) if detector else ""
    return f"{words} | {context}" if context else words
