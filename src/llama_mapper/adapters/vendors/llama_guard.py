"""Meta Llama Guard (1-4) raw completions.

Llama Guard answers with text: ``safe``, or ``unsafe`` followed by a line of comma-separated
category codes (``unsafe\\nS1,S10``; ``O1``… in Llama Guard 1). ``safe`` gives an unscored
``safe``; ``unsafe`` gives one unscored signal per code, or ``unsafe`` itself when no code line
follows. Leading whitespace (Llama Guard 3 often starts with blank lines) and case are
tolerated. The completion is read from the plain string, from a Hugging Face text-generation
result (``{"generated_text"}`` or ``[{"generated_text"}]``) or from an OpenAI-compatible
server (vLLM, TGI): ``{"choices": [{"message": {"content"}}]}`` or ``{"choices": [{"text"}]}``.

Other strings (``S1``, ``Violent Crimes``, ``S1|S2``) are not a completion and are left to the
generic forms. Llama Guard echoes nothing of the conversation, so there are no raw-text keys.
"""

from __future__ import annotations

from llama_mapper.adapters.base import OutputShapeError, Signal
from llama_mapper.adapters.generic import checked_label
from llama_mapper.adapters.vendors._fields import (
    as_object,
    has_key,
    list_field,
    object_field,
    str_field,
)


class LlamaGuardAdapter:
    name = "llama-guard"
    raw_text_keys: frozenset[str] = frozenset()

    def parse(self, output: object) -> list[Signal] | None:
        if isinstance(output, str):
            return parse_verdict(output)
        completion = _completion(output)
        if completion is None:
            return None
        signals = parse_verdict(completion)
        if signals is None:
            raise OutputShapeError("the Llama Guard completion must start with safe or unsafe")
        return signals


def parse_verdict(text: str) -> list[Signal] | None:
    """``safe`` / ``unsafe`` + codes, or None when ``text`` is not such a verdict."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return None
    verdict = lines[0].lower()
    if verdict == "safe":
        return [Signal("safe")]
    if verdict != "unsafe":
        return None
    codes = [code.strip() for line in lines[1:] for code in line.split(",") if code.strip()]
    return [Signal(checked_label(code)) for code in codes] or [Signal("unsafe")]


def _completion(output: object) -> str | None:
    """The completion text inside a wrapper, or None when ``output`` is no known wrapper."""
    if isinstance(output, list) and output and has_key(output[0], "generated_text"):
        output = output[0]
    if has_key(output, "generated_text"):
        return str_field(as_object(output, "generation"), "generated_text", "generation")
    if not has_key(output, "choices"):
        return None
    choices = list_field(as_object(output, "completion"), "choices", "completion")
    if not choices:
        raise OutputShapeError("completion.choices must not be empty")
    choice = as_object(choices[0], "completion.choices item")
    if "message" in choice:
        return str_field(object_field(choice, "message", "choice"), "content", "choice.message")
    return str_field(choice, "text", "choice")
