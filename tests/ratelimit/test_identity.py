"""Which buckets a request is charged to, and which address is the client's."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llama_mapper.config.settings import Limit, RateLimitSettings
from llama_mapper.ratelimit import Quota, client_ip, identity_buckets

SETTINGS = RateLimitSettings(
    per_key=Limit(rate=600),
    per_tenant=Limit(rate=1200),
    per_ip=Limit(rate=120),
    tenant_overrides={"big": Limit(rate=5000, period_seconds=60, burst=10000)},
)
PROXIES = ["10.0.0.0/8", "192.168.1.1", "2001:db8::/32"]


def test_authenticated_key_gets_key_and_tenant_buckets() -> None:
    buckets = identity_buckets(
        key_id="k1", tenant_id="acme", client_ip="1.2.3.4", settings=SETTINGS
    )
    assert buckets == [("key:k1", Quota(600, 60.0, 600)), ("tenant:acme", Quota(1200, 60.0, 1200))]


def test_tenant_override_applies() -> None:
    buckets = identity_buckets(key_id="k1", tenant_id="big", client_ip="1.2.3.4", settings=SETTINGS)
    assert buckets[1] == ("tenant:big", Quota(5000, 60.0, 10000))
    alone = identity_buckets(key_id=None, tenant_id="big", client_ip="1.2.3.4", settings=SETTINGS)
    assert alone == [("tenant:big", Quota(5000, 60.0, 10000))]


def test_tenant_without_key_when_auth_is_off() -> None:
    buckets = identity_buckets(
        key_id=None, tenant_id="acme", client_ip="1.2.3.4", settings=SETTINGS
    )
    assert buckets == [("tenant:acme", Quota(1200, 60.0, 1200))]


def test_anonymous_is_limited_by_address() -> None:
    buckets = identity_buckets(key_id=None, tenant_id=None, client_ip="1.2.3.4", settings=SETTINGS)
    assert buckets == [("ip:1.2.3.4", Quota(120, 60.0, 120))]
    empty = identity_buckets(key_id="", tenant_id="", client_ip="::1", settings=SETTINGS)
    assert empty == [("ip:::1", Quota(120, 60.0, 120))]


def test_key_without_tenant() -> None:
    buckets = identity_buckets(key_id="k1", tenant_id=None, client_ip="1.2.3.4", settings=SETTINGS)
    assert buckets == [("key:k1", Quota(600, 60.0, 600))]


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # Untrusted peers cannot choose their bucket.
        ("203.0.113.7", "1.1.1.1", "203.0.113.7"),
        ("203.0.113.7", None, "203.0.113.7"),
        # A trusted proxy's header is honoured: nearest untrusted hop from the right.
        ("10.1.2.3", "198.51.100.1", "198.51.100.1"),
        ("10.1.2.3", "6.6.6.6, 198.51.100.1, 10.9.9.9", "198.51.100.1"),
        ("192.168.1.1", "198.51.100.1", "198.51.100.1"),
        ("192.168.1.2", "198.51.100.1", "192.168.1.2"),  # a single IP, not its /24
        # All hops trusted: the leftmost is the origin.
        ("10.1.2.3", "10.0.0.5, 10.0.0.6", "10.0.0.5"),
        # Garbage anywhere we must read falls back to the peer.
        ("10.1.2.3", "not-an-ip", "10.1.2.3"),
        ("10.1.2.3", "198.51.100.1, garbage, 10.0.0.9", "10.1.2.3"),
        ("10.1.2.3", "", "10.1.2.3"),
        ("10.1.2.3", " , ,", "10.1.2.3"),
        # ...but garbage left of the client is never looked at.
        ("10.1.2.3", "garbage, 198.51.100.1", "198.51.100.1"),
        # Ports, brackets and IPv6.
        ("10.1.2.3", "198.51.100.1:4711", "198.51.100.1"),
        ("10.1.2.3", "[2001:db9::1]:443", "2001:db9::1"),
        ("10.1.2.3", "[2001:db9::1]", "2001:db9::1"),
        ("10.1.2.3", "2001:DB9::1", "2001:db9::1"),
        ("2001:db8::5", "198.51.100.1", "198.51.100.1"),
        ("::ffff:10.1.2.3", "198.51.100.1", "198.51.100.1"),  # IPv4-mapped peer
        ("10.1.2.3", "[2001:db9::1]:x", "10.1.2.3"),
        # Unparsable peers (unix sockets, test clients) are returned as they are.
        ("testclient", "198.51.100.1", "testclient"),
        (None, "198.51.100.1", "unknown"),
    ],
)
def test_client_ip(peer: str | None, forwarded: str | None, expected: str) -> None:
    assert client_ip(peer, forwarded, PROXIES) == expected


def test_invalid_trusted_proxy_entries_are_ignored() -> None:
    assert client_ip("10.1.2.3", "198.51.100.1", ["bogus", "10.0.0.0/8"]) == "198.51.100.1"
    assert client_ip("10.1.2.3", "198.51.100.1", ["bogus"]) == "10.1.2.3"
    assert client_ip("10.1.2.3", "198.51.100.1", []) == "10.1.2.3"


def test_long_chains_are_cut_off() -> None:
    chain = ", ".join(["10.0.0.1"] * 1000)
    assert client_ip("10.1.2.3", chain, PROXIES) == "10.1.2.3"


def _valid_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


hop = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=4).map(lambda a: f"{a}:{80}"),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]:443"),
    st.text(max_size=20),
)


@settings(max_examples=300, deadline=None)
@given(
    peer=st.one_of(st.none(), st.ip_addresses().map(str), st.text(max_size=30)),
    forwarded=st.one_of(st.none(), st.text(max_size=80), st.lists(hop, max_size=8).map(", ".join)),
    proxies=st.lists(
        st.one_of(
            st.ip_addresses().map(str),
            st.from_regex(r"10\.\d{1,3}\.0\.0/(8|16|24)", fullmatch=True),
            st.text(max_size=12),
        ),
        max_size=4,
    ),
)
def test_client_ip_never_raises(
    peer: str | None, forwarded: str | None, proxies: list[str]
) -> None:
    result = client_ip(peer, forwarded, proxies)
    assert isinstance(result, str)
    assert _valid_ip(result) or result == peer or (peer is None and result == "unknown")
