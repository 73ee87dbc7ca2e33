"""Who a request comes from, behind trusted reverse proxies (PAYGATE_TRUSTED_PROXIES): the dashboard's sign-in
rate limit counts per client, and a client must never choose its own bucket by writing X-Forwarded-For."""

from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook_gateway.entrypoints.client_address import (
    MAX_HOPS,
    client_key,
    forwarded_entries,
    parse_trusted_proxies,
)

PROXIES = parse_trusted_proxies("10.0.0.0/8, 192.168.1.1, fd00::/8")

ipv4 = st.ip_addresses(v=4).map(str)
public_v4 = st.ip_addresses(v=4).filter(lambda a: a not in ipaddress.ip_network("10.0.0.0/8")).map(str)
proxy_v4 = st.ip_addresses(network="10.0.0.0/8").map(str)
junk = st.text(max_size=40)


def test_parse_accepts_cidrs_and_single_addresses() -> None:
    assert parse_trusted_proxies("") == ()
    assert parse_trusted_proxies(" , ") == ()
    assert [str(n) for n in parse_trusted_proxies(" 10.0.0.0/8,2001:db8::/32 ,127.0.0.1")] == [
        "10.0.0.0/8",
        "2001:db8::/32",
        "127.0.0.1/32",
    ]


@pytest.mark.parametrize("raw", ["10.0.0.1/8", "10.0.0.0/33", "example.com", "10.0.0.0/8;", "*"])
def test_parse_refuses_what_is_no_network(raw: str) -> None:
    with pytest.raises(ValueError, match="CIDR"):
        parse_trusted_proxies(raw)


networks = st.one_of(
    st.builds(
        lambda a, n: ipaddress.ip_network((a, n), strict=False), st.ip_addresses(v=4), st.integers(0, 32)
    ),
    st.builds(
        lambda a, n: ipaddress.ip_network((a, n), strict=False), st.ip_addresses(v=6), st.integers(0, 128)
    ),
)


@given(st.lists(networks, max_size=6))
def test_parse_reads_back_what_it_is_given(
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> None:
    assert list(parse_trusted_proxies(", ".join(str(n) for n in networks))) == networks


@given(st.lists(junk, max_size=5))
def test_parse_never_fails_otherwise_than_with_value_error(parts: list[str]) -> None:
    with contextlib.suppress(ValueError):
        parse_trusted_proxies(",".join(parts))


@given(peer=public_v4, header=st.lists(junk, max_size=4))
def test_without_a_trusted_peer_the_header_is_ignored(peer: str, header: list[str]) -> None:
    assert client_key(peer, header, PROXIES) == peer
    assert client_key(peer, header, ()) == peer


@given(
    peer=proxy_v4,
    client=public_v4,
    spoofed=st.lists(st.one_of(ipv4, junk), max_size=5),
    hops=st.lists(proxy_v4, max_size=4),
)
def test_the_right_most_untrusted_hop_is_the_client(
    peer: str, client: str, spoofed: list[str], hops: list[str]
) -> None:
    # Whatever the client wrote itself (left of its own address) never matters.
    header = [", ".join([*spoofed, client, *hops])]
    assert client_key(peer, header, PROXIES) == client


@given(peer=proxy_v4, client=public_v4, spoofed=st.lists(ipv4, min_size=1, max_size=3))
def test_repeated_headers_read_as_one_list(peer: str, client: str, spoofed: list[str]) -> None:
    assert client_key(peer, [", ".join(spoofed), client], PROXIES) == client


@given(peer=proxy_v4, hops=st.lists(proxy_v4, min_size=1, max_size=4))
def test_all_trusted_hops_give_the_left_most(peer: str, hops: list[str]) -> None:
    assert client_key(peer, [", ".join(hops)], PROXIES) == hops[0]


@given(peer=proxy_v4, hops=st.lists(proxy_v4, max_size=3))
def test_an_unreadable_hop_counts_against_the_nearest_readable_one(peer: str, hops: list[str]) -> None:
    nearest = hops[0] if hops else peer
    assert client_key(peer, [", ".join(["not-an-ip", *hops])], PROXIES) == nearest
    assert client_key(peer, [], PROXIES) == peer


@given(peer=proxy_v4, client=st.ip_addresses(v=6).filter(lambda a: a not in ipaddress.ip_network("fd00::/8")))
def test_ipv6_clients_count_per_64(peer: str, client: ipaddress.IPv6Address) -> None:
    key = client_key(peer, [f"[{client}]:443"], PROXIES)
    if client.ipv4_mapped is not None:
        assert key == str(client.ipv4_mapped)
    else:
        assert ipaddress.ip_network(key).prefixlen == 64 and client in ipaddress.ip_network(key)


def test_forms_of_an_address() -> None:
    assert client_key("10.0.0.9", ["203.0.113.7:51000"], PROXIES) == "203.0.113.7"
    assert client_key("::ffff:10.0.0.9", ["203.0.113.7"], PROXIES) == "203.0.113.7"
    assert client_key("192.168.1.1", ["198.51.100.2"], PROXIES) == "198.51.100.2"
    assert client_key("192.168.1.2", ["198.51.100.2"], PROXIES) == "192.168.1.2"
    assert client_key(None, ["198.51.100.2"], PROXIES) == "unknown"


@given(st.lists(st.text(max_size=20), max_size=MAX_HOPS * 3))
def test_only_the_right_end_of_a_long_header_is_read(entries: list[str]) -> None:
    assert len(forwarded_entries([",".join(entries)])) <= MAX_HOPS


@given(peer=st.one_of(ipv4, junk, st.none()), header=st.lists(junk, max_size=5))
def test_any_input_gives_a_short_key(peer: str | None, header: list[str]) -> None:
    assert 0 < len(client_key(peer, header, PROXIES)) <= 64
