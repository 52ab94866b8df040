"""Network identifiers: IPv4, IPv6 and MAC addresses."""

from __future__ import annotations

import ipaddress

from detector_orchestration.detectors.builtin.regex_pii.recognizer import (
    Recognizer,
    context_regex,
    pattern,
)

_NETWORK_CONTEXT = context_regex(
    "ip", "ipv4", "ipv6", "address", "addr", "host", "server", "client", "gateway", "router"
)


class Ipv4Recognizer(Recognizer):
    """Dotted quads that ``ipaddress`` accepts (0-255 each, no leading zeros)."""

    label = "ipv4"
    patterns = (pattern(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)", 0.6),)
    context = _NETWORK_CONTEXT

    def score(self, candidate: str, base: float) -> float | None:
        try:
            ipaddress.IPv4Address(candidate)
        except ValueError:
            return None
        return base


class Ipv6Recognizer(Recognizer):
    """Full, compressed (``::``) and IPv4-suffixed IPv6 addresses, validated by ``ipaddress``.

    Short compressed forms (``ab::1``) also look like code, so they score lower.
    """

    label = "ipv6"
    patterns = (
        pattern(
            r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?"
            r"(?![\w:]|\.\d)",
            0.6,
        ),
    )
    context = _NETWORK_CONTEXT

    def score(self, candidate: str, base: float) -> float | None:
        if candidate.count(":") < 2 or candidate.strip(":") == "":
            return None
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            return None
        groups = [group for group in candidate.split(":") if group]
        return base if len(groups) >= 4 else base - 0.25


class MacAddressRecognizer(Recognizer):
    """``00:1A:2B:3C:4D:5E``, ``00-1a-…`` (one separator throughout), Cisco ``001a.2b3c.4d5e``."""

    label = "mac_address"
    patterns = (
        pattern(
            r"(?<![\w:-])[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}(?![\w:-])", 0.6
        ),
        pattern(r"(?<![\w.])[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}(?!\w|\.\w)", 0.5),
    )
    context = context_regex(
        "mac", "mac address", "hardware address", "ethernet", "wifi", "nic", "bssid"
    )
