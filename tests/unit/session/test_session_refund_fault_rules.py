"""Pure rules for refund and dispute events that arrive late or change their mind (domain/refunds.py): a closed
dispute never reopens, a refund that fails after it succeeded stops crediting without the provider's earlier
total crediting it again, and the credit-note property of test_session_refund_rules with that one exception
(the credit note of a refund that failed after it succeeded stands)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

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


T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    """The provider's time of an event (Stripe's `created`), `seconds` after T0."""
    return T0 + timedelta(seconds=seconds)


def _reported(
    ledger: Ledger, rid: str, amount: int, status: RefundStatus, *, total: int | None, seconds: int
) -> Ledger:
    """The ledger after one event reporting one refund (and the provider's total, if any) at `seconds`."""
    report = (RefundReport(rid, amount, status),)
    return apply_reports(ledger, report, provider_total_minor=total, reported_at=at(seconds)).ledger


def _succeeded_then_failed(*others: RefundReport) -> Ledger:
    """re_1 (2000) succeeds in a `charge.refunded` (with `others`) at 10 s, then is reported failed at 20 s."""
    listed = (RefundReport("re_1", 2000, RefundStatus.SUCCEEDED), *others)
    done = apply_reports(
        _paid(), listed, provider_total_minor=sum(r.amount_minor for r in listed), reported_at=at(10)
    ).ledger
    failed = apply_reports(
        done,
        (RefundReport("re_1", 2000, RefundStatus.FAILED),),
        provider_total_minor=None,
        reported_at=at(20),
    )
    assert failed.failed_after_success and failed.ledger.credited_minor == done.credited_minor - 2000
    return failed.ledger


def test_an_older_total_never_credits_a_refund_that_failed_again() -> None:
    # An older `charge.refunded` (sent before the failure, delivered after it) still counts re_1 in its total:
    # listing re_1 as succeeded, or listing no refund at all, it must not credit the failed money again.
    failed = _succeeded_then_failed()
    for listed in ((RefundReport("re_1", 2000, RefundStatus.SUCCEEDED),), ()):
        for sent in (5, 10, 19):
            late = apply_reports(failed, listed, provider_total_minor=2000, reported_at=at(sent))
            assert late.ledger.credited_minor == 0, late.ledger.refunds
            assert late.upserts == () and late.failed_after_success == ()
            assert [r.status for r in late.ledger.refunds] == [RefundStatus.FAILED]
    # Beside a refund that stands, the older total (both refunds) credits only the one that stands.
    both = _succeeded_then_failed(RefundReport("re_2", 3000, RefundStatus.SUCCEEDED))
    assert both.credited_minor == 3000
    for listed in (
        (
            RefundReport("re_1", 2000, RefundStatus.SUCCEEDED),
            RefundReport("re_2", 3000, RefundStatus.SUCCEEDED),
        ),
        (),
    ):
        late = apply_reports(both, listed, provider_total_minor=5000, reported_at=at(10))
        assert late.ledger.credited_minor == 3000


def test_an_older_total_never_credits_a_pending_refund_that_was_canceled() -> None:
    pending = _reported(_paid(), "re_1", 2000, RefundStatus.PENDING, total=2000, seconds=10)
    canceled = _reported(pending, "re_1", 2000, RefundStatus.CANCELED, total=None, seconds=20)
    late = apply_reports(canceled, (), provider_total_minor=2000, reported_at=at(10))
    assert late.ledger.credited_minor == 0


def test_a_newer_total_after_a_failure_credits_what_it_lists_and_is_not_lowered_again() -> None:
    # Stripe's `charge.refunded` after the failure lists re_1 failed and a new refund; its total (3000) already
    # leaves re_1 out, so re_1's failure in the same event must not lower it by 2000 again.
    failed = _succeeded_then_failed()
    fresh = apply_reports(
        failed,
        (RefundReport("re_1", 2000, RefundStatus.FAILED), RefundReport("re_2", 3000, RefundStatus.SUCCEEDED)),
        provider_total_minor=3000,
        reported_at=at(30),
    )
    assert fresh.ledger.credited_minor == 3000 and fresh.failed_after_success == ()
    assert fresh.ledger.provider_total_minor == 3000
    # The same in one event for a refund that had succeeded: its failure and the new total arrive together.
    done = _reported(_paid(), "re_1", 2000, RefundStatus.SUCCEEDED, total=2000, seconds=10)
    together = apply_reports(
        done,
        (RefundReport("re_1", 2000, RefundStatus.FAILED), RefundReport("re_2", 3000, RefundStatus.SUCCEEDED)),
        provider_total_minor=3000,
        reported_at=at(30),
    )
    assert together.ledger.credited_minor == 3000 and together.ledger.provider_total_minor == 3000


def test_a_newer_total_without_its_list_is_trusted_as_it_is() -> None:
    # A refund made in Stripe's dashboard after re_1 failed, reported only by a newer bare total (API versions
    # whose charge carries no refund list): the total is the provider's word as of that event, so it credits.
    failed = _succeeded_then_failed()
    bare = apply_reports(failed, (), provider_total_minor=3000, reported_at=at(30)).ledger
    assert bare.credited_minor == 3000 and bare.provider_total_as_of == at(30)
    # ... and the same refund named later by its own event credits nothing twice.
    named = _reported(bare, "re_2", 3000, RefundStatus.SUCCEEDED, total=None, seconds=31)
    assert named.credited_minor == 3000


def test_a_failure_reported_after_a_newer_total_does_not_lower_it() -> None:
    # The newer total (5000 at 30 s: re_2 of 5000 made after re_1 failed) arrives before re_1's failure (20 s):
    # that total already leaves re_1 out, so the failure must not take 2000 off it.
    done = _reported(_paid(), "re_1", 2000, RefundStatus.SUCCEEDED, total=2000, seconds=10)
    newer = apply_reports(done, (), provider_total_minor=5000, reported_at=at(30)).ledger
    failed = _reported(newer, "re_1", 2000, RefundStatus.FAILED, total=None, seconds=20)
    assert failed.provider_total_minor == 5000 and failed.provider_total_as_of == at(30)
    # re_2, once named, credits what the total says was returned besides what still stands.
    named = _reported(failed, "re_2", 5000, RefundStatus.SUCCEEDED, total=None, seconds=31)
    assert named.credited_minor == 5000


def test_without_the_providers_time_totals_are_compared_by_size() -> None:
    # One.com's events carry no time: a total then only ever raises the stored one, as before.
    ledger = apply_reports(_paid(), (), provider_total_minor=3000).ledger
    assert apply_reports(ledger, (), provider_total_minor=1000).ledger.provider_total_minor == 3000
    assert apply_reports(ledger, (), provider_total_minor=4000).ledger.credited_minor == 4000


# A provider's life: each refund goes through one of Stripe's paths; after each change the provider sends one
# event: its `charge.refunded` (every refund and the total), a bare total, or the refund alone. The provider's
# total leaves out refunds that failed or were canceled.
_PATHS = (
    ("succeeded",),
    ("succeeded", "failed"),
    ("pending", "succeeded"),
    ("pending", "succeeded", "failed"),
    ("pending", "failed"),
    ("pending", "canceled"),
)

Event = tuple[tuple[RefundReport, ...], int | None, datetime]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_an_older_event_never_credits_money_of_a_refund_known_to_have_failed(data: st.DataObject) -> None:
    """Events delivered in order, then earlier ones delivered again late (as Stripe may: another event id, an
    older `created`): a late event never credits money of a refund paygate knows failed or was canceled.
    What is credited stays within what the refunds not known to have failed returned (or what was credited
    already: a bare total can stand for a refund that later failed unnamed, which is outside this rule)."""
    paths = data.draw(st.lists(st.sampled_from(_PATHS), min_size=1, max_size=4))
    amounts = data.draw(st.lists(st.integers(1, PRICE // 4), min_size=len(paths), max_size=len(paths)))
    now: dict[str, tuple[int, RefundStatus]] = {}
    todo = {f"re_{i}": list(path) for i, path in enumerate(paths)}
    amount_of = {f"re_{i}": amount for i, amount in enumerate(amounts)}
    events: list[Event] = []
    while any(todo.values()):
        rid = data.draw(st.sampled_from(sorted(k for k, v in todo.items() if v)))
        now[rid] = (amount_of[rid], RefundStatus(todo[rid].pop(0)))
        total = sum(a for a, s in now.values() if s in (RefundStatus.PENDING, RefundStatus.SUCCEEDED))
        kind = data.draw(st.sampled_from(["charge", "total", "refund"]))
        sent = at(len(events))
        if kind == "charge":
            events.append((tuple(RefundReport(k, a, s) for k, (a, s) in now.items()), total, sent))
        elif kind == "total":
            events.append(((), total, sent))
        else:
            events.append(((RefundReport(rid, *now[rid]),), None, sent))
    ledger = _paid()
    for reports, total, sent in events:
        ledger = apply_reports(ledger, reports, provider_total_minor=total, reported_at=sent).ledger
    in_order = ledger.credited_minor
    late = data.draw(st.lists(st.sampled_from(events), max_size=6))
    for reports, total, sent in late:
        ledger = apply_reports(ledger, reports, provider_total_minor=total, reported_at=sent).ledger
        gone = {
            r.provider_refund_id
            for r in ledger.refunds
            if r.status in (RefundStatus.FAILED, RefundStatus.CANCELED)
        }
        standing = sum(a for rid, a in amount_of.items() if rid not in gone)
        assert ledger.credited_minor <= max(in_order, standing), (ledger.refunds, standing)
