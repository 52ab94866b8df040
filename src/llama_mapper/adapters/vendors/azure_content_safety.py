"""Azure AI Content Safety text APIs.

One adapter reads the responses of every text operation, keyed by their documented fields:

- ``text:analyze`` (GA ``2023-10-01`` onwards): ``{"categoriesAnalysis": [{"category",
  "severity"}], "blocklistsMatch": [{"blocklistName", "blocklistItemId",
  "blocklistItemText"}]}``. Severity 0-7 uses scale ``azure_severity``; every blocklist hit is
  ``BlocklistMatch``. The ``2023-04-30-preview`` shape (``hateResult``, ``selfHarmResult``,
  ``sexualResult``, ``violenceResult`` and ``blocklistsMatchResults`` with ``offset`` and
  ``length``) is read the same way.
- Prompt Shields ``text:shieldPrompt``: ``{"userPromptAnalysis": {"attackDetected"},
  "documentsAnalysis": [{"attackDetected"}]}`` gives ``UserPromptAttack`` and one
  ``DocumentAttack`` per attacked document. Its predecessor ``text:detectJailbreak``
  (``{"jailbreakAnalysis": {"detected"}}``) is read as ``UserPromptAttack``.
- ``text:detectProtectedMaterial`` gives ``{"protectedMaterialAnalysis": {"detected"}}``; the
  code variant adds ``codeCitations`` (``[{"license", "sourceUrls"}]``), which is how
  ``ProtectedMaterialCode`` is told from ``ProtectedMaterialText``.
- ``text:detectGroundedness``: ``{"ungroundedDetected", "ungroundedPercentage",
  "ungroundedDetails": [{"text", "offset": {"utf8", "utf16", "codePoint"}, "length": {…},
  "reason"}]}`` (early previews said ``ungrounded``). It gives ``Ungrounded`` scored by the
  ungrounded fraction, one signal per ungrounded span when spans are listed.

Detections without a score (attacks, protected material, blocklist hits) are binary and only
emitted when detected, with score 1.0. Raw-text keys are the fields that echo the analyzed or
blocklisted text: ``text`` (ungrounded spans), ``reason`` and ``correctionText`` (generated
explanations and corrections that quote it), ``blocklistItemText``/``blockItemText``.
"""

from __future__ import annotations

from llama_mapper.adapters.base import Signal
from llama_mapper.adapters.vendors._fields import (
    JsonObject,
    as_object,
    bool_field,
    has_key,
    label_field,
    offset_field,
    optional_list,
    optional_object,
    required,
    scaled,
)

_V1_CATEGORY_KEYS = ("hateResult", "selfHarmResult", "sexualResult", "violenceResult")
_KEYS = (
    "categoriesAnalysis",
    "blocklistsMatch",
    "blocklistsMatchResults",
    "userPromptAnalysis",
    "documentsAnalysis",
    "jailbreakAnalysis",
    "protectedMaterialAnalysis",
    "ungroundedDetected",
    "ungrounded",
    *_V1_CATEGORY_KEYS,
)


class AzureContentSafetyAdapter:
    name = "azure-content-safety"
    raw_text_keys = frozenset(
        {"text", "reason", "correctionText", "blocklistItemText", "blockItemText"}
    )

    def parse(self, output: object) -> list[Signal] | None:
        if not has_key(output, *_KEYS):
            return None
        response = as_object(output, "Content Safety response")
        return [
            *_harm_categories(response),
            *_blocklist_matches(response),
            *_prompt_shields(response),
            *_protected_material(response),
            *_groundedness(response),
        ]


def _harm_categories(response: JsonObject) -> list[Signal]:
    where = "categoriesAnalysis item"
    items = [
        as_object(item, where)
        for item in optional_list(response, "categoriesAnalysis", "Content Safety response")
    ]
    items += [as_object(response[key], key) for key in _V1_CATEGORY_KEYS if key in response]
    return [
        Signal(
            label_field(item, "category", where),
            scaled("azure_severity", required(item, "severity", where), f"{where}.severity"),
        )
        for item in items
    ]


def _blocklist_matches(response: JsonObject) -> list[Signal]:
    where = "Content Safety response"
    signals: list[Signal] = []
    for item in optional_list(response, "blocklistsMatch", where):
        as_object(item, "blocklistsMatch item")
        signals.append(Signal("BlocklistMatch", 1.0))
    for item in optional_list(response, "blocklistsMatchResults", where):
        match = as_object(item, "blocklistsMatchResults item")
        start = offset_field(match, "offset", "blocklistsMatchResults item")
        length = offset_field(match, "length", "blocklistsMatchResults item")
        signals.append(Signal("BlocklistMatch", 1.0, start, start + length))
    return signals


def _prompt_shields(response: JsonObject) -> list[Signal]:
    where = "Content Safety response"
    signals: list[Signal] = []
    user = optional_object(response, "userPromptAnalysis", where)
    if user is not None and bool_field(user, "attackDetected", "userPromptAnalysis"):
        signals.append(Signal("UserPromptAttack", 1.0))
    jailbreak = optional_object(response, "jailbreakAnalysis", where)
    if jailbreak is not None and bool_field(jailbreak, "detected", "jailbreakAnalysis"):
        signals.append(Signal("UserPromptAttack", 1.0))
    for item in optional_list(response, "documentsAnalysis", where):
        document = as_object(item, "documentsAnalysis item")
        if bool_field(document, "attackDetected", "documentsAnalysis item"):
            signals.append(Signal("DocumentAttack", 1.0))
    return signals


def _protected_material(response: JsonObject) -> list[Signal]:
    where = "protectedMaterialAnalysis"
    analysis = optional_object(response, where, "Content Safety response")
    if analysis is None or not bool_field(analysis, "detected", where):
        return []
    label = "ProtectedMaterialCode" if "codeCitations" in analysis else "ProtectedMaterialText"
    return [Signal(label, 1.0)]


def _groundedness(response: JsonObject) -> list[Signal]:
    where = "groundedness result"
    key = "ungroundedDetected" if "ungroundedDetected" in response else "ungrounded"
    if key not in response or not bool_field(response, key, where):
        return []
    percentage = response.get("ungroundedPercentage")
    score = 1.0 if percentage is None else scaled("probability", percentage, f"{where} percentage")
    spans = [
        _code_point_span(as_object(item, "ungroundedDetails item"))
        for item in optional_list(response, "ungroundedDetails", where)
    ]
    if not spans:
        return [Signal("Ungrounded", score)]
    return [Signal("Ungrounded", score, start, end) for start, end in spans]


def _code_point_span(detail: JsonObject) -> tuple[int | None, int | None]:
    """Offsets in code points (Python string indices); absent when the detail has none."""
    where = "ungroundedDetails item"
    if detail.get("offset") is None or detail.get("length") is None:
        return None, None
    start = offset_field(as_object(detail["offset"], f"{where}.offset"), "codePoint", where)
    length = offset_field(as_object(detail["length"], f"{where}.length"), "codePoint", where)
    return start, start + length
