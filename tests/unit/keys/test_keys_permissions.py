"""Scopes and IP allow-lists of customer keys (contract §12): validation, narrowing, CIDR parsing, verify
precedence. Example tests plus hypothesis properties."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keys_service.domain.api_keys import KeyMode
from keys_service.domain.key_permissions import (
    compile_allowlist,
    ip_allowed,
    is_within,
    narrow_scopes,
    parse_allowlist,
    parse_ip,
    validate_scopes,
)
from keys_service.domain.key_status import KeyFacts, KeyStatus, verify_result
from keys_service.service_layer.customer_portal import customer_expiry, validate_customer_grace
from paygate_runtime.errors import InvalidArgument

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
scope_names = st.from_regex(r"[a-z0-9_:.\-]{1,64}", fullmatch=True)


def _facts(**overrides: object) -> KeyFacts:
    base: dict[str, object] = {
        "key_id": "k",
        "merchant_id": "m",
        "session_id": "s",
        "mode": KeyMode.TEST,
        "expires_at": None,
        "revoked_at": None,
    }
    base.update(overrides)
    return KeyFacts(**base)  # type: ignore[arg-type]


# --- scopes -------------------------------------------------------------------------------------------------


def test_valid_scopes_keep_order_and_drop_duplicates() -> None:
    assert validate_scopes(["read", "write", "read", "billing:invoices.read"]) == (
        "read",
        "write",
        "billing:invoices.read",
    )
    assert validate_scopes(["*"]) == ("*",)


@pytest.mark.parametrize(
    "bad",
    [
        [],
        "read",
        None,
        ["Read"],
        ["read write"],
        ["a" * 65],
        [""],
        ["*", "read"],
        [1],
        ["ünïcode"],
        ["x"] * 33 + ["y"],
    ],
)
def test_bad_scopes_are_invalid_argument_naming_the_field(bad: object) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_scopes(bad)
    assert caught.value.field == "scopes" and caught.value.code == "invalid_scopes"


def test_narrowing_within_the_grant_and_refusing_a_widening() -> None:
    assert narrow_scopes(["read"], ("read", "write")) == ("read",)
    assert narrow_scopes(["anything"], ("*",)) == ("anything",)
    with pytest.raises(InvalidArgument) as caught:
        narrow_scopes(["read", "admin"], ("read", "write"))
    assert caught.value.code == "scope_not_granted" and "admin" in caught.value.message
    # "*" is wider than any named grant.
    with pytest.raises(InvalidArgument):
        narrow_scopes(["*"], ("read",))


@given(granted=st.lists(scope_names, min_size=1, max_size=8, unique=True), data=st.data())
def test_property_a_subset_of_the_grant_is_always_accepted(granted: list[str], data: st.DataObject) -> None:
    subset = data.draw(st.lists(st.sampled_from(granted), min_size=1, max_size=len(granted), unique=True))
    narrowed = narrow_scopes(subset, tuple(granted))
    assert set(narrowed) == set(subset) and is_within(narrowed, granted)


@given(granted=st.lists(scope_names, min_size=1, max_size=8, unique=True), extra=scope_names)
def test_property_a_scope_outside_the_grant_is_always_refused(granted: list[str], extra: str) -> None:
    if extra in granted:
        return
    with pytest.raises(InvalidArgument) as caught:
        narrow_scopes([*granted[:1], extra], tuple(granted))
    assert caught.value.field == "scopes"


@given(requested=st.lists(scope_names, min_size=1, max_size=32, unique=True))
def test_property_everything_fits_a_wildcard_grant(requested: list[str]) -> None:
    assert narrow_scopes(requested, ("*",)) == tuple(requested)


@given(raw=st.lists(st.text(max_size=70), max_size=40))
def test_property_validation_never_raises_anything_but_invalid_argument(raw: list[str]) -> None:
    try:
        scopes = validate_scopes(raw)
    except InvalidArgument as error:
        assert error.field == "scopes"
    else:
        assert 1 <= len(scopes) <= 32


# --- CIDR allow-lists ----------------------------------------------------------------------------------------


def test_allowlist_parses_v4_v6_and_single_hosts() -> None:
    networks = parse_allowlist(["203.0.113.0/24", "2001:db8::/32", "198.51.100.7", "203.0.113.0/24"])
    assert [str(n) for n in networks] == ["203.0.113.0/24", "2001:db8::/32", "198.51.100.7/32"]
    assert parse_allowlist([]) == ()


@pytest.mark.parametrize(
    "bad",
    [
        "10.0.0.1/8",
        "300.1.1.1/32",
        "10.0.0.0/33",
        "not-an-ip",
        "",
        " ",
        "10.0.0.0/8\r\nX-Bad: 1",
        "::1/129",
        "1" * 80,
    ],
)
def test_bad_cidr_is_invalid_argument_naming_the_field(bad: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_allowlist([bad])
    assert caught.value.field == "ip_allowlist" and caught.value.code == "invalid_ip_allowlist"
    assert "\r" not in caught.value.message and "\n" not in caught.value.message


def test_allowlist_shape_limits() -> None:
    with pytest.raises(InvalidArgument):
        parse_allowlist("10.0.0.0/8")
    with pytest.raises(InvalidArgument):
        parse_allowlist([f"10.0.{i}.0/24" for i in range(33)])


def test_ip_checks_fail_closed() -> None:
    networks = compile_allowlist(parse_allowlist(["203.0.113.0/24", "2001:db8::/32"]))
    assert ip_allowed(networks, "203.0.113.9")
    assert ip_allowed(networks, "2001:db8::1")
    assert ip_allowed(networks, "::ffff:203.0.113.9")  # IPv4-mapped, as proxies write it
    assert not ip_allowed(networks, "198.51.100.1")
    assert not ip_allowed(networks, "")  # no IP given: refused
    assert not ip_allowed(networks, "garbage")
    assert ip_allowed((), "")  # no list: anywhere
    assert parse_ip("::ffff:1.2.3.4") == (4, int(ipaddress.ip_address("1.2.3.4")))
    assert parse_ip("1.2.3") is None and parse_ip("fe80::1%eth0") is None and parse_ip("1.2.3.4 x") is None


@given(address=st.ip_addresses(), prefix=st.integers(min_value=0, max_value=128))
def test_property_an_address_is_inside_its_own_network(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, prefix: int
) -> None:
    prefix = min(prefix, address.max_prefixlen)
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    (parsed,) = parse_allowlist([str(network)])
    assert parsed == network
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return  # counted as its IPv4 address, which a v6 block does not contain
    assert ip_allowed(compile_allowlist([parsed]), str(address))


@given(raw=st.text(max_size=80))
def test_property_cidr_parsing_never_raises_anything_but_invalid_argument(raw: str) -> None:
    try:
        networks = parse_allowlist([raw])
    except InvalidArgument as error:
        assert error.field == "ip_allowlist"
    else:
        assert len(networks) == 1 and networks[0] == ipaddress.ip_network(raw.strip())


# --- verify precedence ---------------------------------------------------------------------------------------


def test_verify_precedence_revoked_expired_then_ip() -> None:
    allow = compile_allowlist(parse_allowlist(["203.0.113.0/24"]))
    outside = "198.51.100.1"
    assert (
        verify_result(_facts(revoked_at=NOW, ip_allowlist=allow), NOW, ip=outside).status is KeyStatus.REVOKED
    )
    expired = _facts(expires_at=NOW - timedelta(seconds=1), ip_allowlist=allow)
    assert verify_result(expired, NOW, ip=outside).status is KeyStatus.EXPIRED
    assert verify_result(_facts(ip_allowlist=allow), NOW, ip=outside).status is KeyStatus.IP_NOT_ALLOWED
    assert verify_result(_facts(ip_allowlist=allow), NOW, ip="").status is KeyStatus.IP_NOT_ALLOWED
    ok = verify_result(_facts(ip_allowlist=allow, scopes=("read",)), NOW, ip="203.0.113.5")
    assert ok.valid and ok.scopes == ("read",)
    assert verify_result(_facts(), NOW).valid  # no list, no IP needed
    # Another merchant's key stays NOT_FOUND whatever its list says.
    assert verify_result(_facts(ip_allowlist=allow), NOW, "other", ip=outside).status is KeyStatus.NOT_FOUND


# --- customer expiry and grace -------------------------------------------------------------------------------


def test_customer_expiry_only_moves_forward_in_time_never_later() -> None:
    assert customer_expiry(NOW + timedelta(hours=1), None, NOW) == NOW + timedelta(hours=1)
    assert customer_expiry(NOW + timedelta(hours=1), NOW + timedelta(days=1), NOW) == NOW + timedelta(hours=1)
    for requested, current in (
        (NOW - timedelta(seconds=1), None),
        (NOW + timedelta(days=2), NOW + timedelta(days=1)),
    ):
        with pytest.raises(InvalidArgument) as caught:
            customer_expiry(requested, current, NOW)
        assert caught.value.field == "expires_at"


def test_customer_grace_is_at_most_a_day() -> None:
    assert validate_customer_grace(0) == 0 and validate_customer_grace(86400) == 86400
    for bad in (-1, 86401, True, "60"):
        with pytest.raises(InvalidArgument):
            validate_customer_grace(bad)
