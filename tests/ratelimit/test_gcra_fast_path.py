"""The allowed-case shortcut the Redis backend takes must agree with the general GCRA path."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from llama_mapper.ratelimit.gcra import Quota, allowed_decision, evaluate, most_restrictive

quotas = st.builds(
    Quota,
    rate=st.integers(1, 10_000_000),
    period_seconds=st.sampled_from([0.5, 1.0, 60.0, 3600.0]),
    burst=st.integers(1, 10_000_000),
)
BASES = st.sampled_from([0.0, 1_700_000_000.123456])


@settings(max_examples=400, deadline=None)
@given(
    buckets=st.lists(
        st.tuples(quotas, st.floats(-5.0, 5.0, allow_nan=False)), min_size=1, max_size=3
    ),
    base=BASES,
    cost=st.integers(0, 50),
)
def test_shortcut_equals_evaluate_then_most_restrictive(
    buckets: list[tuple[Quota, float]], base: float, cost: int
) -> None:
    now = base + 3.0
    tats = [base + offset for _, offset in buckets]
    states = [evaluate(q, tat, now, cost) for (q, _), tat in zip(buckets, tats, strict=True)]
    allowed = all(state.allowed for state in states)
    shortcut = allowed_decision([q for q, _ in buckets], tats, now, cost)
    if allowed:
        assert shortcut == most_restrictive([s.decision for s in states], allowed=True)
    else:
        assert shortcut is None
