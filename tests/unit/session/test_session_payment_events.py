from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from paygate_runtime.errors import FailedPrecondition, InvalidArgument
from paygate_runtime.money import Money
from session_service.domain.modes import Mode
from session_service.domain.payment_events import (
    ApplyOutcome,
    Decision,
    EventKind,
    Note,
    PaymentEvent,
    QuarantineDecision,
    QuarantineReason,
    QuarantineStatus,
    SessionSnapshot,
    accept_late_payment,
    decide,
    parse_quarantine_decision,
    resolve_quarantine,
)
from session_service.domain.states import SessionStatus

S = SessionStatus
K = EventKind
OUT = ApplyOutcome
PRICE = Money(9999, "EUR", 2)
EXPIRES = datetime(2025, 1, 2, tzinfo=UTC)
T0 = EXPIRES - timedelta(hours=1)


def session(status: S, *, paid_reference: str | None = None, mode: Mode = Mode.TEST) -> SessionSnapshot:
    if status is S.PAID and paid_reference is None:
        paid_reference = "pi_1"
    return SessionSnapshot(status, mode, PRICE, paid_reference=paid_reference, expires_at=EXPIRES)


def event(
    kind: K,
    amount: Money | None = None,
    reference: str | None = "pi_1",
    at: datetime = T0,
    mode: Mode | None = None,
) -> PaymentEvent:
    if kind is K.SUCCEEDED and amount is None:
        amount = PRICE
    return PaymentEvent(kind, reference, at, amount=amount, mode=mode)


# --- the happy paths --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [S.CREATED, S.PENDING])
def test_full_payment_pays(status: S) -> None:
    decision = decide(session(status), event(K.SUCCEEDED))
    assert decision == Decision(
        OUT.APPLIED, Note.PAID, new_status=S.PAID, history=True, paid_reference="pi_1"
    )


def test_pending_then_failed() -> None:
    assert decide(session(S.CREATED), event(K.PENDING)).new_status is S.PENDING
    assert decide(session(S.PENDING), event(K.FAILED)).new_status is S.FAILED
    assert decide(session(S.CREATED), event(K.FAILED)).new_status is S.FAILED


def test_expired_event_expires_a_created_session() -> None:
    decision = decide(session(S.CREATED), event(K.EXPIRED))
    assert (decision.outcome, decision.new_status, decision.history) == (OUT.APPLIED, S.EXPIRED, True)


# --- re-reports and out-of-order events ------------------------------------------------------------------


def test_same_payment_under_another_event_is_already_paid() -> None:
    decision = decide(session(S.PAID, paid_reference="pi_1"), event(K.SUCCEEDED, reference="pi_1"))
    assert decision.outcome is OUT.ALREADY_PAID
    assert decision.new_status is None and decision.quarantine is None and not decision.history


@pytest.mark.parametrize("kind", [K.PENDING, K.FAILED, K.ATTEMPT_FAILED, K.EXPIRED])
@pytest.mark.parametrize("status", [S.PAID, S.FAILED, S.EXPIRED])
def test_news_without_money_on_a_closed_session_is_ignored(kind: K, status: S) -> None:
    decision = decide(session(status), event(kind))
    assert decision.outcome is OUT.IGNORED_TERMINAL
    assert decision.new_status is None and decision.quarantine is None and not decision.history


def test_pending_on_pending_is_applied_without_a_move() -> None:
    decision = decide(session(S.PENDING), event(K.PENDING))
    assert (decision.outcome, decision.new_status, decision.note, decision.history) == (
        OUT.APPLIED,
        None,
        Note.ALREADY_PENDING,
        False,
    )


def test_provider_expiry_does_not_end_a_pending_session() -> None:
    decision = decide(session(S.PENDING), event(K.EXPIRED))
    assert (decision.outcome, decision.new_status, decision.note) == (
        OUT.IGNORED_TERMINAL,
        None,
        Note.PENDING_NEVER_EXPIRES,
    )


@pytest.mark.parametrize("status", [S.CREATED, S.PENDING])
def test_attempt_failed_is_recorded_without_ending_the_session(status: S) -> None:
    decision = decide(session(status), event(K.ATTEMPT_FAILED))
    assert (decision.outcome, decision.new_status, decision.history, decision.note) == (
        OUT.APPLIED,
        None,
        True,
        Note.ATTEMPT_FAILED,
    )
    # The customer retries and pays.
    assert decide(session(status), event(K.SUCCEEDED)).new_status is S.PAID


# --- money that does not fit --------------------------------------------------------------------------------


def test_second_different_payment_on_a_paid_session_is_a_double_charge() -> None:
    decision = decide(session(S.PAID, paid_reference="pi_1"), event(K.SUCCEEDED, reference="pi_2"))
    assert (decision.outcome, decision.quarantine, decision.note, decision.new_status) == (
        OUT.PAYMENT_ON_CLOSED_SESSION,
        QuarantineReason.PAYMENT_ON_CLOSED_SESSION,
        Note.SECOND_PAYMENT,
        None,
    )


def test_payment_on_a_failed_session_is_quarantined() -> None:
    decision = decide(session(S.FAILED), event(K.SUCCEEDED))
    assert (decision.outcome, decision.note, decision.new_status) == (
        OUT.PAYMENT_ON_CLOSED_SESSION,
        Note.PAYMENT_ON_FAILED_SESSION,
        None,
    )


def test_late_payment_is_quarantined_and_notes_whether_it_was_in_time() -> None:
    in_time = decide(session(S.EXPIRED), event(K.SUCCEEDED, at=EXPIRES))
    late = decide(session(S.EXPIRED), event(K.SUCCEEDED, at=EXPIRES + timedelta(seconds=1)))
    for decision in (in_time, late):
        assert decision.outcome is OUT.PAYMENT_ON_CLOSED_SESSION
        assert decision.quarantine is QuarantineReason.PAYMENT_ON_CLOSED_SESSION
        assert decision.new_status is None
    assert (in_time.note, late.note) == (Note.PAID_BEFORE_EXPIRY, Note.PAID_AFTER_EXPIRY)


def test_state_is_judged_before_amount() -> None:
    short = Money(1, "EUR", 2)
    assert (
        decide(session(S.EXPIRED), event(K.SUCCEEDED, amount=short)).outcome is OUT.PAYMENT_ON_CLOSED_SESSION
    )
    assert decide(session(S.PAID), event(K.SUCCEEDED, amount=short, reference="pi_9")).outcome is (
        OUT.PAYMENT_ON_CLOSED_SESSION
    )


@pytest.mark.parametrize("status", [S.CREATED, S.PENDING])
def test_short_payment_is_an_amount_mismatch_and_does_not_move(status: S) -> None:
    decision = decide(session(status), event(K.SUCCEEDED, amount=Money(9998, "EUR", 2)))
    assert (decision.outcome, decision.quarantine, decision.note, decision.new_status) == (
        OUT.AMOUNT_MISMATCH,
        QuarantineReason.AMOUNT_MISMATCH,
        Note.UNDERPAID,
        None,
    )


def test_wrong_currency_is_an_amount_mismatch_even_when_bigger() -> None:
    decision = decide(session(S.CREATED), event(K.SUCCEEDED, amount=Money(10**6, "USD", 2)))
    assert (decision.outcome, decision.note, decision.new_status) == (
        OUT.AMOUNT_MISMATCH,
        Note.CURRENCY_MISMATCH,
        None,
    )


def test_overpayment_pays_and_records_the_surplus() -> None:
    decision = decide(session(S.PENDING), event(K.SUCCEEDED, amount=Money(10500, "EUR", 2)))
    assert decision.outcome is OUT.OVERPAID
    assert decision.new_status is S.PAID
    assert decision.quarantine is QuarantineReason.OVERPAID
    assert decision.surplus == Money(501, "EUR", 2)
    assert decision.paid_reference == "pi_1"


def test_amounts_compare_by_value_across_exponents() -> None:
    isk = SessionSnapshot(S.CREATED, Mode.TEST, Money(500, "ISK", 0))
    # Stripe reports ISK with two decimals.
    exact = decide(isk, PaymentEvent(K.SUCCEEDED, "pi_1", T0, amount=Money(50000, "ISK", 2)))
    assert exact.outcome is OUT.APPLIED
    more = decide(isk, PaymentEvent(K.SUCCEEDED, "pi_1", T0, amount=Money(50100, "ISK", 2)))
    assert more.surplus == Money(1, "ISK", 0)


# --- mode, refunds, disputes, malformed events -------------------------------------------------------------


@pytest.mark.parametrize("kind", list(K))
def test_mode_mismatch_is_quarantined_whatever_the_kind(kind: K) -> None:
    decision = decide(session(S.CREATED, mode=Mode.LIVE), event(kind, mode=Mode.TEST))
    assert (decision.outcome, decision.quarantine, decision.new_status) == (
        OUT.MODE_MISMATCH,
        QuarantineReason.MODE_MISMATCH,
        None,
    )


def test_matching_or_unknown_mode_is_fine() -> None:
    assert (
        decide(session(S.CREATED, mode=Mode.LIVE), event(K.SUCCEEDED, mode=Mode.LIVE)).outcome is OUT.APPLIED
    )
    assert decide(session(S.CREATED, mode=Mode.LIVE), event(K.SUCCEEDED, mode=None)).outcome is OUT.APPLIED


@pytest.mark.parametrize("status", list(S))
@pytest.mark.parametrize(("kind", "reason"), [(K.REFUNDED, "refunded"), (K.DISPUTED, "disputed")])
def test_refunds_and_disputes_are_recorded_for_review(status: S, kind: K, reason: str) -> None:
    decision = decide(session(status), event(kind))
    assert decision.outcome is OUT.RECORDED_FOR_REVIEW
    assert decision.quarantine == reason
    assert decision.new_status is None


def test_succeeded_without_amount_or_reference_is_invalid() -> None:
    with pytest.raises(InvalidArgument) as caught:
        decide(session(S.CREATED), PaymentEvent(K.SUCCEEDED, "pi_1", T0, amount=None))
    assert (caught.value.code, caught.value.field) == ("missing_amount", "amount")
    for reference in (None, ""):
        with pytest.raises(InvalidArgument) as caught:
            decide(session(S.CREATED), PaymentEvent(K.SUCCEEDED, reference, T0, amount=PRICE))
        assert caught.value.code == "missing_provider_reference"


def test_decision_invariants_are_enforced() -> None:
    with pytest.raises(ValueError):
        Decision(OUT.APPLIED, Note.PAID, new_status=S.PAID, history=False, paid_reference="x")
    with pytest.raises(ValueError):
        Decision(OUT.APPLIED, Note.PAID, new_status=S.PAID, history=True)


def test_outcome_values_match_the_proto_names() -> None:
    assert [o.value for o in ApplyOutcome] == [
        "applied",
        "duplicate",
        "already_paid",
        "ignored_terminal",
        "amount_mismatch",
        "overpaid",
        "payment_on_closed_session",
        "mode_mismatch",
        "recorded_for_review",
        "provider_mismatch",
        "already_quarantined",
    ]
    assert [k.value for k in EventKind] == [
        "pending",
        "succeeded",
        "failed",
        "attempt_failed",
        "expired",
        "refunded",
        "disputed",
    ]


# --- the late-payment override and quarantine resolution --------------------------------------------------


def test_accepting_a_late_payment_moves_expired_to_paid() -> None:
    decision = accept_late_payment(
        session(S.EXPIRED), QuarantineReason.PAYMENT_ON_CLOSED_SESSION, PRICE, "pi_late"
    )
    assert (decision.new_status, decision.paid_reference, decision.note, decision.history) == (
        S.PAID,
        "pi_late",
        Note.LATE_PAYMENT_ACCEPTED,
        True,
    )
    assert decision.surplus is None
    more = accept_late_payment(
        session(S.EXPIRED), QuarantineReason.PAYMENT_ON_CLOSED_SESSION, Money(10000, "EUR", 2), "pi_late"
    )
    assert more.surplus == Money(1, "EUR", 2)


@pytest.mark.parametrize("status", [S.CREATED, S.PENDING, S.PAID, S.FAILED])
def test_accept_refuses_any_session_that_is_not_expired(status: S) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        accept_late_payment(session(status), QuarantineReason.PAYMENT_ON_CLOSED_SESSION, PRICE, "pi_2")
    assert caught.value.code == "session_not_expired"


@pytest.mark.parametrize(
    "reason", [r for r in QuarantineReason if r is not QuarantineReason.PAYMENT_ON_CLOSED_SESSION]
)
def test_accept_refuses_other_quarantine_reasons(reason: QuarantineReason) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        accept_late_payment(session(S.EXPIRED), reason, PRICE, "pi_2")
    assert caught.value.code == "not_a_late_payment"


@pytest.mark.parametrize("payment", [Money(9998, "EUR", 2), Money(9999, "USD", 2)])
def test_accept_refuses_a_late_payment_that_does_not_cover_the_price(payment: Money) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        accept_late_payment(session(S.EXPIRED), QuarantineReason.PAYMENT_ON_CLOSED_SESSION, payment, "pi_2")
    assert caught.value.code == "late_payment_amount_mismatch"


def test_quarantine_resolution_is_idempotent_and_final() -> None:
    Q, D = QuarantineStatus, QuarantineDecision
    assert resolve_quarantine(Q.OPEN, D.ACCEPTED) is Q.ACCEPTED
    assert resolve_quarantine(Q.OPEN, D.REFUNDED) is Q.REFUNDED
    assert resolve_quarantine(Q.REFUNDED, D.REFUNDED) is None
    with pytest.raises(FailedPrecondition) as caught:
        resolve_quarantine(Q.REFUNDED, D.ACCEPTED)
    assert caught.value.code == "quarantine_already_resolved"


def test_parse_quarantine_decision() -> None:
    assert parse_quarantine_decision("dismissed") is QuarantineDecision.DISMISSED
    for raw in ("open", "ACCEPTED", None, 1):
        with pytest.raises(InvalidArgument) as caught:
            parse_quarantine_decision(raw)
        assert caught.value.code == "invalid_decision"
