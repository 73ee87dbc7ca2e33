from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from paygate_dev.devtools.signing import encode_body, sign_stripe
from paygate_dev.devtools.stripe_fixtures import build_stripe_event
from webhook_gateway.providers.normalized import NormalizedEvent, VerifiedEnvelope
from webhook_gateway.providers.stripe_webhooks import STRIPE_EVENT_TYPES, normalize_stripe, verify_stripe

NOW = 1_750_000_000
SECRET = "whsec_normalize_tests"
SESSION = str(uuid.uuid4())
PI = "pi_3QtestPaymentIntent"


def _normalize(event: dict[str, Any]) -> NormalizedEvent:
    # Through the real verification path, so the payload is exactly what the gateway would see.
    raw = encode_body(event)
    return normalize_stripe(verify_stripe(raw, sign_stripe(raw, SECRET, NOW), [SECRET], now=NOW))


def _event(event_type: str, amount: int = 9999, currency: str = "EUR", **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("payment_intent_id", PI)
    return build_stripe_event(event_type, SESSION, amount, currency, created=NOW - 5, **kwargs)


@pytest.mark.parametrize(
    ("event_type", "kind", "amount"),
    [
        ("checkout.session.completed", "succeeded", 9999),
        ("checkout.session.async_payment_succeeded", "succeeded", 9999),
        ("checkout.session.async_payment_failed", "failed", None),
        ("checkout.session.expired", "expired", None),
        ("payment_intent.succeeded", "succeeded", 9999),
        ("payment_intent.processing", "pending", None),
        ("payment_intent.payment_failed", "attempt_failed", None),
        ("charge.refunded", "refunded", 9999),
    ],
)
def test_each_contract_event_type(event_type: str, kind: str, amount: int | None) -> None:
    event = _event(event_type, livemode=True, event_id="evt_abc")
    normalized = _normalize(event)
    assert normalized.kind == kind
    assert normalized.ignore_reason is None
    assert normalized.provider == "stripe"
    assert normalized.event_id == "evt_abc"
    assert normalized.event_type == event_type
    assert normalized.session_id == SESSION
    assert normalized.provider_reference == PI
    assert normalized.amount_minor == amount
    assert normalized.currency == "EUR"
    assert normalized.exponent == 2
    assert normalized.livemode is True
    assert normalized.occurred_at == datetime.fromtimestamp(NOW - 5, UTC)


def test_every_contract_type_is_covered_by_the_table_above() -> None:
    assert len(STRIPE_EVENT_TYPES) == 9
    for event_type in STRIPE_EVENT_TYPES:
        assert _normalize(_event(event_type)).kind is not None


def test_dispute_is_found_by_payment_intent_only() -> None:
    normalized = _normalize(_event("charge.dispute.created", amount=5000))
    assert normalized.kind == "disputed"
    assert normalized.session_id is None
    assert normalized.provider_reference == PI
    assert normalized.amount_minor == 5000


def test_refund_without_session_metadata_uses_the_payment_intent() -> None:
    event = _event("charge.refunded")
    event["data"]["object"]["metadata"] = {}
    normalized = _normalize(event)
    assert normalized.kind == "refunded"
    assert normalized.session_id is None
    assert normalized.provider_reference == PI


def test_the_two_events_of_one_payment_share_the_reference() -> None:
    completed = _normalize(_event("checkout.session.completed"))
    succeeded = _normalize(_event("payment_intent.succeeded"))
    assert completed.event_id != succeeded.event_id
    assert completed.provider_reference == succeeded.provider_reference == PI
    assert completed.kind == succeeded.kind == "succeeded"


def test_checkout_completed_unpaid_is_pending_without_amount() -> None:
    normalized = _normalize(_event("checkout.session.completed", payment_status="unpaid"))
    assert normalized.kind == "pending"
    assert normalized.amount_minor is None


def test_checkout_completed_with_no_payment_required_is_ignored() -> None:
    normalized = _normalize(_event("checkout.session.completed", payment_status="no_payment_required"))
    assert normalized.kind is None
    assert normalized.ignore_reason == "unsupported_payment_status"


def test_processing_with_amount_received_zero_reports_no_amount() -> None:
    event = _event("payment_intent.processing")
    assert event["data"]["object"]["amount_received"] == 0
    normalized = _normalize(event)
    assert normalized.kind == "pending"
    assert normalized.amount_minor is None
    assert not normalized.reports_money_received


def test_isk_amount_is_converted_from_stripe_units() -> None:
    event = _event("payment_intent.succeeded", amount=100, currency="ISK")
    assert event["data"]["object"]["amount_received"] == 10000
    assert event["data"]["object"]["currency"] == "isk"
    normalized = _normalize(event)
    assert (normalized.amount_minor, normalized.currency, normalized.exponent) == (100, "ISK", 0)


def test_isk_amount_with_a_fraction_is_malformed() -> None:
    event = _event("checkout.session.completed", amount=10050, currency="ISK", amount_is_stripe_units=True)
    normalized = _normalize(event)
    assert normalized.kind is None
    assert normalized.ignore_reason == "malformed_payload"


def test_jpy_amount_is_unchanged() -> None:
    normalized = _normalize(_event("checkout.session.completed", amount=500, currency="JPY"))
    assert (normalized.amount_minor, normalized.exponent) == (500, 0)


def test_unknown_type_is_ignored() -> None:
    event = _event("payment_intent.succeeded")
    event["type"] = "customer.created"
    normalized = _normalize(event)
    assert normalized.kind is None
    assert normalized.ignore_reason == "unknown_type"
    assert normalized.event_id == event["id"]


@pytest.mark.parametrize("event_type", ["checkout.session.completed", "payment_intent.succeeded"])
def test_missing_session_reference_is_ignored(event_type: str) -> None:
    event = _event(event_type)
    event["data"]["object"]["metadata"] = {}
    event["data"]["object"].pop("client_reference_id", None)
    normalized = _normalize(event)
    assert normalized.kind is None
    assert normalized.ignore_reason == "no_session_reference"


def test_session_found_by_client_reference_id_alone() -> None:
    event = _event("checkout.session.completed")
    event["data"]["object"]["metadata"] = {}
    assert _normalize(event).session_id == SESSION


def test_a_foreign_reference_is_not_a_session() -> None:
    event = _event("checkout.session.completed")
    event["data"]["object"]["metadata"] = {"session_id": "order-1234"}
    event["data"]["object"]["client_reference_id"] = "cart_99"
    assert _normalize(event).ignore_reason == "no_session_reference"


def test_refund_with_neither_session_nor_payment_intent_is_found_by_its_charge() -> None:
    # Contract §4/§8: a refund names the payment by its PaymentIntent "or the charge of that PaymentIntent".
    event = _event("charge.refunded")
    event["data"]["object"]["metadata"] = {}
    event["data"]["object"]["payment_intent"] = None
    normalized = _normalize(event)
    assert normalized.kind == "refunded" and normalized.provider_reference is None
    assert normalized.money_back is not None
    assert normalized.money_back.charge_id == event["data"]["object"]["id"]


def _mutated(event_type: str, path: list[str], value: Any) -> dict[str, Any]:
    event = copy.deepcopy(_event(event_type))
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return event


@pytest.mark.parametrize(
    "event",
    [
        _mutated("payment_intent.succeeded", ["data", "object", "amount_received"], 99.99),
        _mutated("payment_intent.succeeded", ["data", "object", "amount_received"], -1),
        _mutated("payment_intent.succeeded", ["data", "object", "amount_received"], "9999"),
        _mutated("payment_intent.succeeded", ["data", "object", "amount_received"], None),
        _mutated("payment_intent.succeeded", ["data", "object", "currency"], "euro"),
        _mutated("payment_intent.succeeded", ["data", "object", "currency"], None),
        _mutated("payment_intent.succeeded", ["data", "object", "object"], "charge"),
        _mutated("checkout.session.completed", ["data", "object"], "cs_123"),
        _mutated("checkout.session.completed", ["data"], None),
        _mutated("checkout.session.completed", ["data", "object", "payment_intent"], 42),
    ],
)
def test_garbled_known_events_are_ignored_as_malformed(event: dict[str, Any]) -> None:
    normalized = _normalize(event)
    assert normalized.kind is None
    assert normalized.ignore_reason == "malformed_payload"


def test_livemode_and_created_are_optional() -> None:
    payload = _event("payment_intent.processing")
    del payload["livemode"]
    payload["created"] = "yesterday"
    envelope = VerifiedEnvelope(payload["id"], payload["type"], payload, encode_body(payload))
    normalized = normalize_stripe(envelope)
    assert normalized.kind == "pending"
    assert normalized.livemode is None
    assert normalized.occurred_at is None


def test_custom_iso_table_is_used() -> None:
    envelope_event = _event("payment_intent.succeeded", amount=100, currency="ISK")
    raw = encode_body(envelope_event)
    envelope = verify_stripe(raw, sign_stripe(raw, SECRET, NOW), [SECRET], now=NOW)
    # A table that (wrongly) gave ISK two decimals would keep Stripe's number as is.
    assert normalize_stripe(envelope, iso_exponent=lambda code: 2).amount_minor == 10000
