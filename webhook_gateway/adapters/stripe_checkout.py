"""Stripe Checkout Sessions for paygate sessions whose provider is `stripe`.

The parameters sent to Stripe are a pure function of our session (never of the clock), because every retry
reuses one Stripe idempotency key per session and Stripe refuses a key replayed with other parameters. A
create that timed out after Stripe committed it is thus answered, on the next try, with the same Checkout
Session instead of a second payable page.

Calls go through the official library's async methods on its aiohttp transport, so the event loop never
blocks on Stripe.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp
import stripe

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from paygate_runtime.money.stripe_minor_units import iso_minor_to_stripe
from paygate_runtime.proto_convert import to_datetime
from webhook_gateway.adapters.provider_errors import ProviderError

log = logging.getLogger(__name__)

# Stripe accepts expires_at from 30 minutes to 24 hours after the Checkout Session is created.
STRIPE_MIN_LIFETIME = timedelta(minutes=30)
STRIPE_MAX_LIFETIME = timedelta(hours=24)
# Room for the first create call to reach Stripe after our session was committed; see stripe_expires_at.
CREATE_SLACK = timedelta(seconds=60)
DEFAULT_DESCRIPTION = "API access"


class StripeCheckoutError(ProviderError):
    """Stripe did not give us a Checkout Session (or did not expire one).

    `code` is the stable code shown to merchants: `provider_unavailable` (network, timeout, 5xx, rate limit:
    worth retrying), `provider_rejected` (Stripe refused the request or our key), `provider_mode_mismatch`
    (this gateway has no Stripe key of the session's mode), `provider_window_closed` (too little lifetime left
    for a Stripe page) or `provider_session_complete` (the customer already paid on Stripe's page).
    """

    def __init__(self, code: str, message: str, *, transient: bool, provider_code: str | None = None) -> None:
        super().__init__(code, message, transient=transient, provider_code=provider_code)


@dataclass(frozen=True, slots=True)
class StripeCheckoutSession:
    """What we keep of a Stripe Checkout Session."""

    id: str
    url: str | None
    status: str  # open, complete or expired


@dataclass(frozen=True, slots=True)
class StripeCheckoutSettings:
    api_key: str
    public_url: str  # our gateway, for success_url and cancel_url
    api_base: str | None = None  # tests point the library at a local server
    timeout_s: float = 10.0
    max_network_retries: int = 1

    def __repr__(self) -> str:  # never print the secret key
        return f"StripeCheckoutSettings(api_base={self.api_base!r}, timeout_s={self.timeout_s})"


def key_mode(api_key: str) -> int:
    """The mode a Stripe secret or restricted key works in, from its prefix; UNSPECIFIED when unknown."""
    if api_key.startswith(("sk_live_", "rk_live_")):
        return common_pb2.MODE_LIVE
    if api_key.startswith(("sk_test_", "rk_test_")):
        return common_pb2.MODE_TEST
    return common_pb2.MODE_UNSPECIFIED


def key_mode_name(api_key: str) -> str | None:
    """The mode ("test" or "live") a Stripe secret or restricted key works in; None when its prefix names none."""
    mode = key_mode(api_key)
    if mode == common_pb2.MODE_UNSPECIFIED:
        return None
    return "live" if mode == common_pb2.MODE_LIVE else "test"


def idempotency_key_for(session_id: str, action: str = "create") -> str:
    """One Stripe idempotency key per (session, action): every retry of a create is the same request."""
    return f"paygate-{action}-{session_id}"


def stripe_expires_at(created_at: datetime, expires_at: datetime) -> int:
    """Unix time at which Stripe's page closes, derived from our session only.

    Stripe's page should close no later than our session, so that the sweeper never expires a session whose
    Stripe page still takes money; normally that is simply our expires_at. Stripe needs at least 30 min from
    its own creation time: for a session of 30 min (the shortest the session service allows for Stripe) the
    page gets `CREATE_SLACK` more, the only case where it outlives ours (a payment in that minute lands in
    quarantine as payment_on_closed_session rather than being lost). Capped at 24 h after our creation.
    """
    earliest = created_at + STRIPE_MIN_LIFETIME + CREATE_SLACK
    latest = created_at + STRIPE_MAX_LIFETIME
    return int(min(max(expires_at, earliest), latest).timestamp())


def checkout_page_url(public_url: str, session_id: str, result: str | None = None) -> str:
    url = f"{public_url}/checkout?session={quote(session_id, safe='')}"
    return f"{url}&result={result}" if result else url


def build_create_params(session: session_pb2.Session, public_url: str) -> dict[str, Any]:
    """The Checkout Session create parameters for our session (deterministic: see the module docstring).

    Raises StripeCheckoutError `provider_rejected` for an amount Stripe cannot charge exactly.
    """
    currency = session.amount.currency
    try:
        unit_amount = iso_minor_to_stripe(int(session.amount.amount_minor), currency, session.amount.exponent)
    except ValueError as error:
        raise StripeCheckoutError("provider_rejected", str(error), transient=False) from None
    sid = session.id
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": currency.lower(),
                    "unit_amount": unit_amount,
                    "product_data": {"name": session.description or DEFAULT_DESCRIPTION},
                },
            }
        ],
        "client_reference_id": sid,
        "metadata": {"session_id": sid},
        # Stripe does not copy Checkout metadata to the PaymentIntent; payment_intent.* events need it.
        "payment_intent_data": {"metadata": {"session_id": sid}},
        "expires_at": stripe_expires_at(to_datetime(session.created_at), to_datetime(session.expires_at)),
        "success_url": checkout_page_url(public_url, sid, "success"),
        "cancel_url": checkout_page_url(public_url, sid, "cancel"),
    }
    if session.customer_email:
        params["customer_email"] = session.customer_email
    return params


def _classify(error: stripe.StripeError, action: str) -> StripeCheckoutError:
    transient = isinstance(error, stripe.APIConnectionError | stripe.RateLimitError | stripe.APIError) or (
        (error.http_status or 0) >= 500
    )
    # Stripe's message names the parameter; it holds no secret. The request id helps support.
    detail = f"Stripe {action} failed: {error.user_message or type(error).__name__}"
    if error.request_id:
        detail += f" (request {error.request_id})"
    # Stripe's own code says why it refused (a refused refund keeps it as its failure reason): a card's
    # decline_code is the more precise one (expired_card under card_declined).
    provider_code = getattr(error, "decline_code", None) or error.code
    return StripeCheckoutError(
        "provider_unavailable" if transient else "provider_rejected",
        detail,
        transient=transient,
        provider_code=provider_code if isinstance(provider_code, str) else None,
    )


class StripeCheckout:
    """Creates and expires Stripe Checkout Sessions with the official library (async, aiohttp transport)."""

    def __init__(self, settings: StripeCheckoutSettings) -> None:
        self.settings = settings
        self._http = stripe.AIOHTTPClient(timeout=aiohttp.ClientTimeout(total=settings.timeout_s))
        base: dict[str, str] = {"api": settings.api_base} if settings.api_base else {}
        self._client = stripe.StripeClient(
            settings.api_key,
            base_addresses=base,  # type: ignore[arg-type]  # stripe types it as a TypedDict; a plain dict of its keys
            http_client=self._http,
            max_network_retries=settings.max_network_retries,
        )
        self.mode = key_mode(settings.api_key)

    def check_mode(self, session: session_pb2.Session) -> None:
        # A test session must never reach a live key's Checkout page, nor a live one a test page. The provider
        # picks the checkout of the session's mode; this is the last guard before Stripe is called.
        if self.mode != common_pb2.MODE_UNSPECIFIED and session.mode != self.mode:
            raise StripeCheckoutError(
                "provider_mode_mismatch",
                "the configured Stripe key is for the other mode than this session",
                transient=False,
            )

    async def create(
        self, session: session_pb2.Session, now: datetime | None = None
    ) -> StripeCheckoutSession:
        """Create (or, on a retry, get back) the Checkout Session for our session."""
        self.check_mode(session)
        params = build_create_params(session, self.settings.public_url)
        now = now or datetime.now(UTC)
        if datetime.fromtimestamp(params["expires_at"], UTC) - now < STRIPE_MIN_LIFETIME:
            raise StripeCheckoutError(
                "provider_window_closed",
                "the session expires in less than 30 minutes, too soon for a Stripe Checkout page",
                transient=False,
            )
        try:
            created = await self._client.v1.checkout.sessions.create_async(
                params,  # type: ignore[arg-type]  # stripe's CreateParams TypedDict; built as a plain dict
                {"idempotency_key": idempotency_key_for(session.id)},
            )
        except stripe.StripeError as error:
            raise _classify(error, "create") from None
        return StripeCheckoutSession(id=created.id, url=created.url, status=created.status or "open")

    async def expire(self, checkout_session_id: str) -> StripeCheckoutSession:
        """Close Stripe's page. Already expired is fine; already complete raises `provider_session_complete`."""
        sessions = self._client.v1.checkout.sessions
        try:
            expired = await sessions.expire_async(
                checkout_session_id,
                options={"idempotency_key": idempotency_key_for(checkout_session_id, "expire")},
            )
            return StripeCheckoutSession(id=expired.id, url=None, status=expired.status or "expired")
        except stripe.InvalidRequestError as refused:
            # Stripe refuses to expire a session that is not open; find out which way it closed.
            try:
                current = await sessions.retrieve_async(checkout_session_id)
            except stripe.StripeError as error:
                raise _classify(error, "retrieve") from None
            if current.status == "expired":
                return StripeCheckoutSession(id=current.id, url=None, status="expired")
            if current.status == "complete":
                raise StripeCheckoutError(
                    "provider_session_complete",
                    "the customer already completed Stripe's checkout; the payment is on its way",
                    transient=False,
                ) from None
            raise _classify(refused, "expire") from None
        except stripe.StripeError as error:
            raise _classify(error, "expire") from None

    async def retrieve(self, checkout_session_id: str) -> dict[str, Any]:
        """The Checkout Session as Stripe's API shows it now (what reconciliation reads)."""
        try:
            current = await self._client.v1.checkout.sessions.retrieve_async(checkout_session_id)
        except stripe.StripeError as error:
            raise _classify(error, "retrieve") from None
        # Stripe's own JSON, as sent: the library's objects hold Decimals that json cannot write back.
        response = getattr(current, "last_response", None)
        if response is not None and isinstance(getattr(response, "body", None), str):
            body = json.loads(response.body)
            if isinstance(body, dict):
                return body
        return json.loads(json.dumps(current.to_dict(), default=str))

    async def refund(
        self,
        payment_intent: str,
        amount: int,
        idempotency_key: str,
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Refund `amount` (Stripe's own minor units) of a PaymentIntent; one idempotency key per refund.

        `metadata` (paygate_refund_id, session_id) rides on the Refund object, so Stripe's refund webhooks
        name paygate's refund even when one arrives before this call's answer; it is a pure function of the
        refund, so every retry under the same idempotency key sends the same parameters."""
        params: dict[str, Any] = {"payment_intent": payment_intent, "amount": amount}
        if metadata:
            params["metadata"] = dict(metadata)
        try:
            refund = await self._client.v1.refunds.create_async(
                params,  # type: ignore[arg-type]  # stripe's CreateParams TypedDict; built as a plain dict
                {"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as error:
            raise _classify(error, "refund") from None
        return refund.to_dict()

    async def retrieve_charge(self, charge_id: str) -> dict[str, Any]:
        """A Charge as Stripe's API shows it (a refund or dispute that names only the charge is matched through
        the charge's `payment_intent`)."""
        try:
            charge = await self._client.v1.charges.retrieve_async(charge_id)
        except stripe.StripeError as error:
            raise _classify(error, "charge retrieve") from None
        return charge.to_dict()

    async def close(self) -> None:
        await self._http.close_async()
