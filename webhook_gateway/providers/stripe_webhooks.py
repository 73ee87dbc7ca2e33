"""Stripe webhooks: verify a delivery with the official library, then say what it means for a session."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import stripe

from paygate_runtime.money.stripe_minor_units import stripe_currency_exponent, stripe_to_iso_minor
from paygate_runtime.refund_failures import failure_reason_of
from webhook_gateway.providers.errors import WebhookRejected
from webhook_gateway.providers.normalized import (
    EventKind,
    IgnoreReason,
    MoneyBack,
    NormalizedEvent,
    RefundInfo,
    VerifiedEnvelope,
)
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

PROVIDER: Final[str] = "stripe"
# Looked up once: stripe-python resolves its top-level names lazily, through an import, on every access.
_SIGNATURE: Final = stripe.WebhookSignature
_SIGNATURE_ERROR: Final = stripe.SignatureVerificationError
DEFAULT_TOLERANCE_SECONDS: Final[int] = 300

CHECKOUT_SESSION_COMPLETED: Final[str] = "checkout.session.completed"
CHECKOUT_ASYNC_SUCCEEDED: Final[str] = "checkout.session.async_payment_succeeded"
CHECKOUT_ASYNC_FAILED: Final[str] = "checkout.session.async_payment_failed"
CHECKOUT_EXPIRED: Final[str] = "checkout.session.expired"
PAYMENT_INTENT_SUCCEEDED: Final[str] = "payment_intent.succeeded"
PAYMENT_INTENT_PROCESSING: Final[str] = "payment_intent.processing"
PAYMENT_INTENT_FAILED: Final[str] = "payment_intent.payment_failed"
CHARGE_REFUNDED: Final[str] = "charge.refunded"
REFUND_CREATED: Final[str] = "refund.created"
REFUND_UPDATED: Final[str] = "refund.updated"
CHARGE_REFUND_UPDATED: Final[str] = "charge.refund.updated"
CHARGE_DISPUTE_CREATED: Final[str] = "charge.dispute.created"
CHARGE_DISPUTE_CLOSED: Final[str] = "charge.dispute.closed"
CHARGE_DISPUTE_FUNDS_WITHDRAWN: Final[str] = "charge.dispute.funds_withdrawn"
CHARGE_DISPUTE_FUNDS_REINSTATED: Final[str] = "charge.dispute.funds_reinstated"
# A dispute's status changed: an inquiry escalating to a chargeback is told here first.
CHARGE_DISPUTE_UPDATED: Final[str] = "charge.dispute.updated"

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
# The further refund and dispute event types of contract §8 (applied too; the devtools build only the above).
STRIPE_MONEY_BACK_TYPES: Final[tuple[str, ...]] = (
    REFUND_CREATED,
    REFUND_UPDATED,
    CHARGE_REFUND_UPDATED,
    CHARGE_DISPUTE_CLOSED,
    CHARGE_DISPUTE_FUNDS_WITHDRAWN,
    CHARGE_DISPUTE_FUNDS_REINSTATED,
    CHARGE_DISPUTE_UPDATED,
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
    REFUND_CREATED: "refund",
    REFUND_UPDATED: "refund",
    CHARGE_REFUND_UPDATED: "refund",
    CHARGE_DISPUTE_CREATED: "dispute",
    CHARGE_DISPUTE_CLOSED: "dispute",
    CHARGE_DISPUTE_FUNDS_WITHDRAWN: "dispute",
    CHARGE_DISPUTE_FUNDS_REINSTATED: "dispute",
    CHARGE_DISPUTE_UPDATED: "dispute",
}
# What each dispute event does to a session's dispute (contract §8).
_DISPUTE_ACTION: Final[dict[str, str]] = {
    CHARGE_DISPUTE_CREATED: "created",
    CHARGE_DISPUTE_CLOSED: "closed",
    CHARGE_DISPUTE_FUNDS_WITHDRAWN: "funds_withdrawn",
    CHARGE_DISPUTE_FUNDS_REINSTATED: "funds_reinstated",
    CHARGE_DISPUTE_UPDATED: "updated",
}
# Stripe's refund statuses as paygate's (requires_action: the customer must act; still on its way).
_REFUND_STATUS: Final[dict[str, str]] = {
    "pending": "pending",
    "requires_action": "pending",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
}
_FIXED_KIND: Final[dict[str, EventKind]] = {
    CHECKOUT_ASYNC_SUCCEEDED: "succeeded",
    CHECKOUT_ASYNC_FAILED: "failed",
    CHECKOUT_EXPIRED: "expired",
    PAYMENT_INTENT_SUCCEEDED: "succeeded",
    PAYMENT_INTENT_PROCESSING: "pending",
    PAYMENT_INTENT_FAILED: "attempt_failed",
    CHARGE_REFUNDED: "refunded",
    REFUND_CREATED: "refunded",
    REFUND_UPDATED: "refunded",
    CHARGE_REFUND_UPDATED: "refunded",
    **dict.fromkeys(_DISPUTE_ACTION, "disputed"),
}
# Refunds and disputes name only the payment (the PaymentIntent, or its charge); Stripe puts no session
# metadata on them. The session service finds the session that payment paid (contract §4).
_REFERENCE_IS_ENOUGH: Final[frozenset[str]] = frozenset(
    {CHARGE_REFUNDED, REFUND_CREATED, REFUND_UPDATED, CHARGE_REFUND_UPDATED, *_DISPUTE_ACTION}
)


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
    if not sig_header.isascii():
        # stripe-python's hmac.compare_digest raises TypeError on non-ASCII text; Stripe sends only ASCII.
        raise WebhookRejected("invalid_signature", "the Stripe-Signature header is not ASCII")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected("invalid_signature", "the body is not UTF-8: Stripe did not sign it") from None

    for secret in usable_secrets:
        try:
            _SIGNATURE.verify_header(text, sig_header, secret, tolerance=None)
        except _SIGNATURE_ERROR:
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
    envelope: VerifiedEnvelope, *, iso_exponent: Callable[[str], int] = stripe_currency_exponent
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
        money_back = None
        if kind in ("refunded", "disputed") and currency is not None and exponent is not None:
            money_back = _money_back(event_type, obj, currency, exponent)
    except (MalformedPayload, ValueError, LookupError):
        return _ignored(common, "malformed_payload")

    common.update(
        session_id=session_id,
        provider_reference=reference,
        amount_minor=amount,
        currency=currency,
        exponent=exponent,
    )
    charge_id = money_back.charge_id if money_back is not None else None
    findable_by_reference = (
        reference is not None or charge_id is not None
    ) and event_type in _REFERENCE_IS_ENOUGH
    if ignore_reason is None and session_id is None and not findable_by_reference:
        ignore_reason = "no_session_reference"
    if ignore_reason is not None:
        return NormalizedEvent(kind=None, ignore_reason=ignore_reason, **common)
    return NormalizedEvent(kind=kind, ignore_reason=None, money_back=money_back, **common)


def _refund_info(refund: object, currency: str, exponent: int) -> RefundInfo:
    obj = required_dict(refund, "refund")
    refund_id = _object_id(obj.get("id"), "refund id")
    amount = non_negative_int(obj.get("amount"), "refund amount")
    status = _REFUND_STATUS.get(str(obj.get("status")))
    if refund_id is None or amount is None or status is None:
        raise MalformedPayload("a refund needs its id, amount and a known status")
    if currency_code(obj.get("currency")) not in (None, currency):
        raise MalformedPayload("a refund in another currency than its charge")
    paygate_id = optional_str(
        as_dict(obj.get("metadata")).get("paygate_refund_id"), "metadata.paygate_refund_id"
    )
    # Only a failed refund has a reason. An odd one is `unknown` rather than a malformed event: the failure
    # itself (money not returned) must reach the session whatever Stripe says about why.
    raw_reason = obj.get("failure_reason")
    reason = failure_reason_of(raw_reason) if status == "failed" and raw_reason is not None else None
    return RefundInfo(
        refund_id, stripe_to_iso_minor(amount, currency, exponent), status, paygate_id, failure_reason=reason
    )


def _money_back(event_type: str, obj: dict[str, Any], currency: str, exponent: int) -> MoneyBack:
    """The refunds, total or dispute of a refund or dispute event, in ISO minor units of `currency`."""
    if event_type == CHARGE_REFUNDED:
        listed = as_dict(obj.get("refunds")).get("data") or []
        if not isinstance(listed, list):
            raise MalformedPayload("charge.refunds.data must be a list")
        total = non_negative_int(obj.get("amount_refunded"), "amount_refunded")
        return MoneyBack(
            refunds=tuple(_refund_info(r, currency, exponent) for r in listed),
            refunded_total_minor=None if total is None else stripe_to_iso_minor(total, currency, exponent),
            charge_id=_object_id(obj.get("id"), "id"),
        )
    charge_id = _object_id(obj.get("charge"), "charge")
    if _OBJECT_OF_TYPE[event_type] == "refund":
        return MoneyBack(refunds=(_refund_info(obj, currency, exponent),), charge_id=charge_id)
    dispute_id = _object_id(obj.get("id"), "id")
    if dispute_id is None:
        raise MalformedPayload("a dispute needs its id")
    return MoneyBack(
        dispute_id=dispute_id,
        dispute_action=_DISPUTE_ACTION[event_type],
        dispute_status=optional_str(obj.get("status"), "status"),
        charge_id=charge_id,
    )


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
