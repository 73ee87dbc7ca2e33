"""A merged refund names the refund that stands for it (domain/refunds.py `attach_provider_refund`): when the
provider's webhook recorded the refund before its API answered paygate, paygate cancels its own pending record
and links it to the provider's, so `refund.canceled` never reads as "the refund did not happen"."""

from __future__ import annotations

import uuid

import pytest

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

R = RefundStatus


def _merged() -> tuple[Refund, Refund]:
    rid = uuid.uuid4()
    paid = Ledger(status=SessionStatus.PAID, amount_minor=10_000)
    asked = request_refund(paid, 2000, refund_id=rid, origin=RefundOrigin.MERCHANT).ledger
    # The provider's webhook first, without paygate's id: recorded as the provider's own refund.
    reported = apply_reports(asked, (RefundReport("re_1", 2000, R.SUCCEEDED),), provider_total_minor=2000)
    outcome, standing = attach_provider_refund(reported.ledger, rid, "re_1", R.SUCCEEDED)
    [canceled] = outcome.upserts
    return canceled, standing


def test_the_canceled_record_of_a_merge_names_the_refund_that_stands() -> None:
    canceled, standing = _merged()
    assert standing.provider_refund_id == "re_1" and standing.status is R.SUCCEEDED
    assert (canceled.status, canceled.reason, canceled.credited_minor) == (R.CANCELED, "merged", 0)
    assert canceled.replaced_by == standing.id and canceled.provider_refund_id is None


def test_a_refund_canceled_at_the_provider_names_none() -> None:
    rid = uuid.uuid4()
    paid = Ledger(status=SessionStatus.PAID, amount_minor=10_000)
    asked = request_refund(paid, 2000, refund_id=rid, origin=RefundOrigin.MERCHANT).ledger
    attached = attach_provider_refund(asked, rid, "re_1", R.PENDING)[0].ledger
    outcome = apply_reports(
        attached, (RefundReport("re_1", 2000, R.CANCELED, rid),), provider_total_minor=None
    )
    [canceled] = outcome.upserts
    assert canceled.status is R.CANCELED and canceled.replaced_by is None


@pytest.mark.parametrize("status", [R.PENDING, R.SUCCEEDED, R.FAILED])
def test_only_a_canceled_refund_is_replaced(status: RefundStatus) -> None:
    with pytest.raises(ValueError, match="only a canceled refund"):
        Refund(uuid.uuid4(), 100, status, RefundOrigin.MERCHANT, replaced_by=uuid.uuid4())
