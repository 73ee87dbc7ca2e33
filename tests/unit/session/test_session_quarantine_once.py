"""One provider payment's money is quarantined once (contract §4, §11): a later report of the same payment
(provider + provider reference), whatever its event id and whatever the session's state by then, is the
recorded no-op `already_quarantined`, never a second entry a merchant could refund again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paygate_runtime.money import Money
from session_service.domain.modes import Mode
from session_service.domain.payment_events import (
    CARD,
    ApplyOutcome,
    Decision,
    EventKind,
    Note,
    PaymentEvent,
    QuarantineReason,
    SessionSnapshot,
    decide,
)
from session_service.domain.states import SessionStatus

S = SessionStatus
K = EventKind
PRICE = Money(500, "EUR", 2)
SHORT = Money(499, "EUR", 2)
EXPIRES = datetime(2025, 1, 2, tzinfo=UTC)
T0 = EXPIRES - timedelta(hours=1)
PAY = "pay_1"


def session(
    status: S = S.CREATED,
    *,
    quarantined: frozenset[tuple[str, str]] = frozenset(),
    provider: str = "onecom",
    mode: Mode = Mode.TEST,
    paid_reference: str | None = None,
) -> SessionSnapshot:
    if status in (S.PAID, S.REFUNDED) and paid_reference is None:
        paid_reference = "pay_paid"
    return SessionSnapshot(
        status,
        mode,
        PRICE,
        paid_reference=paid_reference,
        expires_at=EXPIRES,
        provider=provider,
        quarantined_payments=quarantined,
    )


def money(
    amount: Money = SHORT,
    *,
    reference: str = PAY,
    provider: str = "onecom",
    mode: Mode | None = Mode.TEST,
    at: datetime = T0,
    kind: K = K.SUCCEEDED,
) -> PaymentEvent:
    return PaymentEvent(kind, reference, at, amount=amount, mode=mode, provider=provider)


NO_OP = Decision(ApplyOutcome.ALREADY_QUARANTINED, Note.ALREADY_QUARANTINED)
SEEN = frozenset({("onecom", PAY)})


def test_a_short_payment_is_quarantined_the_first_time() -> None:
    decision = decide(session(), money())
    assert (decision.outcome, decision.quarantine) == (
        ApplyOutcome.AMOUNT_MISMATCH,
        QuarantineReason.AMOUNT_MISMATCH,
    )


@pytest.mark.parametrize("status", [S.CREATED, S.PENDING])
def test_the_same_short_payment_again_is_already_quarantined(status: S) -> None:
    # The webhook quarantined it; reconciliation (or Stripe's second event for one payment) reports it again.
    assert decide(session(status, quarantined=SEEN), money()) == NO_OP


def test_the_same_payment_in_the_wrong_currency_again_is_already_quarantined() -> None:
    usd = Money(500, "USD", 2)
    first = decide(session(), money(usd))
    assert (first.outcome, first.note) == (ApplyOutcome.AMOUNT_MISMATCH, Note.CURRENCY_MISMATCH)
    assert decide(session(quarantined=SEEN), money(usd)) == NO_OP


@pytest.mark.parametrize("at", [T0, EXPIRES + timedelta(hours=1)])
def test_the_same_late_payment_on_an_expired_session_again_is_already_quarantined(at: datetime) -> None:
    first = decide(session(S.EXPIRED), money(PRICE, at=at))
    assert first.quarantine is QuarantineReason.PAYMENT_ON_CLOSED_SESSION
    # Reconciliation's event has its own occurred_at (another note): still the same payment.
    for later in (T0, EXPIRES + timedelta(days=1)):
        assert decide(session(S.EXPIRED, quarantined=SEEN), money(PRICE, at=later)) == NO_OP


@pytest.mark.parametrize("status", [S.EXPIRED, S.FAILED, S.PAID, S.REFUNDED])
def test_money_quarantined_while_open_is_not_quarantined_again_once_the_session_closed(status: S) -> None:
    """A short payment quarantined as amount_mismatch while the session was open is the same money when it is
    reported again after the session expired (or was paid by another payment): a second entry under another
    reason would be refunded twice."""
    closed = decide(session(status), money())
    assert closed.quarantine is QuarantineReason.PAYMENT_ON_CLOSED_SESSION  # the finding, seen alone
    assert decide(session(status, quarantined=SEEN), money()) == NO_OP


def test_mode_and_provider_mismatch_of_the_same_payment_again_are_already_quarantined() -> None:
    live = money(PRICE, mode=Mode.LIVE)
    assert decide(session(), live).quarantine is QuarantineReason.MODE_MISMATCH
    assert decide(session(quarantined=SEEN), live) == NO_OP
    onecom_on_stripe = money(PRICE)
    assert decide(session(provider="stripe"), onecom_on_stripe).quarantine is (
        QuarantineReason.PROVIDER_MISMATCH
    )
    assert decide(session(provider="stripe", quarantined=SEEN), onecom_on_stripe) == NO_OP


def test_another_payment_is_its_own_finding() -> None:
    other = decide(session(quarantined=SEEN), money(reference="pay_2"))
    assert other.quarantine is QuarantineReason.AMOUNT_MISMATCH
    # The same reference at another provider is another payment.
    stripe = decide(session(provider=CARD, quarantined=SEEN), money(provider="stripe"))
    assert stripe.quarantine is QuarantineReason.AMOUNT_MISMATCH


def test_a_full_payment_still_pays_and_a_paid_one_is_still_already_paid() -> None:
    # Quarantined money never blocks the right payment, and already_paid still comes first.
    paid = decide(session(quarantined=SEEN), money(PRICE, reference="pay_2"))
    assert paid.new_status is S.PAID and paid.paid_reference == "pay_2"
    again = decide(session(S.PAID, paid_reference=PAY, quarantined=SEEN), money(PRICE))
    assert again.outcome is ApplyOutcome.ALREADY_PAID


@pytest.mark.parametrize("kind", [K.PENDING, K.FAILED, K.ATTEMPT_FAILED, K.EXPIRED])
def test_news_without_money_is_decided_as_before(kind: K) -> None:
    event = PaymentEvent(kind, PAY, T0, mode=Mode.TEST, provider="onecom")
    assert decide(session(quarantined=SEEN), event) == decide(session(), event)


@given(
    status=st.sampled_from(list(S)),
    minor=st.integers(min_value=0, max_value=2000),
    currency=st.sampled_from(["EUR", "USD"]),
    mode=st.sampled_from([Mode.TEST, Mode.LIVE, None]),
    provider=st.sampled_from(["onecom", "stripe", CARD]),
)
def test_quarantined_money_is_never_quarantined_again(
    status: S, minor: int, currency: str, mode: Mode | None, provider: str
) -> None:
    """Whatever the session's state, amount, currency or mode: an event whose payment is already in quarantine
    writes no second entry (and moves nothing it would not have moved alone)."""
    event = money(Money(minor, currency, 2), mode=mode)
    alone = decide(session(status, provider=provider), event)
    again = decide(session(status, provider=provider, quarantined=SEEN), event)
    if alone.quarantine is None:
        assert again == alone
    else:
        assert again == NO_OP
