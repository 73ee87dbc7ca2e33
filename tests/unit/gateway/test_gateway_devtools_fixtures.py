from __future__ import annotations

import uuid

import pytest

from paygate_dev.devtools.signing import sign_standard, sign_stripe, standard_delivery, stripe_delivery
from paygate_dev.devtools.stripe_fixtures import build_onecom_event, build_stripe_event, stripe_shape
from webhook_gateway.providers.standard_webhooks import verify_standard
from webhook_gateway.providers.stripe_webhooks import STRIPE_EVENT_TYPES, verify_stripe

SESSION = str(uuid.uuid4())
NOW = 1_750_000_000


@pytest.mark.parametrize("event_type", STRIPE_EVENT_TYPES)
def test_stripe_events_keep_the_published_shape(event_type: str) -> None:
    event = build_stripe_event(event_type, SESSION, 1250, "EUR", payment_intent_id="pi_1", created=NOW)
    assert set(stripe_shape("event")) <= set(event)
    assert (event["object"], event["type"], event["created"]) == ("event", event_type, NOW)
    assert event["id"].startswith("evt_")
    obj = event["data"]["object"]
    expected_object = {"checkout": "checkout.session", "payment_intent": "payment_intent"}.get(
        event_type.split(".")[0], "dispute" if "dispute" in event_type else "charge"
    )
    assert obj["object"] == expected_object
    if expected_object in ("checkout.session", "payment_intent"):
        assert set(stripe_shape(expected_object)) <= set(obj)
    assert obj["currency"] == "eur"


def test_amounts_are_written_in_stripe_units() -> None:
    event = build_stripe_event("checkout.session.completed", SESSION, 250, "ISK")
    assert event["data"]["object"]["amount_total"] == 25000
    with pytest.raises(ValueError):
        build_stripe_event("checkout.session.completed", SESSION, 5124, "KWD")


def test_unknown_types_are_refused() -> None:
    with pytest.raises(ValueError):
        build_stripe_event("invoice.paid", SESSION, 100, "EUR")
    with pytest.raises(ValueError):
        build_onecom_event("payment.refunded", SESSION, 100, "EUR")


def test_shapes_are_copies() -> None:
    stripe_shape("payment_intent")["id"] = "changed"
    assert stripe_shape("payment_intent")["id"] != "changed"


def test_deliveries_verify() -> None:
    raw, headers = stripe_delivery(
        build_stripe_event("payment_intent.succeeded", SESSION, 1, "EUR"), "whsec_x", NOW
    )
    assert headers["Stripe-Signature"] == sign_stripe(raw, "whsec_x", NOW)
    assert (
        verify_stripe(raw, headers["Stripe-Signature"], ["whsec_x"], now=NOW).event_type
        == "payment_intent.succeeded"
    )
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    raw, headers = standard_delivery(build_onecom_event("payment.pending", SESSION, 1, "EUR"), secret, NOW)
    assert (
        headers["webhook-signature"]
        == sign_standard(raw, headers["webhook-id"], secret, NOW)["webhook-signature"]
    )
    assert verify_standard(raw, headers, [secret], now=NOW).event_id == headers["webhook-id"]
