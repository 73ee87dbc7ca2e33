"""Pure rules for refund and dispute events that arrive late or change their mind (domain/refunds.py): a closed
dispute never reopens, a refund that fails after it succeeded stops crediting without the provider's earlier
total crediting it again, and the credit-note property of test_session_refund_rules with that one exception
(the credit note of a refund that failed after it succeeded stands)."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from paygate_runtime.errors import FailedPrecondition, InvalidArgument
from session_service.domain.refunds import (
    DisputeAction,
    DisputeStatus,
    KeyAccess,
    Ledger,
    RefundOrigin,
    RefundReport,
    RefundStatus,
    apply_dispute,
    apply_reports,
    request_refund,
)
from session_service.domain.states import SessionStatus

S = SessionStatus
PRICE = 10_000


def _paid() -> Ledger:
    return Ledger(status=S.PAID, amount_minor=PRICE)


def test_a_closed_dispute_never_reopens() -> None:
    for final, access in (("won", KeyAccess.ACTIVE), ("lost", KeyAccess.REVOKED)):
        closed = apply_dispute(_paid(), DisputeAction.CLOSED, dispute_id="dp", provider_status=final)
        late = apply_dispute(closed.ledger, DisputeAction.CREATED, dispute_id="dp")
        assert not late.changed and late.note == "dispute_already_closed" and late.upserts == ()
        assert late.ledger == closed.ledger and late.key_access is access
        assert late.ledger.dispute_status is DisputeStatus(final)
    # Another dispute (another id) on the same payment still opens.
    won = apply_dispute(_paid(), DisputeAction.CLOSED, dispute_id="dp_1", provider_status="won").ledger
    assert (
        apply_dispute(won, DisputeAction.CREATED, dispute_id="dp_2").ledger.dispute_status
        is DisputeStatus.OPEN
    )


def test_a_refund_failing_after_it_succeeded_stops_crediting() -> None:
    done = apply_reports(
        _paid(), (RefundReport("re_1", 2000, RefundStatus.SUCCEEDED),), provider_total_minor=2000
    ).ledger
    failed = apply_reports(
        done, (RefundReport("re_1", 2000, RefundStatus.FAILED),), provider_total_minor=None
    )
    [refund] = failed.ledger.refunds
    assert refund.status is RefundStatus.FAILED and failed.ledger.credited_minor == 0
    assert failed.failed_after_success == (refund,)
    # Stripe's earlier total no longer explains the failed money as returned (no phantom credit).
    assert failed.ledger.provider_total_minor == 0
    again = apply_reports(
        failed.ledger, (RefundReport("re_1", 2000, RefundStatus.FAILED),), provider_total_minor=None
    )
    assert not again.changed and again.failed_after_success == ()


def test_pending_then_failed_with_a_total_credits_nothing() -> None:
    pending = apply_reports(
        _paid(), (RefundReport("re_1", 2000, RefundStatus.PENDING),), provider_total_minor=2000
    ).ledger
    failed = apply_reports(
        pending, (RefundReport("re_1", 2000, RefundStatus.FAILED),), provider_total_minor=None
    )
    assert failed.ledger.credited_minor == 0 and failed.failed_after_success == ()
    assert [r.status for r in failed.ledger.refunds] == [RefundStatus.FAILED]


_step = st.one_of(
    st.tuples(st.just("outside"), st.integers(1, PRICE)),
    st.tuples(st.just("merchant"), st.integers(1, PRICE)),
    st.tuples(
        st.just("report"), st.integers(0, 5), st.integers(1, PRICE), st.sampled_from(list(RefundStatus))
    ),
    st.tuples(st.just("total"), st.integers(0, PRICE)),
    st.tuples(st.just("dispute"), st.sampled_from(["created", "won", "lost"])),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_step, max_size=25))
def test_credit_notes_add_up_except_refunds_that_failed_after_success(steps: list[tuple]) -> None:  # type: ignore[type-arg]
    ledger = _paid()
    credit_notes: dict[uuid.UUID, int] = {}
    reversed_: set[uuid.UUID] = set()
    for step in steps:
        try:
            if step[0] in ("outside", "merchant"):
                origin = RefundOrigin.OUTSIDE if step[0] == "outside" else RefundOrigin.MERCHANT
                outcome = request_refund(ledger, step[1], refund_id=uuid.uuid4(), origin=origin)
            elif step[0] == "report":
                outcome = apply_reports(
                    ledger, (RefundReport(f"re_{step[1]}", step[2], step[3]),), provider_total_minor=None
                )
            elif step[0] == "total":
                outcome = apply_reports(ledger, (), provider_total_minor=step[1])
            else:
                action = DisputeAction.CREATED if step[1] == "created" else DisputeAction.CLOSED
                outcome = apply_dispute(ledger, action, dispute_id="dp", provider_status=step[1])
        except (InvalidArgument, FailedPrecondition):
            continue
        reversed_ |= {r.id for r in outcome.failed_after_success}
        for refund in outcome.ledger.refunds:
            if refund.credited_minor:
                assert refund.id not in reversed_
                assert credit_notes.setdefault(refund.id, refund.credited_minor) == refund.credited_minor
            elif refund.id in credit_notes:
                # Only a refund that failed after it succeeded loses its credit (its credit note stands).
                assert refund.id in reversed_ and refund.status is RefundStatus.FAILED
        ledger = outcome.ledger
        standing = sum(v for k, v in credit_notes.items() if k not in reversed_)
        assert standing == ledger.credited_minor <= PRICE
        if ledger.status is S.PAID:
            assert ledger.credited_minor < PRICE
        if not reversed_:
            assert (ledger.status is S.REFUNDED) == (ledger.credited_minor == PRICE)
