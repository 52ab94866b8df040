"""Azure AI Language PII detection (the Language service's ``PiiEntityRecognition`` task).

Read, per the analyze-text TypeSpec (``Language.AnalyzeText``, ``PiiTaskResult`` and
``PiiResult``):

- the synchronous ``:analyze-text`` response ``{"kind": "PiiEntityRecognitionResults",
  "results": {"documents": [...], "errors": [...], "modelVersion"}}``;
- an asynchronous job's task result, the same wrapper with kind
  ``PiiEntityRecognitionLROResults``, alone or inside the job state ``{"tasks": {"items":
  [...]}}`` (other tasks of the job are skipped);
- the bare ``results`` object ``{"documents": [...]}``;
- a list of documents, or one document.

A document is ``{"id", "redactedText", "entities": [...], "warnings", "detectedLanguage"}``;
each entity ``{"text", "category", "subcategory", "type", "tags", "offset", "length",
"confidenceScore"}``. Each entity gives one signal, labelled with its finest documented
label: ``type`` (API 2024-11-15-preview and later: "the lowest granularity at which the
entity has been detected"), else ``subcategory`` (older models: ``DateTime`` / ``Date``,
``Quantity`` / ``Age``), else ``category``. ``confidenceScore`` is a probability (scale
``probability``). ``offset`` and ``length`` become the span ``[offset, offset + length)``;
they count in the request's ``stringIndexType`` (``TextElements_v8`` by default,
``UnicodeCodePoint`` for Python string indices). Document errors (``results.errors``) are
documents the service did not analyse: they give no signals.

Raw-text keys: ``text`` (the matched text), ``redactedText`` (the whole input with the
matches masked, so every unmatched word of it), ``metadata`` (the resolved value of an entity
in the previews, such as a normalised date or address) and ``message`` (the service's error
and warning prose, longer than the raw-content guard allows): none is ever read.
"""

from __future__ import annotations

from llama_mapper.adapters.base import OutputShapeError, Signal
from llama_mapper.adapters.vendors._fields import (
    JsonObject,
    as_object,
    has_key,
    label_field,
    list_field,
    object_field,
    offset,
    optional_list,
    scaled,
)

_KINDS = frozenset({"PiiEntityRecognitionResults", "PiiEntityRecognitionLROResults"})
_FINER = ("type", "subcategory")


class AzureLanguagePiiAdapter:
    name = "azure-ai-language-pii"
    raw_text_keys = frozenset({"text", "redactedText", "metadata", "message"})

    def parse(self, output: object) -> list[Signal] | None:
        documents = _documents(output)
        if documents is None:
            return None
        signals: list[Signal] = []
        for item in documents:
            document = as_object(item, "each PII document")
            entities = list_field(document, "entities", "PII document")
            signals.extend(_entity(entity) for entity in entities)
        return signals


def _documents(output: object) -> list[object] | None:
    """The documents in ``output``, or ``None`` when it is not this service's shape."""
    if has_key(output, "kind") and has_key(output, "results"):
        return _task(as_object(output, "analyze-text response"))
    if has_key(output, "tasks"):
        return _job(as_object(output, "analyze-text job"))
    if has_key(output, "documents"):
        results = as_object(output, "PII results")
        return list_field(results, "documents", "PII results")
    if has_key(output, "entities") and has_key(output, "redactedText"):
        return [output]
    if isinstance(output, list) and any(has_key(item, "entities") for item in output):
        return output
    return None


def _task(response: JsonObject) -> list[object]:
    where = "analyze-text response"
    kind = response.get("kind")
    if not isinstance(kind, str) or kind not in _KINDS:
        raise OutputShapeError(
            f"{where}.kind must be PiiEntityRecognitionResults or PiiEntityRecognitionLROResults"
        )
    results = object_field(response, "results", where)
    return list_field(results, "documents", f"{where}.results")


def _job(job: JsonObject) -> list[object]:
    """The PII tasks' documents of an analyze-text job; other tasks (sentiment…) are skipped."""
    tasks = object_field(job, "tasks", "analyze-text job")
    documents: list[object] = []
    for item in optional_list(tasks, "items", "analyze-text job.tasks"):
        task = as_object(item, "each analyze-text job task")
        kind = task.get("kind")
        if isinstance(kind, str) and kind in _KINDS and "results" in task:
            documents.extend(_task(task))
    return documents


def _entity(item: object) -> Signal:
    where = "entity"
    entity = as_object(item, f"each {where}")
    label = label_field(entity, "category", where)
    for key in _FINER:
        if entity.get(key) is not None:
            label = label_field(entity, key, where)
            break
    raw = entity.get("confidenceScore")
    score = None if raw is None else scaled("probability", raw, f"{where}.confidenceScore")
    start = offset(entity.get("offset"), f"{where}.offset")
    length = offset(entity.get("length"), f"{where}.length")
    if start is None or length is None:
        return Signal(label, score)
    return Signal(label, score, start, start + length)
