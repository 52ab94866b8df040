"""Amazon Macie sensitive data findings (macie2 API ``2020-01-01``).

Read, per botocore's ``macie2`` service model: a ``Finding`` object, a list of them, the
``GetFindings`` response ``{"findings": [Finding]}``, or the EventBridge event that carries
one finding under ``detail``. A sensitive data finding holds
``classificationDetails.result``:

- ``sensitiveData``: ``[{"category", "totalCount", "detections": [{"type", "count",
  "occurrences"}]}]``. Each detection gives its ``type``, the managed data identifier ID
  (``AWS_CREDENTIALS``, ``CREDIT_CARD_NUMBER``, ``USA_PASSPORT_NUMBER``…), as-is.
- ``customDataIdentifiers``: ``{"totalCount", "detections": [{"arn", "name", "count",
  "occurrences"}]}``. Each detection gives the custom identifier's ``name``, chosen by the
  account, which a tenant overlay can map.

A detection counts when its ``count`` is above 0 (an absent count reads as listed, hence
found); it scores 1.0: Macie gives no confidence, and the finding's ``severity`` rates the
whole object's sensitivity, not the detection. A policy finding (``policyDetails``, no
``classificationDetails``) reports bucket settings, not data, and gives no signals.
``occurrences`` locate matches by line and column, spreadsheet cell, PDF page or record path
inside the S3 object (``offsetRanges`` is reserved), never by character offset into the
analysed text, so no span is copied.

Raw-text keys: Macie never echoes the matched text, but these keys carry data about the
scanned objects and people, never read: ``occurrences`` (column names and JSON paths taken
from the file's content), ``resourcesAffected`` (bucket and object keys, tags, the bucket
owner's display name), ``policyDetails`` (the acting user's identity and IP address) and
``description`` (Macie's prose, longer than the raw-content guard allows).
"""

from __future__ import annotations

from llama_mapper.adapters.base import OutputShapeError, Signal
from llama_mapper.adapters.vendors._fields import (
    JsonObject,
    as_object,
    has_key,
    label_field,
    offset,
    optional_list,
    optional_object,
)

_FINDING_KEYS = ("classificationDetails", "policyDetails")


class AwsMacieAdapter:
    name = "aws-macie"
    raw_text_keys = frozenset({"occurrences", "resourcesAffected", "policyDetails", "description"})

    def parse(self, output: object) -> list[Signal] | None:
        findings = _findings(output)
        if findings is None:
            return None
        signals: list[Signal] = []
        for item in findings:
            finding = as_object(item, "each Macie finding")
            if not has_key(finding, *_FINDING_KEYS):
                raise OutputShapeError(
                    "each Macie finding needs classificationDetails or policyDetails"
                )
            signals.extend(_finding(finding))
        return signals


def _findings(output: object) -> list[object] | None:
    """The findings in ``output``, or ``None`` when it is not a Macie shape."""
    if has_key(output, "findings"):
        response = as_object(output, "GetFindings response")
        return optional_list(response, "findings", "GetFindings response")
    if has_key(output, *_FINDING_KEYS):
        return [output]
    if has_key(output, "detail"):
        detail = as_object(output, "event").get("detail")
        return [detail] if has_key(detail, *_FINDING_KEYS) else None
    if isinstance(output, list) and any(has_key(item, *_FINDING_KEYS) for item in output):
        return output
    return None


def _finding(finding: JsonObject) -> list[Signal]:
    where = "finding.classificationDetails"
    details = optional_object(finding, "classificationDetails", "finding")
    result = None if details is None else optional_object(details, "result", where)
    if result is None:
        return []
    where = f"{where}.result"
    signals: list[Signal] = []
    for item in optional_list(result, "sensitiveData", where):
        data = as_object(item, f"each {where}.sensitiveData item")
        for detection in optional_list(data, "detections", f"{where}.sensitiveData"):
            signals.extend(_detection(detection, "type", f"{where}.sensitiveData.detections"))
    custom = optional_object(result, "customDataIdentifiers", where)
    if custom is not None:
        place = f"{where}.customDataIdentifiers"
        for detection in optional_list(custom, "detections", place):
            signals.extend(_detection(detection, "name", f"{place}.detections"))
    return signals


def _detection(item: object, key: str, where: str) -> list[Signal]:
    detection = as_object(item, f"each {where} item")
    label = label_field(detection, key, "detection")
    count = offset(detection.get("count"), "detection.count")
    return [] if count == 0 else [Signal(label, 1.0)]
