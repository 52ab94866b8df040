"""TruffleHog v3 ``--json`` output.

TruffleHog prints JSON lines, one object per result (``pkg/output/json.go``):
``{"SourceMetadata", "SourceID", "SourceType", "SourceName", "DetectorType",
"DetectorName", "DetectorDescription", "DecoderName", "Verified", "VerificationFromCache",
"VerificationError", "Raw", "RawV2", "Redacted", "ExtraData", "StructuredData"}``. The
caller sends the lines of one scan as a JSON array of those objects (``[]`` when nothing was
found), or one result object. Each result is one ``DetectorName`` signal (``AWS``,
``Stripe``, ``Github``…, the name of the ``DetectorType`` enum, which is not read).

Score: a ``Verified`` result was confirmed live against the issuing service, so it is
certain, 1.0. Any other result (verification skipped, failed with ``VerificationError``, or
answered "not valid") still matched the detector's pattern but may be revoked, a test value
or a false positive, so it scores 0.5: a pack threshold above 0.5 keeps only verified
secrets, the default threshold keeps both. ``DecoderName`` (``PLAIN``, ``BASE64``…) says how
the chunk was decoded and does not change the label.

Raw-text keys: ``Raw``, ``RawV2`` and ``Redacted`` (the secret, its ID-plus-secret form and a
partly masked copy), ``SecretParts`` (its parts, newer releases), ``ExtraData`` and
``StructuredData`` (detector extras: account IDs, usernames, canary messages),
``SourceMetadata`` (file paths, repositories, commits, author e-mails, the line),
``VerificationError`` (an HTTP client error that can quote the URL holding the secret) and
``DetectorDescription`` (the detector's prose, longer than the raw-content guard allows).
None of them is read.
"""

from __future__ import annotations

from llama_mapper.adapters.base import Signal
from llama_mapper.adapters.vendors._fields import (
    as_object,
    label_field,
    optional_bool,
    records,
)

VERIFIED_SCORE = 1.0
UNVERIFIED_SCORE = 0.5
_KEYS = ("DetectorName", "DetectorType")


class TrufflehogAdapter:
    name = "trufflehog"
    raw_text_keys = frozenset(
        {
            "Raw",
            "RawV2",
            "Redacted",
            "SecretParts",
            "ExtraData",
            "StructuredData",
            "SourceMetadata",
            "VerificationError",
            "DetectorDescription",
        }
    )

    def parse(self, output: object) -> list[Signal] | None:
        found = records(output, *_KEYS)
        return None if found is None else [_result(item) for item in found]


def _result(item: object) -> Signal:
    where = "trufflehog result"
    result = as_object(item, "each trufflehog result")
    label = label_field(result, "DetectorName", where)
    verified = optional_bool(result, "Verified", where)
    return Signal(label, VERIFIED_SCORE if verified else UNVERIFIED_SCORE)
