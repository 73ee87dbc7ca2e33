"""Stripe webhooks: verify a delivery with the official library, then say what it means for a session."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import stripe

from webhook_gateway.providers.errors import WebhookRejected
from webhook_gateway.providers.normalized import EventKind, IgnoreReason, NormalizedEvent, VerifiedEnvelope
from webhook_gateway.providers.payload import (
    MalformedPayload,
    as_dict,
    checked_event_id,
    currency_code,
    event_type_of,
    first_session_id,
    non_negative_int,
    optional_bool,
    optional_str,
    parse_json_object,
    required_dict,
    unix_time,
)
from webhook_gateway.providers.stripe_currencies import iso_exponent as iso_4217_exponent
from webhook_gateway.providers.stripe_currencies import stripe_to_iso_minor

PROVIDER: Final[str] = "stripe"
DEFAULT_TOLERANCE_SECONDS: Final[int] = 300

CHECKOUT_SESSION_COMPLETED: Final[str] = "checkout.session.completed"
CHECKOUT_ASYNC_SUCCEEDED: Final[str] = "checkout.session.async_payment_succeeded"
CHECKOUT_ASYNC_FAILED: Final[str] = "checkout.session.async_payment_failed"
CHECKOUT_EXPIRED: Final[str] = "checkout.session.expired"
PAYMENT_INTENT_SUCCEEDED: Final[str] = "payment_intent.succeeded"
PAYMENT_INTENT_PROCESSING: Final[str] = "payment_intent.processing"
PAYMENT_INTENT_FAILED: Final[str] = "payment_intent.payment_failed"
CHARGE_REFUNDED: Final[str] = "charge.refunded"
CHARGE_DISPUTE_CREATED: Final[str] = "charge.dispute.created"

# The event types of contract §4, in the order a person would read them.
STRIPE_EVENT_TYPES: Final[tuple[str, ...]] = (
    CHECKOUT_SESSION_COMPLETED,
    CHECKOUT_ASYNC_SUCCEEDED,
    CHECKOUT_ASYNC_FAILED,
    CHECKOUT_EXPIRED,
    PAYMENT_INTENT_SUCCEEDED,
    PAYMENT_INTENT_PROCESSING,
    PAYMENT_INTENT_FAILED,
    CHARGE_REFUNDED,
    CHARGE_DISPUTE_CREATED,
)

_OBJECT_OF_TYPE: Final[dict[str, str]] = {
    CHECKOUT_SESSION_COMPLETED: "checkout.session",
    CHECKOUT_ASYNC_SUCCEEDED: "checkout.session",
    CHECKOUT_ASYNC_FAILED: "checkout.session",
    CHECKOUT_EXPIRED: "checkout.session",
    PAYMENT_INTENT_SUCCEEDED: "payment_intent",
    PAYMENT_INTENT_PROCESSING: "payment_intent",
    PAYMENT_INTENT_FAILED: "payment_intent",
    CHARGE_REFUNDED: "charge",
    CHARGE_DISPUTE_CREATED: "dispute",
}
_FIXED_KIND: Final[dict[str, EventKind]] = {
    CHECKOUT_ASYNC_SUCCEEDED: "succeeded",
    CHECKOUT_ASYNC_FAILED: "failed",
    CHECKOUT_EXPIRED: "expired",
    PAYMENT_INTENT_SUCCEEDED: "succeeded",
    PAYMENT_INTENT_PROCESSING: "pending",
    PAYMENT_INTENT_FAILED: "attempt_failed",
    CHARGE_REFUNDED: "refunded",
    CHARGE_DISPUTE_CREATED: "disputed",
}
# Refunds and disputes may name only the PaymentIntent; the session service can find the payment by it.
_REFERENCE_IS_ENOUGH: Final[frozenset[str]] = frozenset({CHARGE_REFUNDED, CHARGE_DISPUTE_CREATED})


def _signed_timestamp(sig_header: str) -> int:
    # Mirrors stripe.WebhookSignature._get_timestamp_and_signatures, so that the timestamp checked here is
    # the one the library just verified the signature over (the first `t=`).
    for item in sig_header.split(","):
        parts = item.split("=", 2)
        if parts[0] == "t":
            return int(parts[1])
    raise ValueError("no timestamp in Stripe-Signature")


def verify_stripe(
    raw: bytes,
    sig_header: str | None,
    secrets: Sequence[str],
    now: int,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> VerifiedEnvelope:
    """Verify a Stripe delivery against any of `secrets` (rotation) and parse it.

    The signature is checked by stripe-python over the raw bytes. The timestamp is checked here against
    `now` in both directions: stripe-python only refuses old timestamps, and reads the wall clock to do so.
    Raises WebhookRejected; ValueError if no secret is configured (a deployment error, not a request's).
    """
    usable_secrets = [s for s in secrets if s and s.strip()]
    if not usable_secrets:
        raise ValueError("no Stripe webhook secret configured")
    if sig_header is None or not sig_header.strip():
        raise WebhookRejected("missing_signature", "the Stripe-Signature header is missing")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected("invalid_signature", "the body is not UTF-8: Stripe did not sign it") from None

    for secret in usable_secrets:
        try:
            stripe.WebhookSignature.verify_header(text, sig_header, secret, tolerance=None)
        except stripe.SignatureVerificationError:
            continue
        break
    else:
        raise WebhookRejected("invalid_signature", "no Stripe-Signature v1 value matches the body")

    timestamp = _signed_timestamp(sig_header)
    if timestamp < now - tolerance:
        raise WebhookRejected("timestamp_out_of_tolerance", f"the signature is more than {tolerance} s old")
    if timestamp > now + tolerance:
        raise WebhookRejected(
            "timestamp_out_of_tolerance", f"the signature is more than {tolerance} s in the future"
        )

    payload = parse_json_object(text)
    event_id = checked_event_id(payload.get("id"), "the event's `id`")
    return VerifiedEnvelope(
        event_id=event_id, event_type=event_type_of(payload), payload=payload, raw=raw, signed_at=timestamp
    )


def _object_id(value: object, what: str) -> str | None:
    # Webhook objects carry related objects as ids unless the endpoint expands them.
    if isinstance(value, dict):
        value = value.get("id")
    return optional_str(value, what)


def _extract(
    event_type: str, obj: dict[str, Any]
) -> tuple[EventKind | None, IgnoreReason | None, str | None, str | None, int | None, str | None]:
    """(kind, ignore_reason, session_id, provider_reference, amount in Stripe units, currency)."""
    metadata = as_dict(obj.get("metadata"))
    currency = currency_code(obj.get("currency"))
    kind: EventKind | None = _FIXED_KIND.get(event_type)
    ignore_reason: IgnoreReason | None = None
    amount_field: str | None = None

    if _OBJECT_OF_TYPE[event_type] == "checkout.session":
        session_id = first_session_id(metadata.get("session_id"), obj.get("client_reference_id"))
        reference = _object_id(obj.get("payment_intent"), "payment_intent")
        if event_type == CHECKOUT_SESSION_COMPLETED:
            payment_status = obj.get("payment_status")
            if payment_status == "paid":
                kind = "succeeded"
            elif payment_status == "unpaid":
                kind = "pending"
            else:
                # `no_payment_required` means nothing was charged; paygate never creates such a session,
                # so it must not mark one paid. Stored as ignored, visible in the event list.
                ignore_reason = "unsupported_payment_status"
        amount_field = "amount_total"
    elif _OBJECT_OF_TYPE[event_type] == "payment_intent":
        session_id = first_session_id(metadata.get("session_id"))
        reference = _object_id(obj.get("id"), "id")
        amount_field = "amount_received"
    elif event_type == CHARGE_REFUNDED:
        session_id = first_session_id(metadata.get("session_id"))
        reference = _object_id(obj.get("payment_intent"), "payment_intent")
        amount_field = "amount_refunded"
    else:
        session_id = first_session_id(metadata.get("session_id"))
        reference = _object_id(obj.get("payment_intent"), "payment_intent")
        amount_field = "amount"

    amount: int | None = None
    if kind in ("succeeded", "refunded", "disputed"):
        amount = non_negative_int(obj.get(amount_field), amount_field)
        if amount is None or currency is None:
            raise MalformedPayload(f"a {kind} event needs {amount_field} and currency")
    return kind, ignore_reason, session_id, reference, amount, currency


def normalize_stripe(
    envelope: VerifiedEnvelope, *, iso_exponent: Callable[[str], int] = iso_4217_exponent
) -> NormalizedEvent:
    """Say what a verified Stripe event means; never raises for a verified envelope.

    `iso_exponent` gives paygate's minor-unit digits per currency; amounts are converted to them from
    Stripe's units exactly (ISK: 10000 at Stripe is 100 for us).
    """
    payload = envelope.payload
    event_type = envelope.event_type
    common: dict[str, Any] = {
        "provider": PROVIDER,
        "event_id": envelope.event_id,
        "event_type": event_type,
        "livemode": optional_bool(payload.get("livemode")),
        "occurred_at": unix_time(payload.get("created")),
    }
    if event_type not in _OBJECT_OF_TYPE:
        return _ignored(common, "unknown_type")
    try:
        obj = required_dict(as_dict(payload.get("data")).get("object"), "data.object")
        if obj.get("object") != _OBJECT_OF_TYPE[event_type]:
            raise MalformedPayload(f"{event_type} must carry a {_OBJECT_OF_TYPE[event_type]} object")
        kind, ignore_reason, session_id, reference, stripe_amount, currency = _extract(event_type, obj)
        exponent = iso_exponent(currency) if currency is not None else None
        amount = None
        if stripe_amount is not None and currency is not None and exponent is not None:
            amount = stripe_to_iso_minor(stripe_amount, currency, exponent)
    except (MalformedPayload, ValueError, LookupError):
        return _ignored(common, "malformed_payload")

    common.update(
        session_id=session_id,
        provider_reference=reference,
        amount_minor=amount,
        currency=currency,
        exponent=exponent,
    )
    findable_by_reference = reference is not None and event_type in _REFERENCE_IS_ENOUGH
    if ignore_reason is None and session_id is None and not findable_by_reference:
        ignore_reason = "no_session_reference"
    if ignore_reason is not None:
        return NormalizedEvent(kind=None, ignore_reason=ignore_reason, **common)
    return NormalizedEvent(kind=kind, ignore_reason=None, **common)


def _ignored(common: dict[str, Any], reason: IgnoreReason) -> NormalizedEvent:
    fields = {
        "session_id": None,
        "provider_reference": None,
        "amount_minor": None,
        "currency": None,
        "exponent": None,
        **common,
    }
    return NormalizedEvent(kind=None, ignore_reason=reason, **fields)
