"""Refund and dispute events that name only a charge (issue 19, contract §4, §8).

Stripe's refund and dispute objects name the payment by its PaymentIntent, but some (older API versions,
charges made without a PaymentIntent, disputes opened before the PaymentIntent is attached) carry only the
charge (`ch_...`). The session service finds a session by the charge only if an earlier `charge.refunded`
linked the two. With a Stripe API key of the event's mode (its `livemode`), the gateway asks Stripe's API for
the charge with that key and fills in its `payment_intent` before applying the event, so the event finds the
session that PaymentIntent paid. Without a key of that mode nothing changes (the other mode's key is never
used: it cannot read the charge): the event is tried as today and quarantined (`unknown_session`) if no
session is found, never dropped.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import replace
from typing import Final

from webhook_gateway.adapters.payment_providers import StripeProvider
from webhook_gateway.adapters.provider_errors import ProviderError
from webhook_gateway.providers.normalized import NormalizedEvent
from webhook_gateway.service_layer.relay import RetryLater

log = logging.getLogger(__name__)

# A charge's PaymentIntent never changes: remembered answers save an API call per redelivery.
_CACHE_SIZE: Final = 10_000


class ChargePaymentIntents:
    """Completes charge-only Stripe refund and dispute events with the charge's PaymentIntent."""

    def __init__(self, stripe: StripeProvider) -> None:
        self.stripe = stripe
        # (mode, charge id) -> PaymentIntent: what one mode's key was told never answers the other mode.
        self._known: OrderedDict[tuple[str, str], str] = OrderedDict()

    async def complete(self, event: NormalizedEvent) -> NormalizedEvent:
        back = event.money_back
        if back is None or not back.charge_id or event.provider_reference or event.session_id:
            return event
        mode = None if event.livemode is None else ("live" if event.livemode else "test")
        if mode is None or not self.stripe.available(mode):
            return event
        payment_intent = await self._payment_intent(mode, back.charge_id)
        return replace(event, provider_reference=payment_intent) if payment_intent else event

    async def _payment_intent(self, mode: str, charge_id: str) -> str | None:
        cached = (mode, charge_id)
        known = self._known.get(cached)
        if known is not None:
            self._known.move_to_end(cached)
            return known
        try:
            charge = await self.stripe.retrieve_charge(mode, charge_id)
        except ProviderError as error:
            if error.transient:
                # Stripe could not answer now: the event stays in the inbox and is retried with backoff.
                raise RetryLater(f"stripe_unavailable: charge {charge_id}: {error.message}") from None
            # Stripe does not know the charge (or refuses our key): the event goes on as it is.
            log.warning(
                "Stripe refused a charge lookup",
                extra={"charge_id": charge_id, "mode": mode, "code": error.code},
            )
            return None
        payment_intent = charge.get("payment_intent")
        if isinstance(payment_intent, dict):  # expanded
            payment_intent = payment_intent.get("id")
        if not isinstance(payment_intent, str) or not payment_intent:
            return None
        self._known[cached] = payment_intent
        if len(self._known) > _CACHE_SIZE:
            self._known.popitem(last=False)
        return payment_intent
