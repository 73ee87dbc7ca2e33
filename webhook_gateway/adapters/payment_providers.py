"""One interface over the card providers' APIs: create, read, cancel and refund a payment (contract §11).

Stripe implements it with a Checkout Session (wrapping adapters.stripe_checkout), One.com with its payments API
(adapters.onecom_api). The checkout flow creates and cancels through it; the reconciliation worker reads through
it and turns what the API says into the very webhook body the provider would have sent
(`reconcile_event`), so that the event takes the webhook's own path: the same normaliser, the same
ApplyPaymentEvent, the same idempotency and quarantine rules.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from paygate.session.v1 import session_pb2
from paygate_runtime.money.stripe_minor_units import iso_minor_to_stripe
from paygate_runtime.proto_convert import mode_label
from webhook_gateway.adapters import onecom_api
from webhook_gateway.adapters.onecom_api import OneComClient, OneComPayment
from webhook_gateway.adapters.provider_errors import ProviderError
from webhook_gateway.adapters.stripe_checkout import (
    StripeCheckout,
    StripeCheckoutError,
    checkout_page_url,
    key_mode_name,
)

RECONCILE_PREFIX: Final = "reconcile_"
# Where Stripe hosts its Checkout pages (a Checkout Session's `url`).
STRIPE_CHECKOUT_ORIGIN: Final = "https://checkout.stripe.com"


def mode_of(session: session_pb2.Session) -> str:
    return mode_label(session.mode)


@dataclass(frozen=True, slots=True)
class CreatedPayment:
    payment_id: str
    checkout_url: str | None


@dataclass(frozen=True, slots=True)
class ProviderPayment:
    """A payment as the provider's API reports it now. `final`: it will not change any more (paid, failed,
    cancelled or closed), so nothing is left to reconcile. `body` is the provider's object. `checkout_url`:
    the provider's hosted page for it, while the provider shows one."""

    payment_id: str
    status: str
    final: bool
    body: Any
    checkout_url: str | None = None


@dataclass(frozen=True, slots=True)
class ReconcileEvent:
    """A webhook body built from an API read: stored in the inbox with source `reconcile` and applied as the
    provider's webhook would be. The event id is a function of the payment and its state, so every replica
    (and every later check) that finds the same state makes the same event, stored once."""

    event_id: str
    event_type: str
    raw_body: bytes
    provider_reference: str | None


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class PaymentProvider(Protocol):
    name: str

    def available(self, mode: str) -> bool:
        """Whether this gateway can call the provider's API for sessions of `mode`."""
        ...

    def page_origins(self) -> tuple[str, ...]:
        """The origins of the provider's hosted payment pages (the checkout page's form may redirect there)."""
        ...

    async def create_payment(self, session: session_pb2.Session) -> CreatedPayment: ...

    async def read_payment(self, mode: str, payment_id: str) -> ProviderPayment: ...

    async def cancel_payment(self, mode: str, payment_id: str) -> ProviderPayment:
        """Stop the payment taking money. Raises ProviderError `provider_session_complete` if it was paid."""
        ...

    async def refund(
        self,
        mode: str,
        payment_reference: str,
        amount_minor: int,
        currency: str,
        exponent: int,
        idempotency_key: str,
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        """Ask the provider to refund `amount_minor` (ISO minor units); returns the provider's refund id.
        `metadata` (paygate's refund and session ids) is attached where the provider echoes it in its events."""
        ...

    def reconcile_event(
        self, payment: ProviderPayment, session: session_pb2.Session
    ) -> ReconcileEvent | None: ...

    async def close(self) -> None: ...


class StripeProvider:
    """Stripe Checkout behind the provider interface: the payment id is the Checkout Session id.

    One StripeCheckout per mode that has a key (the key's prefix says its mode). Every call goes through the
    checkout of the session's or event's mode, so a test payment never reaches Stripe with a live key, nor a
    live one with a test key; a mode without a key is not available."""

    name = "stripe"

    def __init__(self, *checkouts: StripeCheckout) -> None:
        self.checkouts: dict[str, StripeCheckout] = {}
        for checkout in checkouts:
            mode = key_mode_name(checkout.settings.api_key)
            if mode is None or mode in self.checkouts:
                raise ValueError("one Stripe checkout per mode, each with a test or a live key")
            self.checkouts[mode] = checkout

    def available(self, mode: str) -> bool:
        return mode in self.checkouts

    def page_origins(self) -> tuple[str, ...]:
        return (STRIPE_CHECKOUT_ORIGIN,)

    def checkout_for(self, mode: str) -> StripeCheckout:
        """The checkout of `mode`; `provider_mode_mismatch` when this gateway has no Stripe key of that mode."""
        checkout = self.checkouts.get(mode)
        if checkout is None:
            raise StripeCheckoutError(
                "provider_mode_mismatch", f"this gateway has no Stripe key for {mode} mode", transient=False
            )
        return checkout

    async def create_payment(self, session: session_pb2.Session) -> CreatedPayment:
        # StripeCheckout.create checks the session's mode against its key's once more before calling Stripe.
        created = await self.checkout_for(mode_of(session)).create(session)
        return CreatedPayment(created.id, created.url)

    async def read_payment(self, mode: str, payment_id: str) -> ProviderPayment:
        body = await self.checkout_for(mode).retrieve(payment_id)
        status = f"{body.get('status')}/{body.get('payment_status')}"
        final = body.get("status") == "expired" or (
            body.get("status") == "complete" and body.get("payment_status") in ("paid", "no_payment_required")
        )
        url = body.get("url") if body.get("status") == "open" else None
        return ProviderPayment(payment_id, status, final, body, url if isinstance(url, str) else None)

    async def cancel_payment(self, mode: str, payment_id: str) -> ProviderPayment:
        expired = await self.checkout_for(mode).expire(payment_id)
        return ProviderPayment(payment_id, f"{expired.status}/unpaid", True, None)

    async def retrieve_charge(self, mode: str, charge_id: str) -> dict[str, Any]:
        """A Charge as Stripe's API shows it to the key of `mode` (the mode of the event that names it)."""
        return await self.checkout_for(mode).retrieve_charge(charge_id)

    async def refund(
        self,
        mode: str,
        payment_reference: str,
        amount_minor: int,
        currency: str,
        exponent: int,
        idempotency_key: str,
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        try:
            amount = iso_minor_to_stripe(amount_minor, currency, exponent)
        except ValueError as error:
            raise ProviderError("provider_rejected", str(error), transient=False) from None
        checkout = self.checkout_for(mode)
        refund = await checkout.refund(payment_reference, amount, idempotency_key, metadata=metadata)
        return str(refund["id"])

    def reconcile_event(
        self, payment: ProviderPayment, session: session_pb2.Session
    ) -> ReconcileEvent | None:
        body = payment.body
        if not isinstance(body, dict):
            return None
        status, paid = body.get("status"), body.get("payment_status")
        if status == "complete" and paid in ("paid", "unpaid"):
            # The event Stripe sends for it; with payment_status unpaid it means pending (an async method).
            event_type = "checkout.session.completed"
        elif status == "expired":
            event_type = "checkout.session.expired"
        else:
            return None  # still open: nothing has happened that a webhook would report
        event_id = f"{RECONCILE_PREFIX}{payment.payment_id}_{status}_{paid}"
        event = {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "livemode": bool(body.get("livemode")),
            "created": int(time.time()),
            "data": {"object": body},
        }
        reference = body.get("payment_intent") if isinstance(body.get("payment_intent"), str) else None
        return ReconcileEvent(event_id, event_type, _encode(event), reference)

    async def close(self) -> None:
        for checkout in self.checkouts.values():
            await checkout.close()


def webhook_reference(provider: str, payment_id: str) -> str | None:
    """The provider reference that the provider's webhooks give the payment `payment_id` of its API, when it is
    known without reading the payment: One.com's `transaction_id` is its payment `id` (contract §11). Stripe's
    webhooks name the PaymentIntent, which only a read of the Checkout Session tells: None."""
    return payment_id if provider == OneComProvider.name else None


# One.com's API states that a webhook reports, and the webhook type that reports each.
_ONECOM_EVENT_FOR: Final[dict[str, str]] = {
    onecom_api.SUCCEEDED: "payment.succeeded",
    onecom_api.PROCESSING: "payment.pending",
    onecom_api.FAILED: "payment.failed",
}


class OneComProvider:
    """One.com's payments API behind the provider interface: the payment id is One.com's payment `id`,
    which is also its webhooks' `transaction_id` (contract §11)."""

    name = "onecom"

    def __init__(self, client: OneComClient, public_url: str) -> None:
        self.client = client
        self.public_url = public_url.rstrip("/")

    def available(self, mode: str) -> bool:
        return self.client.has_mode(mode)

    def page_origins(self) -> tuple[str, ...]:
        # Its hosted page is expected on the API's origin (the test double serves both); a page found elsewhere
        # is offered as a link instead of a redirect (routes_checkout).
        parts = urlsplit(self.client.base)
        return (f"{parts.scheme}://{parts.netloc}",) if parts.scheme and parts.netloc else ()

    async def create_payment(self, session: session_pb2.Session) -> CreatedPayment:
        payment = await self.client.create_payment(
            mode_of(session),
            session_id=session.id,
            amount_minor=int(session.amount.amount_minor),
            currency=session.amount.currency,
            return_url=checkout_page_url(self.public_url, session.id, "success"),
            webhook_url=f"{self.public_url}/webhooks/onecom",
        )
        if payment.reference not in (None, session.id):
            # An idempotency replay must be our own payment; anything else is a provider fault.
            raise ProviderError(
                "provider_rejected", "One.com returned a payment for another reference", transient=False
            )
        return CreatedPayment(payment.id, payment.redirect_url)

    def _payment(self, payment: OneComPayment) -> ProviderPayment:
        return ProviderPayment(
            payment.id,
            payment.status,
            payment.status in onecom_api.FINAL_STATUSES,
            payment,
            payment.redirect_url,
        )

    async def read_payment(self, mode: str, payment_id: str) -> ProviderPayment:
        return self._payment(await self.client.get_payment(mode, payment_id))

    async def cancel_payment(self, mode: str, payment_id: str) -> ProviderPayment:
        try:
            return self._payment(await self.client.cancel_payment(mode, payment_id))
        except ProviderError as refused:
            if refused.transient or refused.http_status not in (400, 409, 422):
                raise
            # One.com refuses to cancel a payment that is no longer open: find out which way it went.
            current = await self.client.get_payment(mode, payment_id)
            if current.status in (onecom_api.CANCELED, onecom_api.FAILED):
                return self._payment(current)
            if current.status in (onecom_api.SUCCEEDED, onecom_api.PROCESSING):
                raise ProviderError(
                    "provider_session_complete",
                    "the customer already paid at One.com; the payment is on its way",
                    transient=False,
                ) from None
            raise

    async def refund(
        self,
        mode: str,
        payment_reference: str,
        amount_minor: int,
        currency: str,
        exponent: int,
        idempotency_key: str,
        *,
        metadata: Mapping[str, str] | None = None,  # One.com's refund API takes none
    ) -> str:
        refund = await self.client.refund(mode, payment_reference, amount_minor, idempotency_key)
        return refund.id

    def reconcile_event(
        self, payment: ProviderPayment, session: session_pb2.Session
    ) -> ReconcileEvent | None:
        body = payment.body
        if not isinstance(body, OneComPayment):
            return None
        event_type = _ONECOM_EVENT_FOR.get(body.status)
        if event_type is None:
            return None  # requires_action, canceled: One.com sends no webhook for these
        data: dict[str, Any] = {
            "session_id": session.id,
            "transaction_id": body.id,
            "currency": body.currency or session.amount.currency,
        }
        if body.status == onecom_api.SUCCEEDED:
            if body.paid_minor is None:
                return None  # an amount is what a succeeded event is checked on; wait for one
            data["amount_minor"] = body.paid_minor
        event_id = f"{RECONCILE_PREFIX}{body.id}_{body.status}"
        return ReconcileEvent(event_id, event_type, _encode({"type": event_type, "data": data}), body.id)

    async def close(self) -> None:
        await self.client.close()
