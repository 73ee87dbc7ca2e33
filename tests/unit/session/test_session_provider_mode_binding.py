"""The pure binding decision (contract §6a): an event applies only to a session of its own mode and provider;
a card session (created without a provider) is paid by either card rail and bound by the first event it
records."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paygate_runtime.money import Money
from session_service.domain.modes import Mode
from session_service.domain.payment_events import (
    CARD,
    ApplyOutcome,
    EventKind,
    PaymentEvent,
    QuarantineReason,
    SessionSnapshot,
    accept_late_payment,
    decide,
    provider_may_pay,
)
from session_service.domain.states import SessionStatus

T0 = datetime(2025, 1, 1, tzinfo=UTC)
PRICE = Money(9999, "EUR", 2)
SESSION_PROVIDERS = ("stripe", "onecom", "web3", CARD)
EVENT_PROVIDERS = ("stripe", "onecom", "web3")


def snapshot(
    provider: str, mode: Mode = Mode.TEST, status: SessionStatus = SessionStatus.CREATED
) -> SessionSnapshot:
    paid_reference = "pi_paid" if status is SessionStatus.PAID else None
    return SessionSnapshot(status, mode, PRICE, paid_reference=paid_reference, provider=provider)


def event(
    provider: str, kind: EventKind = EventKind.SUCCEEDED, mode: Mode | None = Mode.TEST
) -> PaymentEvent:
    amount = PRICE if kind in (EventKind.SUCCEEDED, EventKind.REFUNDED, EventKind.DISPUTED) else None
    return PaymentEvent(kind, "ref_1", T0, amount=amount, mode=mode, provider=provider)


def expected_binding(session_provider: str, event_provider: str) -> bool:
    if session_provider == CARD:
        return event_provider in ("stripe", "onecom")
    return session_provider == event_provider


@pytest.mark.parametrize("session_provider", SESSION_PROVIDERS)
@pytest.mark.parametrize("event_provider", EVENT_PROVIDERS)
@pytest.mark.parametrize("session_mode", list(Mode))
@pytest.mark.parametrize("event_mode", list(Mode))
def test_every_provider_and_mode_pair(
    session_provider: str, event_provider: str, session_mode: Mode, event_mode: Mode
) -> None:
    decision = decide(snapshot(session_provider, session_mode), event(event_provider, mode=event_mode))
    if event_mode is not session_mode:
        # Mode first: a live event never touches a test session, whatever its provider.
        assert decision.outcome is ApplyOutcome.MODE_MISMATCH
        assert decision.quarantine is QuarantineReason.MODE_MISMATCH
    elif not expected_binding(session_provider, event_provider):
        assert decision.outcome is ApplyOutcome.PROVIDER_MISMATCH
        assert decision.quarantine is QuarantineReason.PROVIDER_MISMATCH
    else:
        assert decision.outcome is ApplyOutcome.APPLIED
        assert decision.new_status is SessionStatus.PAID
        assert decision.bind_provider == (event_provider if session_provider == CARD else None)
    if decision.quarantine is not None:
        assert decision.new_status is None and decision.bind_provider is None and not decision.history


def test_a_card_session_is_bound_by_the_first_rail_and_refuses_the_other() -> None:
    first = decide(snapshot(CARD), event("onecom", EventKind.PENDING))
    assert (first.new_status, first.bind_provider) == (SessionStatus.PENDING, "onecom")
    # After the write, the session is onecom's: a Stripe event is another rail's money.
    bound = snapshot("onecom", status=SessionStatus.PENDING)
    assert decide(bound, event("stripe")).outcome is ApplyOutcome.PROVIDER_MISMATCH
    assert decide(bound, event("onecom")).outcome is ApplyOutcome.APPLIED


def test_an_attempt_binds_without_a_move_and_a_quarantined_event_binds_nothing() -> None:
    attempt = decide(snapshot(CARD), event("stripe", EventKind.ATTEMPT_FAILED))
    assert (attempt.outcome, attempt.new_status, attempt.bind_provider) == (
        ApplyOutcome.APPLIED,
        None,
        "stripe",
    )
    short = PaymentEvent(
        EventKind.SUCCEEDED, "r", T0, amount=Money(1, "EUR", 2), mode=Mode.TEST, provider="stripe"
    )
    underpaid = decide(snapshot(CARD), short)
    assert (underpaid.outcome, underpaid.bind_provider) == (ApplyOutcome.AMOUNT_MISMATCH, None)
    refund = decide(snapshot(CARD), event("stripe", EventKind.REFUNDED))
    assert (refund.outcome, refund.bind_provider) == (ApplyOutcome.RECORDED_FOR_REVIEW, None)


def test_an_event_without_a_mode_is_still_bound_to_its_provider() -> None:
    assert decide(snapshot("stripe"), event("onecom", mode=None)).outcome is ApplyOutcome.PROVIDER_MISMATCH
    assert decide(snapshot("stripe"), event("stripe", mode=None)).outcome is ApplyOutcome.APPLIED


def test_a_late_card_payment_accepted_binds_the_rail() -> None:
    expired = snapshot(CARD, status=SessionStatus.EXPIRED)
    accepted = accept_late_payment(
        expired, QuarantineReason.PAYMENT_ON_CLOSED_SESSION, PRICE, "txn_1", "onecom"
    )
    assert (accepted.new_status, accepted.bind_provider) == (SessionStatus.PAID, "onecom")
    bound = accept_late_payment(
        snapshot("stripe", status=SessionStatus.EXPIRED),
        QuarantineReason.PAYMENT_ON_CLOSED_SESSION,
        PRICE,
        "pi",
        "stripe",
    )
    assert bound.bind_provider is None


@given(
    session_provider=st.sampled_from(SESSION_PROVIDERS),
    event_provider=st.sampled_from(EVENT_PROVIDERS),
    session_mode=st.sampled_from(list(Mode)),
    event_mode=st.none() | st.sampled_from(list(Mode)),
    status=st.sampled_from(list(SessionStatus)),
    kind=st.sampled_from(list(EventKind)),
)
def test_a_foreign_event_never_moves_or_binds_a_session(
    session_provider: str,
    event_provider: str,
    session_mode: Mode,
    event_mode: Mode | None,
    status: SessionStatus,
    kind: EventKind,
) -> None:
    """Whatever the state and kind: an event of another mode or another rail is quarantined, never applied;
    a decision binds only a card session, only to a card rail, only when it records something."""
    decision = decide(
        snapshot(session_provider, session_mode, status), event(event_provider, kind, event_mode)
    )
    foreign_mode = event_mode is not None and event_mode is not session_mode
    foreign_rail = not provider_may_pay(session_provider, event_provider)
    if foreign_mode or foreign_rail:
        assert decision.outcome in (ApplyOutcome.MODE_MISMATCH, ApplyOutcome.PROVIDER_MISMATCH)
        assert decision.outcome is (
            ApplyOutcome.MODE_MISMATCH if foreign_mode else ApplyOutcome.PROVIDER_MISMATCH
        )
        assert decision.new_status is None and not decision.history and decision.bind_provider is None
        assert decision.quarantine is not None
    if decision.bind_provider is not None:
        assert session_provider == CARD and decision.bind_provider == event_provider
        assert event_provider in ("stripe", "onecom") and decision.history
