"""How long a tenant's events are kept and which of them a run may delete.

A chain can only lose its *oldest* events and still verify (a tombstone then records the
cut, see :mod:`llama_mapper.audit.chain`), so a run deletes a run of consecutive seqs from
the start of the surviving chain and stops at the first event that is not past the cutoff:
an event whose clock ran a little early behind a younger one waits for the next run, and
no event younger than the cutoff is ever deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

#: The issue's default: a little over a year, so a yearly audit always finds its period.
DEFAULT_DAYS = 400


@dataclass(frozen=True)
class RetentionPolicy:
    """Days each tenant's events are kept: ``tenant_days`` overrides ``default_days``."""

    default_days: int = DEFAULT_DAYS
    tenant_days: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for days in (self.default_days, *self.tenant_days.values()):
            if isinstance(days, bool) or not isinstance(days, int) or days < 1:
                raise ValueError("retention days must be positive integers")

    def days_for(self, tenant_id: str) -> int:
        return self.tenant_days.get(tenant_id, self.default_days)

    def reason_for(self, tenant_id: str) -> str:
        """The reason a tombstone records: which rule deleted the events."""
        source = "tenant" if tenant_id in self.tenant_days else "default"
        return f"retention: {self.days_for(tenant_id)} days ({source} policy)"


def format_ts(moment: datetime) -> str:
    """ISO-8601 UTC with ``Z``, the form events are stamped with (compared as text)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; pass a timezone-aware value")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cutoff_for(policy: RetentionPolicy, tenant_id: str, now: datetime) -> str:
    """Events with ``ts`` before this are past retention."""
    return format_ts(now - timedelta(days=policy.days_for(tenant_id)))


@dataclass(frozen=True)
class Decision:
    """What one run does for one tenant: delete ``first_seq..last_seq``, or nothing."""

    tenant_id: str
    cutoff: str
    held: bool
    first_seq: int | None = None
    last_seq: int | None = None

    @property
    def count(self) -> int:
        if self.first_seq is None or self.last_seq is None:
            return 0
        return self.last_seq - self.first_seq + 1


def decide(
    tenant_id: str,
    cutoff: str,
    *,
    held: bool,
    first_seq: int | None,
    head_seq: int | None,
    first_young_seq: int | None,
) -> Decision:
    """The seqs to delete, from what the store knows about the tenant's chain.

    ``first_seq``/``head_seq``: the surviving chain's first and last seq (``None``: no
    events). ``first_young_seq``: the lowest seq whose ``ts`` is at or after ``cutoff``
    (``None``: every event is past it). A held tenant loses nothing.
    """
    if held or first_seq is None or head_seq is None:
        return Decision(tenant_id, cutoff, held)
    last = head_seq if first_young_seq is None else first_young_seq - 1
    if last < first_seq:
        return Decision(tenant_id, cutoff, held)
    return Decision(tenant_id, cutoff, held, first_seq, last)
