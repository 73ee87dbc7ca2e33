"""Pure decisions of the provider checkout flow: no I/O, no clock, no provider.

When does a session want a provider page, how long a failed attempt keeps page views from calling the provider
again, which recorded session must have its page closed, and what a refused close means for the merchant's
expiry. The coordinator (service_layer.provider_checkouts) does the calls; these rules say what to do.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from paygate.session.v1 import session_pb2
from paygate_runtime.money.stripe_minor_units import stripe_charge_refusal
from webhook_gateway.adapters.provider_errors import ProviderError

_S = session_pb2
# After a failed provider call, page views of the same session wait this long before calling it again.
RETRY_PAUSE_S = 5.0
REFUSED_PAUSE_S = 60.0  # after the provider refused the request itself, which a quick retry will not change
# The page is already paid at the provider: the expiry must not close it (the payment on its way is applied).
PAID_AT_PROVIDER = "provider_session_complete"


def wants_page(session: session_pb2.Session, *, has_provider: bool) -> bool:
    """An open session of a provider this gateway talks to, with no provider page recorded yet."""
    return has_provider and session.status == _S.SESSION_STATUS_CREATED and not session.provider_session_id


def pause_after(error: ProviderError) -> float:
    """How long page views wait after `error` before calling the provider again."""
    return RETRY_PAUSE_S if error.transient else REFUSED_PAUSE_S


def still_paused(failed_at: float, error: ProviderError, now: float) -> bool:
    return now - failed_at < pause_after(error)


def closed_while_creating(status: int) -> bool:
    """The session closed while the provider created its page: that page must not take money."""
    return status in (_S.SESSION_STATUS_EXPIRED, _S.SESSION_STATUS_FAILED)


def must_close_before_expiry(session: session_pb2.Session, *, has_provider: bool) -> bool:
    """An open session whose provider page could still take money: close it before our session expires."""
    return has_provider and bool(session.provider_session_id) and session.status == _S.SESSION_STATUS_CREATED


def raced_page(was_open: bool, closed: str, expired: session_pb2.Session, *, has_provider: bool) -> bool:
    """Another replica recorded a page between our read and the expiry: that page must be closed too."""
    return (
        has_provider
        and was_open
        and bool(expired.provider_session_id)
        and expired.provider_session_id != closed
    )


class ExpireRefused(Exception):
    """The provider's page could not be closed, so our session was not expired. `retryable`: the provider was
    unreachable (retry later); otherwise it refused (paid already, or another state the merchant can act on)."""

    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


def expire_refusal(error: ProviderError) -> ExpireRefused:
    if error.code == PAID_AT_PROVIDER:
        return ExpireRefused(error.code, error.message, retryable=False)
    return ExpireRefused(
        error.code, f"{error.message}; the session was not expired", retryable=error.transient
    )


def not_recorded_yet(what: str) -> ProviderError:
    """Not recorded, so not shown: an unrecorded page could not be closed by an expiry. The next attempt gets
    the same payment back from the provider's idempotency."""
    return ProviderError(
        "provider_unavailable", f"the provider {what} could not be recorded yet", transient=True
    )


# ---- a card session's rails (contract §6a) ---------------------------------------------------------------
# A session created without a provider is a card session (provider "card" until the first payment event binds
# it to a rail). Its checkout page offers each card rail this gateway can take for the session's mode; the
# customer's choice creates that rail's payment (one per session and rail, as the providers' idempotency keys
# are per session).

CARD = "card"
CARD_RAILS: tuple[str, ...] = ("stripe", "onecom")
RAIL_LABELS = {"stripe": "Stripe", "onecom": "One.com"}

_CLOSED_STATES = {
    _S.SESSION_STATUS_PENDING: ("session_pending", "A payment for this checkout is already being processed."),
    _S.SESSION_STATUS_PAID: ("session_paid", "This checkout has already been paid."),
    _S.SESSION_STATUS_FAILED: (
        "session_failed",
        "The payment for this checkout failed. Ask the seller for a new link.",
    ),
    _S.SESSION_STATUS_EXPIRED: (
        "session_expired",
        "This checkout has expired. Ask the seller for a new link.",
    ),
    _S.SESSION_STATUS_REFUNDED: ("session_refunded", "This checkout was paid and then refunded."),
}


@dataclass(frozen=True, slots=True)
class RailRefusal:
    """Why a session cannot be paid with the chosen card rail: an HTTP status, a stable code (contract §6a: a
    state that forbids the request is 409 with a code that names it) and a sentence for the customer."""

    status: int
    code: str
    message: str


def rail_refusal(session: session_pb2.Session, rail: str) -> RailRefusal | None:
    """None when `rail` may take the session's payment now; else why not. The session's state comes first
    (the most useful thing to tell a customer), then its rail: web3 is never paid by card, and a session
    created with a provider, or bound by its first payment event, takes only that provider's payments."""
    if session.status != _S.SESSION_STATUS_CREATED:
        code, message = _CLOSED_STATES.get(
            session.status, ("session_not_open", "This checkout is no longer open for payment.")
        )
        return RailRefusal(409, code, message)
    if session.provider == "web3":
        return RailRefusal(409, "not_a_card_session", "This checkout is paid on chain, not by card.")
    if session.provider not in (CARD, rail):
        label = RAIL_LABELS.get(session.provider, session.provider)
        return RailRefusal(409, "provider_bound", f"This checkout is paid with {label}.")
    if not rail_can_charge(rail, session):
        label = RAIL_LABELS.get(rail, rail)
        return RailRefusal(409, "amount_not_chargeable", f"This amount cannot be paid with {label}.")
    return None


def rail_can_charge(rail: str, session: session_pb2.Session) -> bool:
    """Whether `rail` can charge the session's amount at all. Stripe takes three-decimal currencies only in
    multiples of 10 of their minor unit and ISK/UGX only in whole units; a Stripe session is refused such an
    amount at creation, but a card session keeps it and is offered only the rails that can charge it."""
    if rail not in AMOUNT_LIMITED_RAILS:
        return True
    amount = session.amount
    return rail_charge_refusal(rail, int(amount.amount_minor), amount.currency, amount.exponent) is None


def rail_charge_refusal(rail: str, amount_minor: int, currency: str, exponent: int) -> str | None:
    """None when `rail` can charge the amount (ISO minor units); else why not. Only Stripe limits amounts."""
    if rail not in AMOUNT_LIMITED_RAILS:
        return None
    return stripe_charge_refusal(amount_minor, currency, exponent)


# The card rails that refuse some amounts (see rail_charge_refusal); One.com charges any fiat amount.
AMOUNT_LIMITED_RAILS = frozenset({"stripe"})


def card_amount_matters(rails: Collection[str]) -> bool:
    """Whether a new card session's amount can decide its create with these configured `rails`: only when there
    is at least one and every one of them limits amounts (else a rail takes any amount, or there is none)."""
    return bool(rails) and all(rail in AMOUNT_LIMITED_RAILS for rail in rails)


def card_session_refusal(
    rails: Collection[str], amount_minor: int, currency: str, exponent: int
) -> str | None:
    """Why a new card session of this amount must be refused, or None. A card session is created to be paid by
    card, so at least one card rail this gateway has for its mode must be able to charge it; otherwise its
    checkout page could offer no way to pay. The reason is the first rail's, in the words its own session
    would be refused with (a `stripe` session: `amount_not_chargeable`). With no card rail configured for
    the mode there is nothing to check it against: the page says the seller has not set up card payments."""
    reasons = [rail_charge_refusal(rail, amount_minor, currency, exponent) for rail in rails]
    if not reasons or any(reason is None for reason in reasons):
        return None
    return reasons[0]


def rail_payment_closed(rail: str) -> ProviderError:
    """The rail's payment for this session has finished at the provider (paid, failed, cancelled or expired):
    there is no page left to pay on, and its outcome reaches the session by the provider's event."""
    label = RAIL_LABELS.get(rail, rail)
    return ProviderError(
        "provider_payment_closed",
        f"The {label} payment for this checkout is already complete or closed. "
        "Reload the checkout page to see its status.",
        transient=False,
    )
