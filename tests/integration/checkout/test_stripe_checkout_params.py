"""The Stripe Checkout parameters and refusals that need no server: expiry window, units, modes, retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import stripe
from google.protobuf.timestamp_pb2 import Timestamp

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from webhook_gateway.adapters.stripe_checkout import (
    StripeCheckout,
    StripeCheckoutError,
    StripeCheckoutSettings,
    _classify,
    build_create_params,
    key_mode,
    stripe_expires_at,
)

T0 = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)


def _ts(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def _session(
    minor: str = "9999",
    currency: str = "EUR",
    exponent: int = 2,
    lifetime: timedelta = timedelta(hours=2),
    created: datetime = T0,
    mode: int = common_pb2.MODE_TEST,
) -> session_pb2.Session:
    return session_pb2.Session(
        id="6f1c2a52-8d1e-4c44-9b0a-3a7c1d2e4f50",
        merchant_id="0b7f7d6e-1111-4f4f-9a9a-000000000001",
        mode=mode,
        status=session_pb2.SESSION_STATUS_CREATED,
        provider="stripe",
        amount=common_pb2.Money(amount_minor=minor, currency=currency, exponent=exponent),
        created_at=_ts(created),
        expires_at=_ts(created + lifetime),
    )


def test_stripe_page_closes_with_our_session_inside_stripes_window() -> None:
    assert stripe_expires_at(T0, T0 + timedelta(hours=2)) == int((T0 + timedelta(hours=2)).timestamp())
    assert stripe_expires_at(T0, T0 + timedelta(hours=24)) == int((T0 + timedelta(hours=24)).timestamp())
    # Stripe needs 30 min from its own creation, a moment after ours: a 30-min session gets one more minute.
    assert stripe_expires_at(T0, T0 + timedelta(minutes=30)) == int((T0 + timedelta(minutes=31)).timestamp())
    # Never beyond 24 h after our creation, whatever our session says.
    assert stripe_expires_at(T0, T0 + timedelta(days=3)) == int((T0 + timedelta(hours=24)).timestamp())


def test_params_are_deterministic_and_in_stripe_units() -> None:
    session = _session()
    params = build_create_params(session, "https://pay.example")
    assert params == build_create_params(session, "https://pay.example")  # the same on every retry
    assert params["line_items"][0]["price_data"] == {
        "currency": "eur",
        "unit_amount": 9999,
        "product_data": {"name": "API access"},
    }
    assert params["metadata"] == params["payment_intent_data"]["metadata"] == {"session_id": session.id}
    assert params["client_reference_id"] == session.id
    assert "customer_email" not in params
    assert params["success_url"] == f"https://pay.example/checkout?session={session.id}&result=success"
    # ISK is whole krónur for ISO 4217 but two (zero) decimals in Stripe's API.
    isk = build_create_params(_session(minor="100", currency="ISK", exponent=0), "https://pay.example")
    assert isk["line_items"][0]["price_data"]["unit_amount"] == 10000
    bhd = build_create_params(_session(minor="5120", currency="BHD", exponent=3), "https://pay.example")
    assert bhd["line_items"][0]["price_data"]["unit_amount"] == 5120


def test_amount_stripe_cannot_charge_exactly_is_refused() -> None:
    with pytest.raises(StripeCheckoutError) as caught:
        build_create_params(_session(minor="5124", currency="BHD", exponent=3), "https://pay.example")
    assert caught.value.code == "provider_rejected" and not caught.value.transient


def test_key_modes() -> None:
    assert key_mode("sk_live_abc") == key_mode("rk_live_abc") == common_pb2.MODE_LIVE
    assert key_mode("sk_test_abc") == key_mode("rk_test_abc") == common_pb2.MODE_TEST
    assert key_mode("something") == common_pb2.MODE_UNSPECIFIED


async def test_refusals_before_any_network_call() -> None:
    # Port 9 on localhost answers nothing: a network call would fail as provider_unavailable instead.
    checkout = StripeCheckout(
        StripeCheckoutSettings(
            api_key="sk_live_x", public_url="https://pay.example", api_base="http://127.0.0.1:9"
        )
    )
    try:
        with pytest.raises(StripeCheckoutError) as caught:
            await checkout.create(_session(mode=common_pb2.MODE_TEST))
        assert caught.value.code == "provider_mode_mismatch"
        too_late = _session(mode=common_pb2.MODE_LIVE, lifetime=timedelta(hours=24))
        with pytest.raises(StripeCheckoutError) as caught:
            await checkout.create(too_late, now=T0 + timedelta(hours=23, minutes=40))
        assert caught.value.code == "provider_window_closed"
    finally:
        await checkout.close()


def test_error_classes_map_to_retry_or_not() -> None:
    assert _classify(stripe.APIConnectionError("down"), "create").code == "provider_unavailable"
    assert _classify(stripe.RateLimitError("slow down", http_status=429), "create").transient
    assert _classify(stripe.APIError("boom", http_status=500), "create").transient
    refused = _classify(stripe.InvalidRequestError("bad email", "customer_email", http_status=400), "create")
    assert (refused.code, refused.transient) == ("provider_rejected", False)
    assert not _classify(stripe.AuthenticationError("bad key", http_status=401), "create").transient
