"""Bad input found by hand and by schemathesis: every one is a 4xx with the error body, never a 5xx."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from yarl import URL

from paygate_dev.devtools.signing import sign_stripe
from support.stack import Merchant, ServiceStack


@pytest.fixture(scope="module")
async def merchant(shared_stack: ServiceStack) -> Merchant:
    return await shared_stack.create_merchant("Bad Input Ltd", "badinput")


def assert_error(status: int, body: object, expected_status: int, code: str | None = None) -> None:
    assert status == expected_status, body
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str), body
    if code is not None:
        assert body["error"]["code"] == code, body


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("18446744073709551616", "expires_in_out_of_range"),  # 2^64: once a 500
        ("1000000000000000000000000000000", "expires_in_out_of_range"),  # 10^30: once a 500
        ("9223372036854775807", "expires_in_out_of_range"),
        ("1e30", "expires_in_out_of_range"),
        ("1e999999999", "expires_in_out_of_range"),
        (str(90 * 24 * 3600 + 1), "expires_in_out_of_range"),
        ("-1", "expires_in_out_of_range"),
        # 0 once meant "the default" (the wire's zero value) while 60 was refused: a lifetime of nothing is
        # refused like any other too short; leaving the field out is how to ask for the default 24 h.
        ("0", "expires_in_out_of_range"),
        ("0.0", "expires_in_out_of_range"),
        ("8640000", "expires_in_out_of_range"),  # within the gateway's bound, above the service's 7 days
        ("1.5", "invalid_expires_in"),
        ('"60"', "invalid_expires_in"),
        ("true", "invalid_expires_in"),
        ("[]", "invalid_expires_in"),
    ],
)
async def test_unbounded_or_malformed_expires_in_is_400(
    shared_stack: ServiceStack, merchant: Merchant, raw: str, code: str
) -> None:
    status, body = await shared_stack.request(
        "POST",
        "/v1/sessions",
        data='{"amount": "10.00", "expires_in": ' + raw + "}",
        headers={**merchant.headers, "Content-Type": "application/json"},
    )
    assert_error(status, body, 400, code)


async def test_whole_seconds_in_any_json_form_are_accepted(
    shared_stack: ServiceStack, merchant: Merchant
) -> None:
    for raw in ("3600", "3.6e3", "3600.0", "null"):
        status, body = await shared_stack.request(
            "POST",
            "/v1/sessions",
            data='{"amount": "10.00", "expires_in": ' + raw + "}",
            headers={**merchant.headers, "Content-Type": "application/json"},
        )
        assert status == 201, (raw, body)


@pytest.mark.parametrize(
    "path", ["/v1/sessions", "/create_session", "/v1/api_keys/verify", "/v1/billing_profile"]
)
@pytest.mark.parametrize("depth", [100, 2_000, 100_000])
async def test_deeply_nested_json_is_400(
    shared_stack: ServiceStack, merchant: Merchant, path: str, depth: int
) -> None:
    method = "PUT" if path == "/v1/billing_profile" else "POST"
    raw = '{"amount": ' + "[" * depth + "]" * depth + "}"
    status, body = await shared_stack.request(
        method, path, data=raw, headers={**merchant.headers, "Content-Type": "application/json"}
    )
    assert_error(status, body, 400, "invalid_json")


async def test_deeply_nested_json_with_idempotency_key_is_400(
    shared_stack: ServiceStack, merchant: Merchant
) -> None:
    raw = "[" * 5_000 + "]" * 5_000
    headers = {**merchant.headers, "Content-Type": "application/json", "Idempotency-Key": "deep-1"}
    status, body = await shared_stack.request("POST", "/v1/sessions", data=raw, headers=headers)
    assert_error(status, body, 400, "invalid_json")


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"from": "0001-01-01T00:00:00+01:00", "to": "2025-01-01"}, "invalid_from"),
        ({"from": "2025-01-01", "to": "9999-12-31T23:59:59-01:00"}, "invalid_to"),
        ({"to": "0001-01-01T00:00:00+01:00"}, "invalid_to"),
        ({"from": "9999-12-31T23:59:59-01:00"}, "invalid_from"),
        ({"from": "not a date"}, "invalid_from"),
        ({"from": "2025-02-01", "to": "2025-01-01"}, "invalid_date_range"),
        ({"from": "1990-01-01", "to": "2025-01-01"}, "invalid_date_range"),
        ({"to": "0001-01-05T00:00:00Z"}, None),
    ],
)
async def test_edge_dates_on_revenue_are_400_or_clamped(
    shared_stack: ServiceStack, merchant: Merchant, query: dict[str, str], code: str | None
) -> None:
    status, body = await shared_stack.request("GET", "/v1/revenue", params=query, headers=merchant.headers)
    if code is None:
        assert status == 200, body
    else:
        assert_error(status, body, 400, code)


async def test_revenue_without_dates_covers_the_last_30_days(
    shared_stack: ServiceStack, merchant: Merchant
) -> None:
    before = datetime.now(UTC)
    status, body = await shared_stack.request("GET", "/v1/revenue", headers=merchant.headers)
    after = datetime.now(UTC)
    assert status == 200, body
    start, end = datetime.fromisoformat(body["from"]), datetime.fromisoformat(body["to"])
    assert before - timedelta(seconds=1) <= end <= after + timedelta(seconds=1)
    assert end - start == timedelta(days=30)

    status, body = await shared_stack.request(
        "GET", "/v1/revenue", params={"to": "2025-03-31"}, headers=merchant.headers
    )
    assert status == 200, body
    assert (body["from"], body["to"]) == ("2025-03-01T00:00:00.000Z", "2025-03-31T00:00:00.000Z")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/events?starting_after=not-a-uuid",
        "/v1/events/not-a-uuid/replay",
        "/v1/sessions/not-a-uuid",
        "/v1/invoices/not-a-uuid",
        "/v1/quarantine?starting_after=not-a-uuid",
        "/v1/sessions?starting_after=not-a-uuid",
        "/v1/api_keys?starting_after=not-a-uuid",
        "/v1/invoices?starting_after=not-a-uuid",
    ],
)
async def test_malformed_ids_are_4xx(shared_stack: ServiceStack, merchant: Merchant, path: str) -> None:
    method = "POST" if path.endswith("/replay") else "GET"
    status, body = await shared_stack.request(method, path, headers=merchant.headers)
    assert 400 <= status < 500, body
    assert_error(status, body, status)


NUL = "a\x00b"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/sessions", {"amount": "1.00", "metadata": {"k": NUL}}),
        ("POST", "/v1/sessions", {"amount": "1.00", "metadata": {NUL: "v"}}),
        ("POST", "/v1/sessions", {"amount": "1.00", "description": NUL}),
        ("POST", "/v1/sessions", {"amount": "1.00", "customer_email": "a\x00@example.com"}),
        ("POST", "/v1/sessions", {"amount": NUL}),
        ("POST", "/v1/sessions", {"amount": "1.00", "currency": NUL}),
        ("PUT", "/v1/billing_profile", {"seller": {"name": NUL}}),
        ("PUT", "/v1/billing_profile", {"support_email": "a\x00@example.com"}),
        ("PUT", "/v1/billing_profile", {"invoice_prefix": NUL}),
        ("POST", "/v1/api_keys/verify", {"key": NUL}),
        (
            "POST",
            "/v1/quarantine/00000000-0000-0000-0000-000000000000/resolve",
            {"decision": "dismissed", "note": NUL},
        ),
        ("POST", "/v1/webhook_endpoints", {"url": "https://example.com/\x00", "events": ["*"]}),
        (
            "POST",
            "/v1/webhook_endpoints",
            {"url": "https://example.com/h", "events": ["*"], "description": NUL},
        ),
        ("POST", "/v1/merchant_keys", {"mode": NUL}),
        # Not NUL, but once a 500 as well: an unhashable provider.
        ("POST", "/v1/sessions", {"amount": "1.00", "provider": ["stripe"]}),
        ("POST", "/v1/sessions", {"amount": "1.00", "provider": {"a": 1}}),
        ("POST", "/v1/sessions", {"amount": "1.00", "mode": ["test"]}),
        ("POST", "/v1/quarantine/00000000-0000-0000-0000-000000000000/resolve", {"decision": ["x"]}),
    ],
)
async def test_nul_characters_are_refused_or_stored_never_500(
    shared_stack: ServiceStack, merchant: Merchant, method: str, path: str, body: dict[str, object]
) -> None:
    status, reply = await shared_stack.request(method, path, json=body, headers=merchant.headers)
    assert status < 500, reply


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/sessions/{NUL}",
        "/v1/sessions/%00",
        "/v1/invoices/%00",
        "/v1/api_keys?starting_after=%00",
        "/v1/sessions?starting_after=%00",
        "/v1/events?starting_after=%00",
        "/v1/quarantine?starting_after=%00",
        "/v1/merchant_keys?starting_after=%00",
        "/v1/webhook_endpoints/%00",
        "/v1/webhook_deliveries?endpoint=%00",
        "/v1/merchant_events?starting_after=%00",
        "/session/%00/status",
        "/checkout?session=%00",
        "/access?token=%00",
    ],
)
async def test_nul_in_ids_and_queries_is_4xx(
    shared_stack: ServiceStack, merchant: Merchant, path: str
) -> None:
    status, reply = await shared_stack.request(
        "GET", path, headers={**merchant.headers, "Idempotency-Key": "x"}
    )
    assert status < 500, reply


async def test_nul_in_idempotency_key_is_not_a_500(shared_stack: ServiceStack, merchant: Merchant) -> None:
    status, reply = await shared_stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": "1.00"},
        headers={**merchant.headers, "Idempotency-Key": "a\tb"},
    )
    assert status < 500, reply


@pytest.mark.parametrize(
    "path",
    [
        "/v1/sessions/%ED%A0%80",
        "/v1/sessions/%FF%FE",
        "/v1/sessions?starting_after=%ED%A0%80",
        "/v1/sessions?status=%FF",
        "/v1/invoices/%FF",
        "/v1/invoices?from=%FF",
        "/v1/revenue?from=%ED%A0%80",
        "/v1/events?starting_after=%FF",
        "/v1/api_keys?starting_after=%ED%A0%80",
        "/v1/quarantine?starting_after=%FF",
        "/v1/merchant_keys?starting_after=%FF",
        "/v1/webhook_endpoints/%ED%A0%80",
        "/session/%ED%A0%80/status",
        "/checkout?session=%FF",
        "/access?token=%ED%A0%80",
    ],
)
async def test_undecodable_percent_escapes_are_4xx(
    shared_stack: ServiceStack, merchant: Merchant, path: str
) -> None:
    assert shared_stack.http is not None
    url = URL(shared_stack.base_url + path, encoded=True)  # sent as written, not re-encoded
    async with shared_stack.http.get(url, headers=merchant.headers) as response:
        assert response.status < 500, await response.text()


@pytest.mark.parametrize(
    "raw",
    [
        '{"amount": "1.00", "description": "\\ud800"}',
        '{"amount": "1.00", "metadata": {"\\udfff": "v"}}',
        '{"amount": "\\ud800"}',
    ],
)
async def test_unpaired_surrogates_in_json_are_400(
    shared_stack: ServiceStack, merchant: Merchant, raw: str
) -> None:
    status, reply = await shared_stack.request(
        "POST", "/v1/sessions", data=raw, headers={**merchant.headers, "Content-Type": "application/json"}
    )
    assert_error(status, reply, 400)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"id": "evt_\x00", "type": "payment_intent.succeeded", "data": {"object": {}}}, 400),
        ({"id": "evt_\ud800", "type": "payment_intent.succeeded", "data": {"object": {}}}, 400),
        ({"id": "evt_nul_type", "type": "payment_intent.\x00", "data": {"object": {}}}, 200),
        (
            {"id": "evt_nul_ref", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_\x00"}}},
            200,
        ),
    ],
)
async def test_signed_webhooks_with_unstorable_text_are_answered_not_500(
    shared_stack: ServiceStack, event: dict[str, object], expected: int
) -> None:
    """Once a 500: the inbox insert failed on NUL, taking the other events of its group commit with it."""
    raw = json.dumps(event).encode()
    secret = shared_stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"].split(",")[0]
    headers = {
        "Stripe-Signature": sign_stripe(raw, secret, int(time.time())),
        "Content-Type": "application/json",
    }
    status, body = await shared_stack.request("POST", "/webhooks/stripe", data=raw, headers=headers)
    assert status == expected, body
    if expected == 400:
        assert_error(status, body, 400, "missing_event_id")
