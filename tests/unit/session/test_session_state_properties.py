"""Property tests: whatever providers send, in whatever order, a session only moves forward, never leaves a
terminal state by an event, is paid at most once, and no money is silently dropped."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from paygate_runtime.errors import FailedPrecondition
from paygate_runtime.money import Money
from session_service.domain.modes import Mode
from session_service.domain.payment_events import (
    ApplyOutcome,
    EventKind,
    PaymentEvent,
    QuarantineReason,
    SessionSnapshot,
    accept_late_payment,
    decide,
)
from session_service.domain.states import TERMINAL, SessionStatus, can_move, can_override

S = SessionStatus
EXPIRES = datetime(2025, 1, 2, tzinfo=UTC)
RANK = {S.CREATED: 0, S.PENDING: 1, S.PAID: 2, S.FAILED: 2, S.EXPIRED: 2}
FAST = settings(max_examples=200, deadline=None)


@dataclass(frozen=True)
class Sweep:
    """The sweeper or the merchant's ExpireSession: only ever created -> expired."""


@dataclass(frozen=True)
class AcceptLatest:
    """The merchant accepts the most recent payment_on_closed_session entry."""


def amounts(price: Money) -> st.SearchStrategy[Money]:
    return st.one_of(
        st.just(price),
        st.integers(min_value=0, max_value=price.amount_minor * 3).map(
            lambda minor: Money(minor, price.currency, price.exponent)
        ),
        st.just(
            Money(price.amount_minor * 100, price.currency, price.exponent + 2)
        ),  # same value, finer unit
        st.just(Money(price.amount_minor, "USD" if price.currency != "USD" else "EUR", price.exponent)),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[SessionSnapshot, list[object]]:
    price = Money(draw(st.integers(min_value=1, max_value=10**6)), draw(st.sampled_from(["EUR", "JPY"])), 2)
    mode = draw(st.sampled_from(list(Mode)))
    events = st.builds(
        PaymentEvent,
        kind=st.sampled_from(list(EventKind)),
        provider_reference=st.sampled_from(["pi_1", "pi_2", "pi_3"]),
        occurred_at=st.integers(min_value=-3600, max_value=3600).map(
            lambda s: EXPIRES + timedelta(seconds=s)
        ),
        amount=amounts(price),
        mode=st.sampled_from([None, None, Mode.TEST, Mode.LIVE]),
    )
    steps = draw(
        st.lists(st.one_of(events, events, events, st.just(Sweep()), st.just(AcceptLatest())), max_size=25)
    )
    start = SessionSnapshot(S.CREATED, mode, price, expires_at=EXPIRES)
    return start, steps


@FAST
@given(scenario=scenarios())
def test_no_event_sequence_moves_backwards_leaves_a_terminal_state_or_pays_twice(
    scenario: tuple[SessionSnapshot, list[object]],
) -> None:
    snapshot, steps = scenario
    history: list[tuple[S, S, str]] = []
    late_payments: list[PaymentEvent] = []

    for step in steps:
        before = snapshot
        if isinstance(step, Sweep):
            if can_move(snapshot.status, S.EXPIRED):
                history.append((snapshot.status, S.EXPIRED, "sweep"))
                snapshot = replace(snapshot, status=S.EXPIRED)
            continue
        if isinstance(step, AcceptLatest):
            if not late_payments:
                continue
            late = late_payments[-1]
            assert late.amount is not None and late.provider_reference is not None
            try:
                accepted = accept_late_payment(
                    snapshot, QuarantineReason.PAYMENT_ON_CLOSED_SESSION, late.amount, late.provider_reference
                )
            except FailedPrecondition:
                assert (
                    snapshot.status is not S.EXPIRED
                    or not late.amount.same_currency(snapshot.amount)
                    or (late.amount.compare(snapshot.amount) < 0)
                )
                continue
            assert before.status is S.EXPIRED and can_override(S.EXPIRED, S.PAID)
            history.append((S.EXPIRED, S.PAID, "override"))
            snapshot = replace(snapshot, status=S.PAID, paid_reference=accepted.paid_reference)
            continue

        assert isinstance(step, PaymentEvent)
        decision = decide(snapshot, step)
        assert decide(snapshot, step) == decision  # pure and deterministic

        if decision.new_status is not None:
            assert can_move(snapshot.status, decision.new_status), "events only take moves from the table"
            assert snapshot.status not in TERMINAL
            assert decision.outcome in (ApplyOutcome.APPLIED, ApplyOutcome.OVERPAID)
            assert decision.history
            history.append((snapshot.status, decision.new_status, "event"))
            snapshot = replace(
                snapshot,
                status=decision.new_status,
                paid_reference=decision.paid_reference or snapshot.paid_reference,
            )
        else:
            assert decision.outcome is not ApplyOutcome.OVERPAID

        if step.kind is EventKind.SUCCEEDED:
            # Money is never silently dropped: it paid the session, was the payment that did, or went to
            # quarantine for a person to see.
            paid_now = decision.new_status is S.PAID
            same_payment = decision.outcome is ApplyOutcome.ALREADY_PAID
            assert paid_now or same_payment or decision.quarantine is not None
            if same_payment:
                assert before.status is S.PAID and step.provider_reference == before.paid_reference
            if decision.outcome is ApplyOutcome.PAYMENT_ON_CLOSED_SESSION:
                late_payments.append(step)
        else:
            assert decision.new_status is not S.PAID, "only money pays a session"

        if before.status is S.PAID:
            assert snapshot.paid_reference == before.paid_reference, "the paying reference never changes"

    moves_into_paid = [move for move in history if move[1] is S.PAID]
    assert len(moves_into_paid) <= 1, "paid at most once"
    for source, target, kind in history:
        assert RANK[target] > RANK[source] or kind == "override"
    for (_, first_target, _), (second_source, _, _) in itertools.pairwise(history):
        assert second_source is first_target, "history is a chain"
    for index, (source, _, kind) in enumerate(history):
        if source in TERMINAL:
            # The one exception: an accepted late payment, the last move a session can make.
            assert kind == "override" and index == len(history) - 1
    assert (snapshot.status is S.PAID) == (snapshot.paid_reference is not None)


@FAST
@given(
    status=st.sampled_from(list(SessionStatus)),
    kind=st.sampled_from(list(EventKind)),
    minor=st.integers(min_value=0, max_value=3000),
)
def test_terminal_sessions_never_move_on_any_event(status: S, kind: EventKind, minor: int) -> None:
    price = Money(1000, "EUR", 2)
    snapshot = SessionSnapshot(status, Mode.TEST, price, paid_reference="pi_1" if status is S.PAID else None)
    decision = decide(snapshot, PaymentEvent(kind, "pi_2", EXPIRES, amount=Money(minor, "EUR", 2)))
    if status in TERMINAL:
        assert decision.new_status is None
    if decision.new_status is S.PAID:
        assert minor >= 1000
        assert (decision.surplus is None) == (minor == 1000)
        if decision.surplus is not None:
            assert decision.surplus.amount_minor == minor - 1000
