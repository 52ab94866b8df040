"""The raw-content guard, including property-based checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llama_mapper.privacy.guard import GuardLimits, RawContentError, check_raw_content

LIMITS = GuardLimits()
json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


def test_labels_and_vendor_shapes_pass() -> None:
    check_raw_content("unsafe\nS1,S10", LIMITS)
    check_raw_content({"results": [{"category_scores": {"self-harm/intent": 0.2}}]}, LIMITS)
    check_raw_content({"hashed_secret": "a" * 40 + "0123456789abcdef" * 2}, LIMITS)


@pytest.mark.parametrize(
    "value",
    [
        "word " * 20,
        "a\nb\nc\nd\ne",
        "x" * 513,
        "prefix " + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5",
        {"word " * 20: 0.5},
        {"a": "ok", "b": ["fine", "too " * 30]},
    ],
)
def test_content_is_refused_without_echo(value: object) -> None:
    with pytest.raises(RawContentError) as info:
        check_raw_content(value, LIMITS)
    assert "word word" not in str(info.value)
    assert "QUJD" not in str(info.value)


def test_skip_keys_are_not_judged() -> None:
    check_raw_content({"match": "word " * 50}, LIMITS, skip_keys=frozenset({"match"}))


def test_depth_bomb_is_refused() -> None:
    value: object = "x"
    for _ in range(40):
        value = [value]
    with pytest.raises(RawContentError, match="nested deeper"):
        check_raw_content(value, LIMITS)


@given(json_values)
def test_guard_only_raises_its_own_error(value: object) -> None:
    error = None
    try:
        check_raw_content(value, LIMITS)
    except RawContentError as exc:
        error = exc
    assert error is None or error.path.startswith("output")
