"""Realistic provider events for tests, `paygate trigger` and benchmarks.

Stripe objects start from the shapes Stripe publishes with its OpenAPI description (copied into
`stripe_shapes/`), with ids, amounts, currency, status and metadata set as Stripe would set them.
"""

from __future__ import annotations

import copy
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

import stripe

from paygate_runtime.money.currencies import reported_exponent as iso_exponent
from paygate_runtime.money.stripe_minor_units import iso_minor_to_stripe
from webhook_gateway.providers.standard_webhooks import WEB3_HINT_TYPE
from webhook_gateway.providers.stripe_webhooks import (
    CHARGE_DISPUTE_CLOSED,
    CHARGE_DISPUTE_CREATED,
    CHARGE_DISPUTE_FUNDS_REINSTATED,
    CHARGE_DISPUTE_FUNDS_WITHDRAWN,
    CHARGE_DISPUTE_UPDATED,
    CHARGE_REFUND_UPDATED,
    CHARGE_REFUNDED,
    CHECKOUT_ASYNC_FAILED,
    CHECKOUT_ASYNC_SUCCEEDED,
    CHECKOUT_EXPIRED,
    CHECKOUT_SESSION_COMPLETED,
    PAYMENT_INTENT_FAILED,
    PAYMENT_INTENT_PROCESSING,
    PAYMENT_INTENT_SUCCEEDED,
    REFUND_CREATED,
    REFUND_UPDATED,
    STRIPE_EVENT_TYPES,
)

# The refund and dispute events the gateway's Stripe normaliser applies, built by `build_stripe_money_back_event`.
STRIPE_REFUND_EVENT_TYPES: tuple[str, ...] = (
    REFUND_CREATED,
    REFUND_UPDATED,
    CHARGE_REFUNDED,
    CHARGE_REFUND_UPDATED,
)
STRIPE_DISPUTE_EVENT_TYPES: tuple[str, ...] = (
    CHARGE_DISPUTE_CREATED,
    CHARGE_DISPUTE_CLOSED,
    CHARGE_DISPUTE_FUNDS_WITHDRAWN,
    CHARGE_DISPUTE_FUNDS_REINSTATED,
    CHARGE_DISPUTE_UPDATED,
)
STRIPE_PAYMENT_EVENT_TYPES: tuple[str, ...] = tuple(
    t for t in STRIPE_EVENT_TYPES if t not in STRIPE_REFUND_EVENT_TYPES + STRIPE_DISPUTE_EVENT_TYPES
)
# Stripe's own status values of a refund and of a dispute.
STRIPE_REFUND_STATUSES: tuple[str, ...] = ("succeeded", "pending", "requires_action", "failed", "canceled")
STRIPE_DISPUTE_STATUSES: tuple[str, ...] = (
    "warning_needs_response",
    "warning_under_review",
    "warning_closed",
    "needs_response",
    "under_review",
    "won",
    "lost",
    "prevented",
)
# The status each dispute event carries unless one is given.
DEFAULT_DISPUTE_STATUS: dict[str, str] = {
    CHARGE_DISPUTE_CREATED: "needs_response",
    CHARGE_DISPUTE_CLOSED: "won",
    CHARGE_DISPUTE_FUNDS_WITHDRAWN: "needs_response",
    CHARGE_DISPUTE_FUNDS_REINSTATED: "won",
    CHARGE_DISPUTE_UPDATED: "under_review",
}

ONECOM_EVENT_TYPES: tuple[str, ...] = ("payment.succeeded", "payment.pending", "payment.failed")

_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@cache
def _shape(name: str) -> dict[str, Any]:
    text = resources.files("paygate_dev.devtools").joinpath("stripe_shapes", f"{name}.json").read_text()
    return json.loads(text)


def stripe_shape(
    name: Literal["checkout.session", "payment_intent", "charge", "refund", "dispute", "event"],
) -> dict[str, Any]:
    """A fresh deep copy of one published Stripe object shape."""
    return copy.deepcopy(_shape(name))


def stripe_id(prefix: str, livemode: bool = False) -> str:
    """An id in Stripe's style (`pi_3Q...`); Checkout Session ids also carry the mode (`cs_test_...`)."""
    body = "".join(secrets.choice(_ALPHABET) for _ in range(24))
    if prefix == "cs":
        return f"cs_{'live' if livemode else 'test'}_{body}"
    return f"{prefix}_{body}"


def _checkout_session(
    event_type: str,
    session_id: str,
    amount: int,
    currency: str,
    payment_intent_id: str | None,
    livemode: bool,
    created: int,
    payment_status: str | None,
) -> dict[str, Any]:
    obj = stripe_shape("checkout.session")
    default_status = {
        CHECKOUT_SESSION_COMPLETED: ("complete", "paid"),
        CHECKOUT_ASYNC_SUCCEEDED: ("complete", "paid"),
        CHECKOUT_ASYNC_FAILED: ("complete", "unpaid"),
        CHECKOUT_EXPIRED: ("expired", "unpaid"),
    }[event_type]
    obj.update(
        id=stripe_id("cs", livemode),
        amount_subtotal=amount,
        amount_total=amount,
        currency=currency.lower(),
        client_reference_id=session_id,
        metadata={"session_id": session_id},
        payment_intent=payment_intent_id,
        livemode=livemode,
        created=created - 60,
        expires_at=created - 60 + 24 * 3600,
        status=default_status[0],
        payment_status=payment_status or default_status[1],
        # The published shape carries placeholder conversion and shipping numbers; a plain session has none.
        currency_conversion=None,
        shipping_cost=None,
        shipping_address_collection=None,
        total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        url=None,
    )
    return obj


def _payment_intent(
    event_type: str,
    session_id: str,
    amount: int,
    currency: str,
    payment_intent_id: str,
    livemode: bool,
    created: int,
) -> dict[str, Any]:
    obj = stripe_shape("payment_intent")
    succeeded = event_type == PAYMENT_INTENT_SUCCEEDED
    obj.update(
        id=payment_intent_id,
        amount=amount,
        amount_received=amount if succeeded else 0,
        currency=currency.lower(),
        metadata={"session_id": session_id},
        livemode=livemode,
        created=created - 30,
        canceled_at=None,
        client_secret=f"{payment_intent_id}_secret_{stripe_id('s')[2:]}",
        latest_charge=stripe_id("ch") if event_type != PAYMENT_INTENT_PROCESSING else None,
        next_action=None,
        transfer_data=None,
        processing={"type": "card"} if event_type == PAYMENT_INTENT_PROCESSING else None,
        status={
            PAYMENT_INTENT_SUCCEEDED: "succeeded",
            PAYMENT_INTENT_PROCESSING: "processing",
            PAYMENT_INTENT_FAILED: "requires_payment_method",
        }[event_type],
        last_payment_error=(
            {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "generic_decline",
                "message": "Your card was declined.",
            }
            if event_type == PAYMENT_INTENT_FAILED
            else None
        ),
    )
    return obj


def _charge(
    session_id: str, amount: int, currency: str, payment_intent_id: str, livemode: bool, created: int
) -> dict[str, Any]:
    # Stripe copies the PaymentIntent's metadata onto the charges it creates.
    return {
        "id": stripe_id("ch"),
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": amount,
        "balance_transaction": stripe_id("txn"),
        "captured": True,
        "created": created - 3600,
        "currency": currency.lower(),
        "customer": None,
        "description": None,
        "disputed": False,
        "failure_code": None,
        "failure_message": None,
        "livemode": livemode,
        "metadata": {"session_id": session_id},
        "paid": True,
        "payment_intent": payment_intent_id,
        "payment_method": stripe_id("pm"),
        "receipt_url": None,
        "refunded": True,
        "status": "succeeded",
    }


def _dispute(
    amount: int, currency: str, payment_intent_id: str, livemode: bool, created: int
) -> dict[str, Any]:
    # A dispute carries its own (empty) metadata; only `payment_intent` leads back to the payment.
    return {
        "id": stripe_id("du"),
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": stripe_id("ch"),
        "created": created,
        "currency": currency.lower(),
        "evidence_details": {"due_by": created + 7 * 86400, "has_evidence": False, "past_due": False},
        "is_charge_refundable": False,
        "livemode": livemode,
        "metadata": {},
        "payment_intent": payment_intent_id,
        "reason": "fraudulent",
        "status": "needs_response",
    }


def build_stripe_event(
    event_type: str,
    session_id: str,
    amount_minor: int,
    currency: str,
    payment_intent_id: str | None = None,
    livemode: bool = False,
    event_id: str | None = None,
    created: int | None = None,
    *,
    amount_is_stripe_units: bool = False,
    payment_status: str | None = None,
) -> dict[str, Any]:
    """A Stripe event (as Stripe POSTs it) for one of the contract's event types.

    `amount_minor` is in paygate's ISO minor units and is converted to Stripe's units (ISK 100 -> 10000)
    unless `amount_is_stripe_units`. `payment_status` overrides a Checkout Session's (e.g. "unpaid").
    Raises ValueError for another event type or an amount Stripe could not charge.
    """
    if event_type not in STRIPE_EVENT_TYPES:
        raise ValueError(f"unsupported Stripe event type {event_type!r}; one of {STRIPE_EVENT_TYPES}")
    created = int(time.time()) if created is None else created
    payment_intent_id = payment_intent_id or stripe_id("pi")
    amount = (
        amount_minor
        if amount_is_stripe_units
        else iso_minor_to_stripe(amount_minor, currency, iso_exponent(currency))
    )
    if event_type.startswith("checkout.session."):
        obj = _checkout_session(
            event_type, session_id, amount, currency, payment_intent_id, livemode, created, payment_status
        )
    elif event_type.startswith("payment_intent."):
        obj = _payment_intent(event_type, session_id, amount, currency, payment_intent_id, livemode, created)
    elif event_type == CHARGE_REFUNDED:
        obj = _charge(session_id, amount, currency, payment_intent_id, livemode, created)
    else:
        assert event_type == CHARGE_DISPUTE_CREATED
        obj = _dispute(amount, currency, payment_intent_id, livemode, created)

    return _envelope(event_type, obj, livemode, event_id, created)


def _envelope(
    event_type: str, obj: dict[str, Any], livemode: bool, event_id: str | None, created: int
) -> dict[str, Any]:
    event = stripe_shape("event")
    event.update(
        id=event_id or stripe_id("evt"),
        api_version=stripe.api_version,
        created=created,
        data={"object": obj},
        livemode=livemode,
        pending_webhooks=1,
        request={"id": None, "idempotency_key": None},
        type=event_type,
    )
    return event


def charge_id_for(payment_intent_id: str) -> str:
    """The charge of a PaymentIntent: Stripe gives a PaymentIntent's first charge the same suffix
    (`pi_3Q...` -> `ch_3Q...`), so every event of one payment names one charge."""
    return "ch_" + payment_intent_id.split("_", 1)[-1]


def dispute_id_for(payment_intent_id: str) -> str:
    """The dispute of a PaymentIntent's charge (a charge is disputed at most once), so that `created` and
    `closed` of one payment name one dispute."""
    return "dp_" + payment_intent_id.split("_", 1)[-1]


@dataclass(frozen=True)
class StripeRefund:
    """One refund of a charge, in Stripe's units."""

    refund_id: str
    amount: int
    status: str = "succeeded"


def _refund(refund: StripeRefund, currency: str, payment_intent_id: str, created: int) -> dict[str, Any]:
    if refund.status not in STRIPE_REFUND_STATUSES:
        raise ValueError(f"unknown Stripe refund status {refund.status!r}; one of {STRIPE_REFUND_STATUSES}")
    obj = stripe_shape("refund")
    obj.update(
        id=refund.refund_id,
        amount=refund.amount,
        balance_transaction=stripe_id("txn") if refund.status in ("succeeded", "pending") else None,
        charge=charge_id_for(payment_intent_id),
        created=created,
        currency=currency.lower(),
        # A refund made in the Dashboard or through the API without metadata: only the payment names the session.
        metadata={},
        payment_intent=payment_intent_id,
        status=refund.status,
    )
    if refund.status == "failed":
        obj.update(failure_balance_transaction=stripe_id("txn"), failure_reason="lost_or_stolen_card")
    return obj


def _refunded_charge(
    session_id: str | None,
    charge_amount: int,
    currency: str,
    payment_intent_id: str,
    refunds: Sequence[dict[str, Any]],
    livemode: bool,
    created: int,
) -> dict[str, Any]:
    charge_id = charge_id_for(payment_intent_id)
    refunded = sum(r["amount"] for r in refunds if r["status"] in ("succeeded", "pending", "requires_action"))
    obj = stripe_shape("charge")
    obj.update(
        id=charge_id,
        amount=charge_amount,
        amount_captured=charge_amount,
        amount_refunded=refunded,
        balance_transaction=stripe_id("txn"),
        captured=True,
        created=created - 3600,
        currency=currency.lower(),
        description=None,
        livemode=livemode,
        # Stripe copies the PaymentIntent's metadata (paygate sets `session_id` there) onto its charges.
        metadata={"session_id": session_id} if session_id else {},
        outcome={
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        paid=True,
        payment_intent=payment_intent_id,
        payment_method=stripe_id("pm"),
        receipt_url=None,
        refunded=refunded >= charge_amount,
        refunds={
            "object": "list",
            "data": list(refunds),
            "has_more": False,
            "url": f"/v1/charges/{charge_id}/refunds",
        },
        source=None,
        status="succeeded",
        transfer_data=None,
    )
    return obj


def _shaped_dispute(
    dispute_id: str,
    amount: int,
    currency: str,
    payment_intent_id: str,
    status: str,
    livemode: bool,
    created: int,
) -> dict[str, Any]:
    if status not in STRIPE_DISPUTE_STATUSES:
        raise ValueError(f"unknown Stripe dispute status {status!r}; one of {STRIPE_DISPUTE_STATUSES}")
    inquiry = status.startswith("warning_")
    obj = stripe_shape("dispute")
    obj.update(
        id=dispute_id,
        amount=amount,
        charge=charge_id_for(payment_intent_id),
        created=created,
        currency=currency.lower(),
        evidence_details={
            "due_by": created + 7 * 86400,
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
            "enhanced_eligibility": {},
        },
        is_charge_refundable=inquiry,
        livemode=livemode,
        # A dispute carries its own (empty) metadata; only the payment leads back to the session.
        metadata={},
        payment_intent=payment_intent_id,
        reason="fraudulent",
        status=status,
    )
    obj["payment_method_details"]["card"]["case_type"] = "inquiry" if inquiry else "chargeback"
    return obj


def build_stripe_money_back_event(
    event_type: str,
    payment_intent_id: str,
    amount: int,
    currency: str,
    *,
    session_id: str | None = None,
    charge_amount: int | None = None,
    refund_id: str | None = None,
    status: str | None = None,
    earlier_refunds: Sequence[StripeRefund] = (),
    dispute_id: str | None = None,
    livemode: bool = False,
    event_id: str | None = None,
    created: int | None = None,
) -> dict[str, Any]:
    """A Stripe refund or dispute event of one payment, from Stripe's published refund, charge and dispute shapes.

    Amounts are in Stripe's units. `amount` is the refund's (or the dispute's); `charge_amount` (default:
    `amount`) is what the charge took. A `charge.refunded` lists `earlier_refunds` of the charge with this one
    and totals them in `amount_refunded`, as Stripe does. `status` is the refund's (default `succeeded`) or the
    dispute's (default per event: `needs_response`, `won` when closed). The charge and the dispute get ids
    derived from the PaymentIntent (`charge_id_for`, `dispute_id_for`), so several events of one payment
    agree. Raises ValueError for another event type or an unknown status.
    """
    created = int(time.time()) if created is None else created
    if event_type in STRIPE_DISPUTE_EVENT_TYPES:
        obj = _shaped_dispute(
            dispute_id or dispute_id_for(payment_intent_id),
            amount,
            currency,
            payment_intent_id,
            status or DEFAULT_DISPUTE_STATUS[event_type],
            livemode,
            created,
        )
        return _envelope(event_type, obj, livemode, event_id, created)
    if event_type not in STRIPE_REFUND_EVENT_TYPES:
        raise ValueError(
            f"unsupported Stripe refund or dispute event type {event_type!r}; "
            f"one of {STRIPE_REFUND_EVENT_TYPES + STRIPE_DISPUTE_EVENT_TYPES}"
        )
    this = StripeRefund(refund_id or stripe_id("re"), amount, status or "succeeded")
    refund = _refund(this, currency, payment_intent_id, created)
    if event_type != CHARGE_REFUNDED:
        return _envelope(event_type, refund, livemode, event_id, created)
    listed = [
        _refund(earlier, currency, payment_intent_id, created - 60)
        for earlier in earlier_refunds
        if earlier.refund_id != this.refund_id
    ]
    charge = _refunded_charge(
        session_id,
        amount if charge_amount is None else charge_amount,
        currency,
        payment_intent_id,
        [refund, *listed],  # newest first, as Stripe lists them
        livemode,
        created,
    )
    return _envelope(event_type, charge, livemode, event_id, created)


def build_onecom_event(
    event_type: str,
    session_id: str,
    amount_minor: int | str,
    currency: str,
    transaction_id: str | None = None,
) -> dict[str, Any]:
    """A One.com webhook body (contract §4); `amount_minor` in ISO minor units, as an int or digit string."""
    if event_type not in ONECOM_EVENT_TYPES:
        raise ValueError(f"unsupported One.com event type {event_type!r}; one of {ONECOM_EVENT_TYPES}")
    return {
        "type": event_type,
        "data": {
            "session_id": session_id,
            "transaction_id": transaction_id or f"txn_{secrets.token_hex(10)}",
            "amount_minor": amount_minor,
            "currency": currency.upper(),
        },
    }


def build_web3_hint(chain_id: int, tx_hash: str, session_id: str | None = None) -> dict[str, Any]:
    """A web3 notifier body: `transaction.detected` naming a transaction the gateway must check itself."""
    data = {"chain_id": chain_id, "tx_hash": tx_hash, "session_id": session_id}
    return {"type": WEB3_HINT_TYPE, "data": data}
