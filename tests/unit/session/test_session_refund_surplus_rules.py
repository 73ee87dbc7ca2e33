"""Pure rule of a provider refund larger than the price (domain/refunds.py): the price stays the ceiling of
what is credited, and the money returned beyond it is a surplus the merchant must see in quarantine
(`refund_exceeds_price`). The rule: the entries of a session add up to the highest surplus ever reported
(a high-water mark). A replayed report adds nothing, a larger total adds only what it adds, and a surplus that
shrinks (a refund failed since) adds nothing and takes no entry back."""

from __future__ import annotations

import uuid
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from session_service.domain.refunds import (
    Ledger,
    RefundOrigin,
    RefundReport,
    RefundStatus,
    apply_reports,
    refund_surplus_minor,
    request_refund,
)
from session_service.domain.states import SessionStatus

S = SessionStatus
PRICE = 10_000


def _paid() -> Ledger:
    return Ledger(status=S.PAID, amount_minor=PRICE)


def _ok(refund_id: str, amount: int) -> RefundReport:
    return RefundReport(refund_id, amount, RefundStatus.SUCCEEDED)


def test_a_refund_larger_than_the_price_credits_the_price_and_reports_the_surplus() -> None:
    outcome = apply_reports(_paid(), (_ok("rf_1", 15_000),), provider_total_minor=None)
    [refund] = outcome.ledger.refunds
    assert refund.amount_minor == 15_000 and refund.credited_minor == PRICE
    assert outcome.moves_to_refunded and outcome.ledger.status is S.REFUNDED
    assert outcome.surplus_minor == 5_000
    assert refund_surplus_minor(outcome.ledger) == 5_000
    assert outcome.ledger.surplus_quarantined_minor == 5_000


def test_a_replayed_report_adds_no_surplus() -> None:
    first = apply_reports(_paid(), (_ok("rf_1", 15_000),), provider_total_minor=None)
    again = apply_reports(first.ledger, (_ok("rf_1", 15_000),), provider_total_minor=None)
    assert again.surplus_minor == 0 and not again.changed


def test_a_larger_total_adds_only_the_new_surplus() -> None:
    first = apply_reports(_paid(), (), provider_total_minor=12_000)  # Stripe: the total alone
    assert first.surplus_minor == 2_000
    more = apply_reports(first.ledger, (_ok("re_1", 12_000), _ok("re_2", 3_000)), provider_total_minor=15_000)
    assert more.surplus_minor == 3_000 and more.ledger.surplus_quarantined_minor == 5_000
    assert more.ledger.credited_minor == PRICE


def test_the_providers_total_bounds_the_surplus() -> None:
    # Stripe lists more than its own total (a stale list): the total is the truth, not a surplus.
    outcome = apply_reports(_paid(), (_ok("re_a", 8_000), _ok("re_b", 8_000)), provider_total_minor=PRICE)
    assert outcome.ledger.credited_minor == PRICE and outcome.surplus_minor == 0


def test_a_surplus_stored_before_is_not_reported_again() -> None:
    # The ledger as stored after an entry of 5_000 exists (the sum of the session's entries).
    done = apply_reports(_paid(), (_ok("rf_1", 15_000),), provider_total_minor=None).ledger
    stored = replace(done, surplus_quarantined_minor=5_000)
    assert apply_reports(stored, (_ok("rf_1", 15_000),), provider_total_minor=None).surplus_minor == 0
    # A surplus that shrinks (the refund failed) opens nothing and takes nothing back.
    failed = apply_reports(
        stored, (RefundReport("rf_1", 15_000, RefundStatus.FAILED),), provider_total_minor=None
    )
    assert failed.surplus_minor == 0 and failed.ledger.surplus_quarantined_minor == 5_000
    # A later refund above the price again adds only beyond the highest surplus already shown.
    later = apply_reports(failed.ledger, (_ok("rf_2", 16_000),), provider_total_minor=None)
    assert later.surplus_minor == 1_000


def test_refunds_within_the_price_have_no_surplus() -> None:
    asked = request_refund(_paid(), None, refund_id=uuid.uuid4(), origin=RefundOrigin.OUTSIDE)
    assert asked.surplus_minor == 0 and refund_surplus_minor(asked.ledger) == 0
    exact = apply_reports(_paid(), (_ok("rf_1", PRICE),), provider_total_minor=PRICE)
    assert exact.surplus_minor == 0 and exact.moves_to_refunded


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["r1", "r2", "r3"]),
            st.integers(min_value=1, max_value=3 * PRICE),
            st.sampled_from([RefundStatus.SUCCEEDED, RefundStatus.PENDING, RefundStatus.FAILED]),
            st.one_of(st.none(), st.integers(min_value=0, max_value=3 * PRICE)),
        ),
        max_size=8,
    )
)
def test_entries_add_up_to_the_highest_surplus(
    events: list[tuple[str, int, RefundStatus, int | None]],
) -> None:
    ledger, opened, highest = _paid(), 0, 0
    for refund_id, amount, status, total in events:
        outcome = apply_reports(
            ledger, (RefundReport(refund_id, amount, status),), provider_total_minor=total
        )
        assert outcome.surplus_minor >= 0
        assert outcome.ledger.credited_minor <= PRICE
        opened += outcome.surplus_minor
        ledger = outcome.ledger
        highest = max(highest, refund_surplus_minor(ledger))
        assert opened == highest == ledger.surplus_quarantined_minor
