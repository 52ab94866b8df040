"""Llama Guard completions as documented in the Llama Guard 3 and 4 model cards."""

import pytest

from llama_mapper.adapters import OutputShapeError, Signal
from llama_mapper.adapters.vendors.llama_guard import LlamaGuardAdapter

ADAPTER = LlamaGuardAdapter()


@pytest.mark.parametrize("completion", ["safe", "\n\nsafe", "SAFE  ", " Safe\n"])
def test_safe_is_an_unscored_safe(completion):
    assert ADAPTER.parse(completion) == [Signal("safe")]


def test_unsafe_emits_each_category_code():
    assert ADAPTER.parse("\n\nunsafe\nS1,S10") == [Signal("S1"), Signal("S10")]
    assert ADAPTER.parse("unsafe\nS2, S14\n") == [Signal("S2"), Signal("S14")]
    assert ADAPTER.parse("unsafe\nO3") == [Signal("O3")]


def test_unsafe_without_codes_is_unsafe():
    assert ADAPTER.parse("unsafe") == [Signal("unsafe")]
    assert ADAPTER.parse("Unsafe\n\n") == [Signal("unsafe")]


def test_wrapped_completions():
    assert ADAPTER.parse({"generated_text": "unsafe\nS9"}) == [Signal("S9")]
    assert ADAPTER.parse([{"generated_text": "\n\nsafe"}]) == [Signal("safe")]
    chat = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "meta-llama/Llama-Guard-3-8B",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "\n\nunsafe\nS1,S10"},
                "finish_reason": "stop",
            }
        ],
    }
    assert ADAPTER.parse(chat) == [Signal("S1"), Signal("S10")]
    completion = {"choices": [{"index": 0, "text": "safe", "finish_reason": "stop"}]}
    assert ADAPTER.parse(completion) == [Signal("safe")]


@pytest.mark.parametrize("output", ["S1", "Violent Crimes", "S1|S2", ["S1"], {"S1": 1.0}, ""])
def test_other_shapes_are_left_to_the_generic_parser(output):
    assert ADAPTER.parse(output) is None


@pytest.mark.parametrize(
    "output",
    [
        {"generated_text": "My card is 4111-1111-1111-1111"},
        {"generated_text": ["4111-1111-1111-1111"]},
        {"choices": []},
        {"choices": ["4111-1111-1111-1111"]},
        {"choices": [{"message": {"content": None}}]},
        {"choices": [{"message": "4111-1111-1111-1111"}]},
        [{"generated_text": 4111}],
    ],
)
def test_malformed_wrappers_raise_without_echoing_values(output):
    with pytest.raises(OutputShapeError) as error:
        ADAPTER.parse(output)
    assert "4111" not in str(error.value)
