"""Amazon Comprehend PII detection, toxicity detection and prompt safety classification.

Read, per botocore's ``comprehend`` service model (API ``2017-11-27``), one document's
result in any of these forms:

- ``DetectPiiEntities``: ``{"Entities": [{"Score", "Type", "BeginOffset", "EndOffset"}]}``.
  Each entity gives its ``Type`` (``NAME``, ``SSN``, ``AWS_SECRET_KEY``…) scored by
  ``Score``, located by the offsets as Comprehend reports them (a span needs both; either
  may be absent).
- ``ContainsPiiEntities``: ``{"Labels": [{"Name", "Score"}]}``: each PII type ``Name``.
- ``DetectToxicContent``: ``{"ResultList": [{"Labels": [{"Name", "Score"}], "Toxicity"}]}``,
  one result per text segment: each category ``Name`` (``HATE_SPEECH``, ``INSULT``…) with
  its ``Score``, and the segment's overall ``Toxicity`` score as the label ``TOXICITY``. A
  single result (``{"Labels", "Toxicity"}``) is accepted too.
- ``ClassifyDocument``: ``{"Classes": [{"Name", "Score"}]}``: each class ``Name``. The
  prompt safety classifier returns both ``SAFE_PROMPT`` and ``UNSAFE_PROMPT`` with scores
  that add up to one, and the pack's threshold keeps the likely one; a custom classifier's
  classes (and a multi-label model's ``Labels``) are the account's own names, which a
  tenant overlay can map.
- The ``StartPiiEntitiesDetectionJob`` output (mode ``ONLY_OFFSETS``) is JSON Lines, one
  ``{"File", "Line", "Entities"}`` object per input document, read like DetectPiiEntities;
  send one line, or the lines as an array. ``ResultList`` items are read the same way.

Every score is a probability (scale ``probability``); a label without a ``Score`` is an
assertion (``None``). Amazon Comprehend Medical's ``DetectPHI`` also answers
``{"Entities": [...]}``, but its entities carry a ``Category`` and its type names
(``NAME``, ``ID``, ``DATE``…) mean other things; it is refused with an error rather than
read as Comprehend PII.

Raw-text keys: Comprehend's PII and toxicity answers never echo the text, but neighbouring
shapes do, and none of these is read: ``Text`` (the entity text of DetectEntities, custom
entity recognizers and Comprehend Medical, and of semi-structured ``Blocks``), ``File``
(the job's input file name, chosen by the account and often naming a person),
``ErrorMessage`` and ``WarnMessage`` (prose about the document's pages).
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
    required,
    scaled,
)

_RESULT_KEYS = ("Entities", "Labels", "Classes", "Toxicity")
_SHAPE_KEYS = ("ResultList", *_RESULT_KEYS)
TOXICITY_LABEL = "TOXICITY"


class AwsComprehendAdapter:
    name = "aws-comprehend"
    raw_text_keys = frozenset({"Text", "File", "ErrorMessage", "WarnMessage"})

    def parse(self, output: object) -> list[Signal] | None:
        if has_key(output, *_SHAPE_KEYS):
            return _response(as_object(output, "Comprehend response"))
        if isinstance(output, list) and any(has_key(item, *_SHAPE_KEYS) for item in output):
            signals: list[Signal] = []
            for item in output:
                signals.extend(_response(as_object(item, "each Comprehend result")))
            return signals
        return None


def _response(response: JsonObject) -> list[Signal]:
    """One response, a job output line or a ``ResultList`` item."""
    if "ResultList" not in response:
        return _document(response, "Comprehend response")
    signals: list[Signal] = []
    for item in optional_list(response, "ResultList", "Comprehend response"):
        result = as_object(item, "each ResultList item")
        signals.extend(_document(result, "ResultList item"))
    return signals


def _document(result: JsonObject, where: str) -> list[Signal]:
    """The signals about one document or text segment."""
    if not has_key(result, *_RESULT_KEYS):
        raise OutputShapeError(f"{where} needs Entities, Labels, Classes or Toxicity")
    signals: list[Signal] = []
    for item in optional_list(result, "Entities", where):
        signals.append(_entity(as_object(item, "each Entities item")))
    for key in ("Labels", "Classes"):
        for item in optional_list(result, key, where):
            signals.append(_named(as_object(item, f"each {key} item"), f"{key} item"))
    toxicity = result.get("Toxicity")
    if toxicity is not None:
        signals.append(Signal(TOXICITY_LABEL, scaled("probability", toxicity, f"{where}.Toxicity")))
    return signals


def _entity(entity: JsonObject) -> Signal:
    where = "Entities item"
    if "Category" in entity:
        raise OutputShapeError(
            "entities with a Category are Amazon Comprehend Medical output, "
            "which the aws-comprehend adapter does not read"
        )
    label = label_field(entity, "Type", where)
    begin = offset(entity.get("BeginOffset"), f"{where}.BeginOffset")
    end = offset(entity.get("EndOffset"), f"{where}.EndOffset")
    if begin is None or end is None:  # a span needs both ends
        return Signal(label, _score(entity, where))
    if end < begin:
        raise OutputShapeError(f"{where}.EndOffset must not be before BeginOffset")
    return Signal(label, _score(entity, where), begin, end)


def _named(item: JsonObject, where: str) -> Signal:
    return Signal(label_field(item, "Name", where), _score(item, where))


def _score(item: JsonObject, where: str) -> float | None:
    if item.get("Score") is None:
        return None
    return scaled("probability", required(item, "Score", where), f"{where}.Score")
