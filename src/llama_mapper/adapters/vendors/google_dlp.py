"""Google Cloud Sensitive Data Protection (DLP) ``projects.content.inspect``.

The response is ``{"result": {"findings": [{"quote", "infoType": {"name",
"sensitivityScore"}, "likelihood", "location": {"byteRange", "codepointRange",
"contentLocations"}, "createTime", "findingId"}], "findingsTruncated"}}``; the
``InspectResult`` alone (``{"findings": [...]}``) is accepted too. Each finding gives its
``infoType.name`` scored by ``likelihood`` (scale ``dlp_likelihood``). Proto3 JSON omits
default values, so an absent likelihood is ``LIKELIHOOD_UNSPECIFIED``, an absent range start
is 0, ``{"result": {}}`` means no findings, and int64 offsets arrive as decimal strings.
Offsets come from ``codepointRange`` (code points are Python string indices); ``byteRange``
is in UTF-8 bytes and is not used.

Raw-text keys: ``quote`` (the matched text, present with ``includeQuote``) and ``quoteInfo``
(its parsed form, e.g. a date).
"""

from __future__ import annotations

from llama_mapper.adapters.base import OutputShapeError, Signal
from llama_mapper.adapters.vendors._fields import (
    JsonObject,
    as_object,
    has_key,
    label_field,
    object_field,
    offset,
    optional_list,
    optional_object,
    scaled,
)


class GoogleDlpAdapter:
    name = "google-dlp"
    raw_text_keys = frozenset({"quote", "quoteInfo"})

    def parse(self, output: object) -> list[Signal] | None:
        if has_key(output, "result"):
            response = as_object(output, "inspect response")
            result = object_field(response, "result", "inspect response")
        elif has_key(output, "findings"):
            result = as_object(output, "inspect result")
        else:
            return None
        return [
            _finding(as_object(item, "each finding"))
            for item in optional_list(result, "findings", "inspect result")
        ]


def _finding(finding: JsonObject) -> Signal:
    where = "finding"
    label = label_field(object_field(finding, "infoType", where), "name", f"{where}.infoType")
    likelihood = finding.get("likelihood", "LIKELIHOOD_UNSPECIFIED")
    score = scaled("dlp_likelihood", likelihood, f"{where}.likelihood")
    start, end = _code_points(finding)
    return Signal(label, score, start, end)


def _code_points(finding: JsonObject) -> tuple[int | None, int | None]:
    location = optional_object(finding, "location", "finding")
    if location is None:
        return None, None
    where = "finding.location.codepointRange"
    code_points = optional_object(location, "codepointRange", "finding.location")
    if code_points is None:
        return None, None
    start = offset(code_points.get("start", 0), f"{where}.start")
    end = offset(code_points.get("end"), f"{where}.end")
    if start is not None and end is not None and end < start:
        raise OutputShapeError(f"{where}.end must not be before start")
    return start, end
