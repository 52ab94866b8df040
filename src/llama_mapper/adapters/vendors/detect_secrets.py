"""Yelp detect-secrets ``scan`` report (the same JSON as a ``.secrets.baseline``).

The report is ``{"version", "plugins_used", "filters_used", "results": {filename:
[{"type", "filename", "hashed_secret", "is_verified", "line_number"}]}, "generated_at"}``.
Every listed secret is one ``type`` signal (``AWS Access Key``, ``Private Key``…) with score
1.0: detect-secrets has no confidence, a secret is listed only when a plugin matched it.
Line numbers are not character offsets and are not copied.

Raw-text keys: ``hashed_secret`` (a SHA-1 of the secret, which can be reversed for short or
guessable secrets) and ``filename`` (paths can name people or projects). The file paths that
key ``results`` are never read either.
"""

from __future__ import annotations

from llama_mapper.adapters.base import Signal
from llama_mapper.adapters.vendors._fields import (
    as_list,
    as_object,
    has_key,
    label_field,
    object_field,
)


class DetectSecretsAdapter:
    name = "detect-secrets"
    raw_text_keys = frozenset({"hashed_secret", "filename"})

    def parse(self, output: object) -> list[Signal] | None:
        if not has_key(output, "results"):
            return None
        report = object_field(as_object(output, "report"), "results", "detect-secrets report")
        signals: list[Signal] = []
        for secrets in report.values():
            for item in as_list(secrets, "each file's secrets"):
                secret = as_object(item, "each secret")
                signals.append(Signal(label_field(secret, "type", "secret"), 1.0))
        return signals
