"""llama-mapper's built-in regex PII detector.

It reports ``[{"label", "start", "end", "score"}]``: one item per match, labelled with the
pattern name (``email``, ``us_ssn``, ``credit_card``…), located by character offsets and scored
by the pattern's precision in [0, 1] (scale ``probability``; unscored if ``score`` is null).
Offsets are what sets this shape apart from the generic ``[{label, score}]``, so a list whose
items have no ``start``/``end`` is left to the generic forms. The detector never reports the
matched text; should an item carry ``text`` or ``match`` it is dropped at the edge.
"""

from __future__ import annotations

from llama_mapper.adapters.base import Signal
from llama_mapper.adapters.vendors._fields import (
    as_object,
    has_key,
    label_field,
    scaled,
    span,
)


class RegexPiiAdapter:
    name = "regex-pii"
    raw_text_keys = frozenset({"text", "match"})

    def parse(self, output: object) -> list[Signal] | None:
        if not isinstance(output, list) or not any(has_key(i, "start", "end") for i in output):
            return None
        signals: list[Signal] = []
        for item in output:
            where = "regex PII match"
            match = as_object(item, f"each {where}")
            start, end = span(match, where)
            score = match.get("score")
            value = None if score is None else scaled("probability", score, f"{where}.score")
            signals.append(Signal(label_field(match, "label", where), value, start, end))
        return signals
