"""Merchant events, pure rules: endpoint URLs per mode, the addresses paygate may connect to, the retry
schedule, event types; and the checked resolver that delivery uses (DNS rebinding)."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from paygate_runtime.errors import InvalidArgument
from session_service.adapters.webhook_http import AddressRefused, CheckedResolver, WebhookHttpClient
from session_service.domain.merchant_events import (
    RetryPolicy,
    address_allowed,
    check_endpoint_url,
    check_events,
    event_body,
)

REFUSED_LIVE = [
    "https://127.0.0.1/hook",
    "https://10.0.0.1/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[fd00:ec2::254]/",
    "https://192.168.1.10/",
    "https://100.64.0.1/",
    "https://0.0.0.0/",
    "https://localhost/hook",
    "https://metadata.google.internal/",
    "https://intranet/",
    "http://example.com/hook",  # live is https only
    "https://user:pw@example.com/hook",
    "ftp://example.com/",
    "https:///nohost",
    "not a url",
]


@pytest.mark.parametrize("url", REFUSED_LIVE)
def test_live_endpoints_must_be_https_to_a_public_address(url: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_endpoint_url(url, "live", allow_loopback=True)
    assert refused.value.code == "invalid_url"


def test_live_public_https_is_accepted() -> None:
    assert check_endpoint_url("https://hooks.example.com/paygate", "live", allow_loopback=False).port == 443
    assert check_endpoint_url("https://93.184.216.34:8443/x", "live", allow_loopback=False).port == 8443


def test_test_endpoints_may_use_loopback_only_when_allowed() -> None:
    for url in ("http://127.0.0.1:9000/hook", "http://localhost:9000/hook", "http://[::1]:9000/"):
        assert check_endpoint_url(url, "test", allow_loopback=True).url == url
        with pytest.raises(InvalidArgument):
            check_endpoint_url(url, "test", allow_loopback=False)
    # Loopback, yes; the rest of the private world, never, and plain http only on loopback.
    for url in ("http://10.0.0.1/", "https://10.0.0.1/", "http://example.com/", "https://169.254.169.254/"):
        with pytest.raises(InvalidArgument):
            check_endpoint_url(url, "test", allow_loopback=True)


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "::ffff:10.0.0.1", "fe80::1", "224.0.0.1"]
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not address_allowed(ipaddress.ip_address(address), allow_loopback=False)


def test_loopback_allowed_means_loopback_only() -> None:
    assert address_allowed(ipaddress.ip_address("127.0.0.1"), allow_loopback=True)
    assert address_allowed(ipaddress.ip_address("::1"), allow_loopback=True)
    assert not address_allowed(ipaddress.ip_address("10.0.0.1"), allow_loopback=True)
    assert address_allowed(ipaddress.ip_address("93.184.216.34"), allow_loopback=False)


async def test_checked_resolver_hands_aiohttp_only_checked_addresses() -> None:
    answers = {"rebind.example": ["127.0.0.1"], "mixed.example": ["10.0.0.1", "93.184.216.34"]}

    async def lookup(host: str, port: int) -> list[str]:
        return answers[host]

    resolver = CheckedResolver(allow_loopback=False, lookup=lookup)
    with pytest.raises(AddressRefused, match="address_not_allowed"):
        await resolver.resolve("rebind.example", 443, socket.AF_INET)
    mixed = await resolver.resolve("mixed.example", 443, socket.AF_INET)
    assert [r["host"] for r in mixed] == ["93.184.216.34"]


async def test_delivery_refuses_a_name_that_resolves_to_a_private_address() -> None:
    """DNS rebinding: the name was public when the endpoint was made; at delivery it answers 127.0.0.1,
    169.254.169.254 or ::1, and nothing is sent."""
    for address in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "::1"):

        async def lookup(host: str, port: int, address: str = address) -> list[str]:
            return [address]

        client = WebhookHttpClient(timeout_s=2, max_connections=4, lookup=lookup)
        try:
            result = await client.post("https://hooks.example.com/x", b"{}", {}, allow_loopback=False)
        finally:
            await client.close()
        assert result.status_code is None and not result.delivered
        assert result.error is not None and result.error.startswith("address_not_allowed"), result.error


async def test_delivery_refuses_literal_private_addresses() -> None:
    client = WebhookHttpClient(timeout_s=2, max_connections=4)
    try:
        for url in ("https://127.0.0.1/", "https://10.0.0.1/", "https://169.254.169.254/", "https://[::1]/"):
            result = await client.post(url, b"{}", {}, allow_loopback=False)
            assert result.error is not None and result.error.startswith("address_not_allowed"), url
    finally:
        await client.close()


def test_events_are_known_types_or_the_wildcard() -> None:
    assert check_events(["session.paid", "session.paid", "invoice.issued"]) == [
        "session.paid",
        "invoice.issued",
    ]
    assert check_events(["*"]) == ["*"]
    for bad in ([], ["*", "session.paid"], ["session.unknown"], [f"x{i}" for i in range(40)]):
        with pytest.raises(InvalidArgument) as refused:
            check_events(bad)
        assert refused.value.code == "invalid_events"


def test_retries_back_off_exponentially_with_jitter_for_days() -> None:
    policy = RetryPolicy()
    assert policy.delay(1, lambda: 1.0) == 5.0
    assert policy.delay(5, lambda: 1.0) == 80.0
    assert policy.delay(40, lambda: 1.0) == policy.cap_s
    assert 0 < policy.delay(3, lambda: 0.0) <= policy.base_s
    # With the jitter's worst case (every delay at its ceiling) retries still span the 3-day window in a
    # bounded number of attempts; at its mean, more.
    elapsed, attempts = 0.0, 0
    while elapsed < policy.window_s:
        attempts += 1
        elapsed += policy.delay(attempts, lambda: 1.0)
    assert 20 <= attempts <= 40


def test_event_body_is_stable() -> None:
    from datetime import UTC, datetime

    body = event_body("evt_1", "session.paid", datetime(2026, 1, 1, tzinfo=UTC), "test", {"id": "s", "n": 1})
    assert body == (
        '{"id":"evt_1","type":"session.paid","created":1767225600,"mode":"test","data":{"object":{"id":"s","n":1}}}'
    )
