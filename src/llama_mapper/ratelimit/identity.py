"""Who a request is charged to, and the client address behind trusted proxies.

The most specific known identity wins: an authenticated key is limited per key *and* per
tenant (so one tenant's many keys cannot multiply its allowance); without a key but with a
known tenant (auth disabled) the tenant's bucket applies; an anonymous caller is limited by
its address. ``X-Forwarded-For`` is believed only when the direct peer is a configured proxy,
since any client can write the header and would otherwise pick its own bucket.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from functools import lru_cache

from llama_mapper.config.settings import RateLimitSettings
from llama_mapper.ratelimit.backends import Bucket
from llama_mapper.ratelimit.gcra import Quota

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# How many X-Forwarded-For hops are examined: real chains are a handful long, and a header
# stuffed with thousands of entries must not cost more than a few parses.
MAX_FORWARDED_HOPS = 32
UNKNOWN_CLIENT = "unknown"


def identity_buckets(
    *,
    key_id: str | None,
    tenant_id: str | None,
    client_ip: str,
    settings: RateLimitSettings,
) -> list[Bucket]:
    """The buckets one request is charged to, most specific first."""
    if key_id:
        buckets: list[Bucket] = [(f"key:{key_id}", Quota.from_limit(settings.per_key))]
        if tenant_id:
            buckets.append(_tenant_bucket(tenant_id, settings))
        return buckets
    if tenant_id:
        return [_tenant_bucket(tenant_id, settings)]
    return [(f"ip:{client_ip}", Quota.from_limit(settings.per_ip))]


def _tenant_bucket(tenant_id: str, settings: RateLimitSettings) -> Bucket:
    limit = settings.tenant_overrides.get(tenant_id, settings.per_tenant)
    return (f"tenant:{tenant_id}", Quota.from_limit(limit))


def client_ip(peer: str | None, forwarded_for: str | None, trusted_proxies: Sequence[str]) -> str:
    """The address to limit: the peer, or the nearest untrusted hop when the peer is a proxy.

    ``forwarded_for`` is the ``X-Forwarded-For`` value (several headers joined with ``,``).
    The chain is walked right to left, skipping trusted proxies; the first other address is
    the client. Anything unparsable falls back to the peer, since an entry we cannot read
    means the chain left our trusted proxies there and everything to its left is hearsay.
    Never raises: a malformed header must not turn into a 500.
    """
    if peer is None:
        return UNKNOWN_CLIENT
    peer_ip = _parse(peer)
    if peer_ip is None:
        return peer
    networks = _networks(tuple(trusted_proxies))
    if not forwarded_for or not _trusted(peer_ip, networks):
        return str(peer_ip)
    try:
        hops = [hop.strip() for hop in forwarded_for.split(",")]
    except Exception:  # defensive: odd str subclasses
        return str(peer_ip)
    hops = [hop for hop in hops if hop]
    candidate = peer_ip
    for index, hop in enumerate(reversed(hops)):
        if index >= MAX_FORWARDED_HOPS:
            return str(peer_ip)
        address = _parse(hop)
        if address is None:
            return str(peer_ip)
        candidate = address
        if not _trusted(address, networks):
            return str(address)
    # Every hop was a trusted proxy: the leftmost is the origin we know of.
    return str(candidate)


@functools.lru_cache(maxsize=4096)
def _parse(value: str) -> IPAddress | None:
    """An address from a bare IP, ``ipv4:port``, ``[ipv6]`` or ``[ipv6]:port``; else None."""
    text = value.strip()
    if not text or len(text) > 100:
        return None
    if text.startswith("["):
        end = text.find("]")
        if end == -1 or (end + 1 < len(text) and not _is_port(text[end + 1 :])):
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        host, port = text.split(":")
        if not port.isdigit():
            return None
        text = host
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # One client, one bucket, whichever socket family it came in on.
        return address.ipv4_mapped
    return address


def _is_port(suffix: str) -> bool:
    return suffix.startswith(":") and suffix[1:].isdigit() and len(suffix) <= 6


def _trusted(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


@lru_cache(maxsize=32)
def _networks(trusted: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """Parsed once per distinct setting; entries that are not an IP or CIDR are ignored."""
    networks: list[IPNetwork] = []
    for entry in trusted:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            continue
    return tuple(networks)
