"""Inquiries (Stripe's pre-dispute retrievals) against formal disputes (chargebacks), in the pure refund rules
(contract §8, domain/refunds.py). During an inquiry no money is withdrawn and Stripe still refunds the charge
(`is_charge_refundable`), so a merchant's refund is allowed and usually settles it; during a chargeback the
network holds the money and a refund is refused (`dispute_open`). An inquiry that escalates (a later event of the
same dispute with a non-warning status, or its funds withdrawn) is a chargeback from then on, never the reverse,
and a lost dispute after a refund made during the inquiry credits only what is left of the price."""

from __future__ import annotations

import uuid

import pytest

from paygate_runtime.errors import FailedPrecondition
from session_service.domain.refunds import (
    DisputeAction,
    DisputeKind,
    DisputeStatus,
    KeyAccess,
    Ledger,
    RefundOrigin,
    RefundReport,
    RefundStatus,
    apply_dispute,
    apply_reports,
    attach_provider_refund,
    request_refund,
)
from session_service.domain.states import SessionStatus

S = SessionStatus
PRICE = 10_000
DP = "dp_inquiry_1"


def _paid() -> Ledger:
    return Ledger(status=S.PAID, amount_minor=PRICE)


def _inquiry(status: str = "warning_needs_response") -> Ledger:
    outcome = apply_dispute(_paid(), DisputeAction.CREATED, dispute_id=DP, provider_status=status)
    assert outcome.ledger.dispute_status is DisputeStatus.OPEN
    return outcome.ledger


def _refused(ledger: Ledger, origin: RefundOrigin) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        request_refund(ledger, 100, refund_id=uuid.uuid4(), origin=origin, provider_refund_id=None)
    assert caught.value.code == "dispute_open"


@pytest.mark.parametrize("status", ["warning_needs_response", "warning_under_review"])
def test_an_inquiry_is_open_suspends_the_keys_and_allows_both_refunds(status: str) -> None:
    ledger = _inquiry(status)
    assert ledger.dispute_kind is DisputeKind.INQUIRY
    assert apply_dispute(
        _paid(), DisputeAction.CREATED, dispute_id=DP, provider_status=status
    ).key_access is (KeyAccess.SUSPENDED)
    through_provider = request_refund(ledger, 2_500, refund_id=uuid.uuid4(), origin=RefundOrigin.MERCHANT)
    assert through_provider.upserts[0].status is RefundStatus.PENDING
    outside = request_refund(
        ledger, 2_500, refund_id=uuid.uuid4(), origin=RefundOrigin.OUTSIDE, provider_refund_id="re_out"
    )
    assert outside.ledger.credited_minor == 2_500
    # The refund changes nothing about the inquiry: the keys stay suspended until the provider closes it.
    assert outside.key_access is KeyAccess.SUSPENDED and outside.ledger.dispute_kind is DisputeKind.INQUIRY


@pytest.mark.parametrize("status", ["needs_response", "under_review", ""])
def test_a_formal_dispute_from_the_start_refuses_both_refunds(status: str) -> None:
    # An unknown status (an event without one) is taken as the formal dispute: the side that never pays twice.
    ledger = apply_dispute(_paid(), DisputeAction.CREATED, dispute_id=DP, provider_status=status).ledger
    assert ledger.dispute_kind is DisputeKind.CHARGEBACK
    for origin in (RefundOrigin.MERCHANT, RefundOrigin.OUTSIDE):
        _refused(ledger, origin)


def test_a_ledger_open_without_a_kind_is_a_formal_dispute() -> None:
    # Rows stored before the kind was kept (the migration marks them chargebacks), and any caller that sets none.
    for origin in (RefundOrigin.MERCHANT, RefundOrigin.OUTSIDE):
        _refused(Ledger(S.PAID, PRICE, dispute_status=DisputeStatus.OPEN, dispute_id=DP), origin)


@pytest.mark.parametrize(
    ("action", "status"),
    [
        (DisputeAction.CREATED, "needs_response"),  # a re-sent created carrying the escalated status
        (DisputeAction.UPDATED, "needs_response"),  # Stripe's charge.dispute.updated
        (DisputeAction.UPDATED, "under_review"),
        (DisputeAction.FUNDS_WITHDRAWN, "needs_response"),
        (DisputeAction.FUNDS_WITHDRAWN, ""),  # money withdrawn is a chargeback whatever the status says
    ],
)
def test_an_inquiry_that_escalates_is_a_formal_dispute_from_then_on(
    action: DisputeAction, status: str
) -> None:
    escalated = apply_dispute(_inquiry(), action, dispute_id=DP, provider_status=status)
    assert escalated.changed and escalated.note == "dispute_escalated"
    ledger = escalated.ledger
    assert (ledger.dispute_status, ledger.dispute_kind) == (DisputeStatus.OPEN, DisputeKind.CHARGEBACK)
    assert escalated.key_access is KeyAccess.SUSPENDED
    for origin in (RefundOrigin.MERCHANT, RefundOrigin.OUTSIDE):
        _refused(ledger, origin)
    # One way: a late event of the same dispute that still says warning_* does not make it an inquiry again.
    for late_action in (DisputeAction.CREATED, DisputeAction.UPDATED, DisputeAction.FUNDS_REINSTATED):
        late = apply_dispute(ledger, late_action, dispute_id=DP, provider_status="warning_under_review")
        assert late.ledger.dispute_kind is DisputeKind.CHARGEBACK
        _refused(late.ledger, RefundOrigin.OUTSIDE)


def test_an_inquiry_that_stays_an_inquiry_changes_nothing() -> None:
    ledger = _inquiry()
    for action in (DisputeAction.CREATED, DisputeAction.UPDATED):
        outcome = apply_dispute(ledger, action, dispute_id=DP, provider_status="warning_under_review")
        assert outcome.ledger.dispute_kind is DisputeKind.INQUIRY
        assert outcome.ledger.dispute_status is DisputeStatus.OPEN


def test_funds_withdrawn_before_the_created_event_makes_a_late_created_a_chargeback() -> None:
    # Stripe delivers out of order: the created event (a snapshot still saying warning_needs_response) can
    # arrive after the funds were withdrawn; the dispute must not open as an inquiry then.
    withdrawn = apply_dispute(
        _paid(), DisputeAction.FUNDS_WITHDRAWN, dispute_id=DP, provider_status=""
    ).ledger
    created = apply_dispute(
        withdrawn, DisputeAction.CREATED, dispute_id=DP, provider_status="warning_needs_response"
    ).ledger
    assert (created.dispute_status, created.dispute_kind) == (DisputeStatus.OPEN, DisputeKind.CHARGEBACK)
    _refused(created, RefundOrigin.OUTSIDE)


def test_an_inquiry_closed_without_chargeback_restores_the_keys_and_refunds_stay_allowed() -> None:
    closed = apply_dispute(_inquiry(), DisputeAction.CLOSED, dispute_id=DP, provider_status="warning_closed")
    assert closed.ledger.dispute_status is DisputeStatus.WON and closed.key_access is KeyAccess.ACTIVE
    assert closed.ledger.dispute_kind is DisputeKind.INQUIRY
    outcome = request_refund(closed.ledger, 100, refund_id=uuid.uuid4(), origin=RefundOrigin.OUTSIDE)
    assert outcome.ledger.credited_minor == 100


def test_a_new_dispute_after_a_closed_inquiry_takes_its_own_kind() -> None:
    closed = apply_dispute(_inquiry(), DisputeAction.CLOSED, dispute_id=DP, provider_status="warning_closed")
    formal = apply_dispute(
        closed.ledger, DisputeAction.CREATED, dispute_id="dp_formal_2", provider_status="needs_response"
    ).ledger
    assert (formal.dispute_status, formal.dispute_kind, formal.dispute_id) == (
        DisputeStatus.OPEN,
        DisputeKind.CHARGEBACK,
        "dp_formal_2",
    )
    _refused(formal, RefundOrigin.MERCHANT)


def test_a_lost_escalated_dispute_after_an_outside_refund_credits_only_the_rest() -> None:
    refunded = request_refund(
        _inquiry(), 3_000, refund_id=uuid.uuid4(), origin=RefundOrigin.OUTSIDE, provider_refund_id="re_out"
    ).ledger
    escalated = apply_dispute(refunded, DisputeAction.FUNDS_WITHDRAWN, dispute_id=DP).ledger
    lost = apply_dispute(escalated, DisputeAction.CLOSED, dispute_id=DP, provider_status="lost")
    assert lost.ledger.credited_minor == PRICE and lost.moves_to_refunded
    assert [r.credited_minor for r in lost.upserts] == [PRICE - 3_000]
    assert lost.upserts[0].origin is RefundOrigin.DISPUTE
    assert lost.ledger.dispute_kind is DisputeKind.CHARGEBACK


def test_a_lost_escalated_dispute_never_credits_a_pending_refund_twice() -> None:
    # A refund asked through the provider during the inquiry is still pending when the escalated dispute is
    # lost: the loss credits the rest of the price, and the refund, when it succeeds, finds no room left.
    rid = uuid.uuid4()
    asked = request_refund(_inquiry(), 4_000, refund_id=rid, origin=RefundOrigin.MERCHANT).ledger
    attached, _ = attach_provider_refund(asked, rid, "re_pending", RefundStatus.PENDING)
    escalated = apply_dispute(
        attached.ledger, DisputeAction.UPDATED, dispute_id=DP, provider_status="needs_response"
    ).ledger
    lost = apply_dispute(escalated, DisputeAction.CLOSED, dispute_id=DP, provider_status="lost").ledger
    assert lost.credited_minor == PRICE and lost.status is S.REFUNDED
    settled = apply_reports(
        lost, (RefundReport("re_pending", 4_000, RefundStatus.SUCCEEDED, rid),), provider_total_minor=None
    )
    assert settled.ledger.credited_minor == PRICE
    assert sum(r.credited_minor for r in settled.ledger.refunds) <= PRICE
    # The money the customer got twice is shown to the merchant, not credited.
    assert settled.surplus_minor == 4_000


def test_a_refund_succeeded_during_the_inquiry_then_lost_credits_no_more_than_the_price() -> None:
    rid = uuid.uuid4()
    asked = request_refund(_inquiry(), 6_000, refund_id=rid, origin=RefundOrigin.MERCHANT).ledger
    done = apply_reports(
        asked, (RefundReport("re_done", 6_000, RefundStatus.SUCCEEDED, rid),), provider_total_minor=6_000
    ).ledger
    escalated = apply_dispute(
        done, DisputeAction.CREATED, dispute_id=DP, provider_status="under_review"
    ).ledger
    assert escalated.dispute_kind is DisputeKind.CHARGEBACK
    lost = apply_dispute(escalated, DisputeAction.CLOSED, dispute_id=DP, provider_status="lost").ledger
    assert lost.credited_minor == PRICE
    assert [r.credited_minor for r in lost.refunds if r.origin is RefundOrigin.DISPUTE] == [4_000]
