"""Hugging Face text classifiers: Prompt Guard, DeBERTa toxicity models, Detoxify.

These detectors return one of two generic shapes, so parsing is the generic parser's:

- a ``transformers`` text-classification pipeline gives ``[{"label", "score"}]`` per text (a
  list of such lists for a batch, or with ``top_k=None``). Labels are the model's
  ``id2label`` names: Prompt Guard's ``BENIGN``/``INJECTION``/``JAILBREAK`` (Prompt Guard 2:
  ``LABEL_0``/``LABEL_1``, ``MALICIOUS``), a DeBERTa toxicity model's ``toxic``/``non-toxic``…
- ``Detoxify(...).predict(text)`` gives ``{output_key: score}`` (``toxicity``, ``insult``…);
  for a list of texts each value is a list of scores, emitted one signal per text.

Scores are softmax/sigmoid probabilities (scale ``probability``). The class exists so that
each detector name is registered and its accepted shapes are checked strictly (every item
needs a numeric score); other shapes return None and go to the generic forms. Classifiers
echo no text, so there are no raw-text keys.
"""

from __future__ import annotations

from collections.abc import Mapping

from llama_mapper.adapters.base import Signal
from llama_mapper.adapters.generic import checked_label, parse_generic
from llama_mapper.adapters.vendors._fields import as_object, has_key, required, scaled


class HfClassifierAdapter:
    name: str
    raw_text_keys: frozenset[str] = frozenset()

    def __init__(self, name: str) -> None:
        self.name = name

    def parse(self, output: object) -> list[Signal] | None:
        if isinstance(output, list):
            return _pipeline(output)
        if isinstance(output, Mapping) and output and all(map(_is_scores, output.values())):
            return _score_map(as_object(output, "classifier scores"))
        return None


def _pipeline(output: list[object]) -> list[Signal] | None:
    items = [leaf for item in output for leaf in (item if isinstance(item, list) else [item])]
    if not any(has_key(item, "label") and has_key(item, "score") for item in items):
        return None
    for item in items:
        result = as_object(item, "each classifier result")
        score = required(result, "score", "classifier result")
        scaled("probability", score, "classifier result.score")  # reject before delegating
    return parse_generic(items, "probability")


def _is_scores(value: object) -> bool:
    return _is_number(value) or (isinstance(value, list) and all(map(_is_number, value)))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _score_map(scores: Mapping[str, object]) -> list[Signal]:
    signals: list[Signal] = []
    for key, value in scores.items():
        label = checked_label(key)
        values = value if isinstance(value, list) else [value]
        signals += [Signal(label, scaled("probability", v, "classifier score")) for v in values]
    return signals
