"""NemoGuard content-safety answers, as in the NeMo Guardrails content safety guide."""

import json

import pytest

from llama_mapper.adapters import OutputShapeError, Signal
from llama_mapper.adapters.vendors.nemo_guardrails import NemoGuardrailsAdapter

ADAPTER = NemoGuardrailsAdapter()

UNSAFE = {
    "User Safety": "unsafe",
    "Response Safety": "safe",
    "Safety Categories": "Violence, Criminal Planning/Confessions",
}


def test_unsafe_emits_each_category():
    expected = [Signal("Violence"), Signal("Criminal Planning/Confessions")]
    assert ADAPTER.parse(UNSAFE) == expected
    assert ADAPTER.parse(json.dumps(UNSAFE)) == expected
    assert ADAPTER.parse(f"```json\n{json.dumps(UNSAFE)}\n```") == expected


def test_response_safety_alone_can_be_unsafe():
    output = {"User Safety": "safe", "Response Safety": "unsafe", "Safety Categories": "S1, S22"}
    assert ADAPTER.parse(output) == [Signal("S1"), Signal("S22")]


def test_safe_and_uncategorized_verdicts():
    assert ADAPTER.parse({"User Safety": "safe"}) == [Signal("safe")]
    assert ADAPTER.parse('{"User Safety": "safe", "Response Safety": "safe"}') == [Signal("safe")]
    assert ADAPTER.parse({"User Safety": "Unsafe"}) == [Signal("unsafe")]
    assert ADAPTER.parse({"User Safety": "unsafe", "Safety Categories": " "}) == [Signal("unsafe")]


@pytest.mark.parametrize(
    "output", ["safe", "Violence", "{not json", '{"label": "x"}', ["unsafe"], {"Violence": 1}]
)
def test_other_shapes_are_left_to_the_generic_parser(output):
    assert ADAPTER.parse(output) is None


@pytest.mark.parametrize(
    "output",
    [
        {"User Safety": "alice@example.com"},
        {"User Safety": True},
        {"Safety Categories": "Violence"},
        {"User Safety": "unsafe", "Safety Categories": ["alice@example.com"]},
        '{"Response Safety": "alice@example.com"}',
    ],
)
def test_malformed_answers_raise_without_echoing_values(output):
    with pytest.raises(OutputShapeError) as error:
        ADAPTER.parse(output)
    assert "alice@example.com" not in str(error.value)
