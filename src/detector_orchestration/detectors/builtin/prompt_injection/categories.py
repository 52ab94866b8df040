"""The attack categories this detector reports: the labels of the ``prompt-injection`` pack."""

from __future__ import annotations

BENIGN = "BENIGN"
INSTRUCTION_OVERRIDE = "INSTRUCTION_OVERRIDE"
JAILBREAK = "JAILBREAK"
PROMPT_EXFILTRATION = "PROMPT_EXFILTRATION"
TOOL_REQUEST = "TOOL_REQUEST"
ENCODED_PAYLOAD = "ENCODED_PAYLOAD"

ATTACKS: tuple[str, ...] = (
    INSTRUCTION_OVERRIDE,
    JAILBREAK,
    PROMPT_EXFILTRATION,
    TOOL_REQUEST,
    ENCODED_PAYLOAD,
)


def combine(*scores: float) -> float:
    """Noisy-OR: independent pieces of evidence for one category add up, never past 1."""
    remaining = 1.0
    for score in scores:
        remaining *= 1.0 - min(1.0, max(0.0, score))
    return 1.0 - remaining
