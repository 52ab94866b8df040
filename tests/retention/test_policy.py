"""The pure retention rules: days per tenant, cutoffs, which seqs a run may delete."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from llama_mapper.retention import DEFAULT_DAYS, RetentionPolicy, cutoff_for, decide, format_ts

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_default_and_tenant_days() -> None:
    policy = RetentionPolicy(tenant_days={"short": 30})
    assert policy.days_for("anyone") == DEFAULT_DAYS == 400
    assert policy.days_for("short") == 30
    assert cutoff_for(policy, "short", NOW) == "2026-11-01T12:00:00.000Z"
    assert cutoff_for(policy, "anyone", NOW) == "2025-10-27T12:00:00.000Z"
    assert policy.reason_for("short") == "retention: 30 days (tenant policy)"
    assert policy.reason_for("x") == "retention: 400 days (default policy)"


@pytest.mark.parametrize("days", [0, -1, True])
def test_nonsense_days_are_refused(days: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        RetentionPolicy(tenant_days={"t": days})


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_ts(datetime(2026, 1, 1))


def test_decide_stops_at_the_first_young_event() -> None:
    cut = "2026-01-01T00:00:00Z"
    decision = decide("t", cut, held=False, first_seq=5, head_seq=20, first_young_seq=9)
    assert (decision.first_seq, decision.last_seq, decision.count) == (5, 8, 4)
    # Everything old: up to the head.
    every = decide("t", cut, held=False, first_seq=5, head_seq=20, first_young_seq=None)
    assert (every.first_seq, every.last_seq) == (5, 20)
    # The first event is young: nothing.
    assert decide("t", cut, held=False, first_seq=5, head_seq=20, first_young_seq=5).count == 0
    # No events, or a hold: nothing.
    assert (
        decide("t", cut, held=False, first_seq=None, head_seq=None, first_young_seq=None).count == 0
    )
    held = decide("t", cut, held=True, first_seq=1, head_seq=9, first_young_seq=None)
    assert held.held
    assert held.count == 0
