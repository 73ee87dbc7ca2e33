"""Pure refund and dispute rules (contract §8, domain/refunds.py), including the property that the credit
notes of a session always add up to what it refunded, and never to more than it cost or than the provider
says it returned."""

from __future__ import annotations

import uuid

import pytest

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
    attach_provider_refund,
    request_refund,
)
from session_service.domain.states import SessionStatus

S = SessionStatus
PRICE = 10_000


def _paid(**kwargs: object) -> Ledger:
    return Ledger(status=S.PAID, amount_minor=PRICE, **kwargs)  # type: ignore[arg-type]


def test_a_refund_needs_a_paid_session() -> None:
    for status in (S.CREATED, S.PENDING, S.FAILED, S.EXPIRED):
        with pytest.raises(FailedPrecondition) as caught:
            request_refund(Ledger(status, PRICE), 100, refund_id=uuid.uuid4(), origin=RefundOrigin.OUTSIDE)
        assert caught.value.code == "session_not_paid"
    with pytest.raises(FailedPrecondition) as caught:
        request_refund(Ledger(S.REFUNDED, PRICE), 100, refund_id=uuid.uuid4(), origin=RefundOrigin.OUTSIDE)
    assert caught.value.code == "session_refunded"


def test_a_merchant_refund_waits_while_a_dispute_is_open() -> None:
    for origin in (RefundOrigin.MERCHANT, RefundOrigin.OUTSIDE):
        with pytest.raises(FailedPrecondition) as caught:
            request_refund(
                _paid(dispute_status=DisputeStatus.OPEN), 100, refund_id=uuid.uuid4(), origin=origin
            )
        assert caught.value.code == "dispute_open"
    for closed in (None, DisputeStatus.WON):
        outcome = request_refund(
            _paid(dispute_status=closed), 100, refund_id=uuid.uuid4(), origin=RefundOrigin.OUTSIDE
        )
        assert outcome.ledger.credited_minor == 100


def test_more_than_refundable_is_amount_too_large() -> None:
    with pytest.raises(InvalidArgument) as caught:
        request_refund(_paid(), PRICE + 1, refund_id=uuid.uuid4(), origin=RefundOrigin.OUTSIDE)
    assert caught.value.code == "amount_too_large"
    # A pending refund reserves its amount.
    pending = request_refund(_paid(), 6000, refund_id=uuid.uuid4(), origin=RefundOrigin.MERCHANT).ledger
    with pytest.raises(InvalidArgument) as caught:
        request_refund(pending, 4001, refund_id=uuid.uuid4(), origin=RefundOrigin.OUTSIDE)
    assert caught.value.code == "amount_too_large"
    assert (
        request_refund(pending, None, refund_id=uuid.uuid4(), origin=RefundOrigin.OUTSIDE)
        .upserts[0]
        .amount_minor
        == 4000
    )


def test_partial_then_full_moves_to_refunded_and_revokes() -> None:
    first = request_refund(_paid(), 3000, refund_id=uuid.uuid4(), origin=RefundOrigin.OUTSIDE)
    assert not first.moves_to_refunded and first.key_access is KeyAccess.ACTIVE
    assert first.ledger.credited_minor == 3000
    rest = request_refund(first.ledger, None, refund_id=uuid.uuid4(), origin=RefundOrigin.OUTSIDE)
    assert rest.moves_to_refunded and rest.ledger.status is S.REFUNDED
    assert rest.key_access is KeyAccess.REVOKED and rest.ledger.credited_minor == PRICE


def test_a_webhook_twice_and_before_the_merchants_answer_credits_once() -> None:
    mine = uuid.uuid4()
    asked = request_refund(_paid(), PRICE, refund_id=mine, origin=RefundOrigin.MERCHANT).ledger
    report = RefundReport("re_1", PRICE, RefundStatus.SUCCEEDED)
    # The webhook arrives before the API's answer was attached: no metadata, so a provider refund is recorded.
    webhook = apply_reports(asked, (report,), provider_total_minor=PRICE)
    assert webhook.ledger.credited_minor == PRICE and webhook.moves_to_refunded
    again = apply_reports(webhook.ledger, (report,), provider_total_minor=PRICE)
    assert not again.changed and again.ledger.credited_minor == PRICE
    # The API's answer then names the same refund: the request's own record is canceled, nothing is credited.
    outcome, standing = attach_provider_refund(again.ledger, mine, "re_1", RefundStatus.SUCCEEDED)
    assert standing.provider_refund_id == "re_1" and standing.id != mine
    assert outcome.ledger.credited_minor == PRICE
    assert {r.status for r in outcome.ledger.refunds} == {RefundStatus.SUCCEEDED, RefundStatus.CANCELED}


def test_metadata_matches_the_pending_request() -> None:
    mine = uuid.uuid4()
    asked = request_refund(_paid(), 2500, refund_id=mine, origin=RefundOrigin.MERCHANT).ledger
    settled = apply_reports(
        asked,
        (RefundReport("re_9", 2500, RefundStatus.SUCCEEDED, paygate_refund_id=mine),),
        provider_total_minor=2500,
    )
    assert [r.id for r in settled.ledger.refunds] == [mine]
    assert settled.ledger.refunds[0].credited_minor == 2500


def test_never_more_than_the_providers_total() -> None:
    ledger = _paid()
    outcome = apply_reports(
        ledger,
        (
            RefundReport("re_a", 4000, RefundStatus.SUCCEEDED),
            RefundReport("re_b", 4000, RefundStatus.SUCCEEDED),
        ),
        provider_total_minor=5000,
    )
    assert outcome.ledger.credited_minor == 5000


def test_a_total_without_its_list_is_recorded_once() -> None:
    outcome = apply_reports(_paid(), (), provider_total_minor=3000)
    assert outcome.ledger.credited_minor == 3000
    later = apply_reports(
        outcome.ledger, (RefundReport("re_x", 3000, RefundStatus.SUCCEEDED),), provider_total_minor=None
    )
    assert later.ledger.credited_minor == 3000  # the same money, reported again with its id


def test_dispute_open_suspends_won_restores_lost_refunds() -> None:
    opened = apply_dispute(_paid(), DisputeAction.CREATED, dispute_id="dp_1")
    assert opened.key_access is KeyAccess.SUSPENDED and opened.ledger.dispute_status is DisputeStatus.OPEN
    won = apply_dispute(opened.ledger, DisputeAction.CLOSED, dispute_id="dp_1", provider_status="won")
    assert won.key_access is KeyAccess.ACTIVE and not won.moves_to_refunded
    partial = request_refund(_paid(), 1000, refund_id=uuid.uuid4(), origin=RefundOrigin.OUTSIDE).ledger
    lost = apply_dispute(
        apply_dispute(partial, DisputeAction.CREATED, dispute_id="dp_2").ledger,
        DisputeAction.CLOSED,
        dispute_id="dp_2",
        provider_status="lost",
    )
    assert lost.moves_to_refunded and lost.key_access is KeyAccess.REVOKED
    assert lost.upserts[0].credited_minor == PRICE - 1000 and lost.ledger.credited_minor == PRICE
    funds = apply_dispute(opened.ledger, DisputeAction.FUNDS_WITHDRAWN, dispute_id="dp_1")
    assert funds.note == "dispute_funds_withdrawn" and funds.key_access is KeyAccess.SUSPENDED


# test_credit_notes_always_add_up_to_the_refunded_sum moved to test_session_refund_fault_rules.py as
# test_credit_notes_add_up_except_refunds_that_failed_after_success: a refund that fails after it succeeded
# keeps its credit note (a legal document) but no longer counts in amount_refunded.
