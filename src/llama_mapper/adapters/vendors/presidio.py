"""Microsoft Presidio analyzer results.

``AnalyzerEngine.analyze`` returns ``RecognizerResult`` objects; their ``to_dict()`` and the
presidio-analyzer REST service (``POST /analyze``) both give
``[{"entity_type", "start", "end", "score", "analysis_explanation", "recognition_metadata"}]``.
``score`` is the recognizer's confidence in [0, 1] (scale ``probability``) and ``start``/``end``
are character offsets into the analyzed text. The results never contain the matched text, and
``recognition_metadata`` only names the recognizer, so there are no raw-text keys.
"""

from __future__ import annotations

from llama_mapper.adapters.base import Signal
from llama_mapper.adapters.vendors._fields import (
    as_object,
    has_key,
    label_field,
    required,
    scaled,
    span,
)


class PresidioAdapter:
    name = "presidio"
    raw_text_keys: frozenset[str] = frozenset()

    def parse(self, output: object) -> list[Signal] | None:
        if not isinstance(output, list) or not any(has_key(i, "entity_type") for i in output):
            return None
        signals: list[Signal] = []
        for item in output:
            result = as_object(item, "each Presidio result")
            where = "Presidio result"
            start, end = span(result, where)
            score = scaled("probability", required(result, "score", where), f"{where}.score")
            signals.append(Signal(label_field(result, "entity_type", where), score, start, end))
        return signals
