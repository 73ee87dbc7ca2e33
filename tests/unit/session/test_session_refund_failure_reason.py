"""A failed refund keeps why it failed (domain/refunds.py): the reason of the report that failed it, or the
refusal code of the provider's API; a later report never erases nor replaces it, and only a failed refund has
one."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from session_service.domain.refunds import (
    Ledger,
    Refund,
    RefundOrigin,
    RefundReport,
    RefundStatus,
    apply_reports,
    attach_provider_refund,
    request_refund,
)
from session_service.domain.states import SessionStatus

PRICE = 10_000
R = RefundStatus


def _paid() -> Ledger:
    return Ledger(status=SessionStatus.PAID, amount_minor=PRICE)


def _asked() -> tuple[Ledger, uuid.UUID]:
    rid = uuid.uuid4()
    ledger = request_refund(_paid(), 2000, refund_id=rid, origin=RefundOrigin.MERCHANT).ledger
    return ledger, rid


def test_a_pending_refund_fails_with_the_reports_reason() -> None:
    ledger, rid = _asked()
    ledger = attach_provider_refund(ledger, rid, "re_1", R.PENDING)[0].ledger
    outcome = apply_reports(
        ledger, (RefundReport("re_1", 2000, R.FAILED, rid, "declined"),), provider_total_minor=None
    )
    [refund] = outcome.upserts
    assert (refund.status, refund.failure_reason) == (R.FAILED, "declined")


def test_a_later_report_never_erases_nor_replaces_the_reason() -> None:
    failed = apply_reports(
        _paid(), (RefundReport("re_1", 2000, R.FAILED, None, "declined"),), provider_total_minor=None
    ).ledger
    for later in (
        RefundReport("re_1", 2000, R.FAILED),
        RefundReport("re_1", 2000, R.FAILED, None, "insufficient_funds"),
        RefundReport("re_1", 2000, R.PENDING),
    ):
        again = apply_reports(failed, (later,), provider_total_minor=None)
        assert not again.upserts
        [refund] = again.ledger.refunds
        assert refund.failure_reason == "declined"


def test_a_failure_reported_without_its_reason_learns_it_later() -> None:
    failed = apply_reports(_paid(), (RefundReport("re_1", 2000, R.FAILED),), provider_total_minor=None).ledger
    assert failed.refunds[0].failure_reason is None
    told = apply_reports(
        failed,
        (RefundReport("re_1", 2000, R.FAILED, None, "expired_or_canceled_card"),),
        provider_total_minor=None,
    )
    [refund] = told.upserts
    assert (refund.status, refund.failure_reason) == (R.FAILED, "expired_or_canceled_card")


def test_a_refund_failing_after_it_succeeded_keeps_the_reason() -> None:
    done = apply_reports(
        _paid(), (RefundReport("re_1", 2000, R.SUCCEEDED),), provider_total_minor=2000
    ).ledger
    failed = apply_reports(
        done, (RefundReport("re_1", 2000, R.FAILED, None, "lost_or_stolen_card"),), provider_total_minor=None
    )
    assert failed.failed_after_success[0].failure_reason == "lost_or_stolen_card"


@pytest.mark.parametrize("status", [R.SUCCEEDED, R.PENDING, R.CANCELED])
def test_only_a_failed_report_gives_a_reason(status: RefundStatus) -> None:
    ledger, rid = _asked()
    ledger = attach_provider_refund(ledger, rid, "re_1", R.PENDING)[0].ledger
    outcome = apply_reports(
        ledger, (RefundReport("re_1", 2000, status, rid, "declined"),), provider_total_minor=None
    )
    assert all(r.failure_reason is None for r in outcome.ledger.refunds)


def test_a_refusal_by_the_providers_api_records_its_code() -> None:
    ledger, rid = _asked()
    _, refund = attach_provider_refund(ledger, rid, f"refused:{rid}", R.FAILED, "amount_too_large")
    assert (refund.status, refund.failure_reason) == (R.FAILED, "amount_too_large")
    # A cancel has no reason.
    ledger, rid = _asked()
    _, canceled = attach_provider_refund(ledger, rid, "re_x", R.CANCELED, "amount_too_large")
    assert canceled.failure_reason is None


@given(st.sampled_from([R.PENDING, R.SUCCEEDED, R.CANCELED]))
def test_only_a_failed_refund_holds_a_reason(status: RefundStatus) -> None:
    with pytest.raises(ValueError):
        Refund(uuid.uuid4(), 100, status, RefundOrigin.PROVIDER, failure_reason="declined")
    assert Refund(uuid.uuid4(), 100, R.FAILED, RefundOrigin.PROVIDER, failure_reason="declined")
