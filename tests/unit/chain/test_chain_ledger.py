from __future__ import annotations

import pytest

from paygate_runtime.errors import InvalidArgument
from webhook_gateway.chain.ledger import (
    ALERT_REORGED_AFTER_PAID,
    Deposit,
    Stage,
    evaluate_deposits,
    stage_event_id,
)

SESSION = "3f0c2a9e-0000-4000-8000-000000000001"
EXPIRES_AT = 1_800_000_000


def deposit(
    n: int, *, block: int, amount: int, ts: int = EXPIRES_AT - 60, canonical: bool = True, log_index: int = -1
) -> Deposit:
    return Deposit(
        tx_hash=f"0x{n:064x}",
        log_index=log_index,
        block_number=block,
        block_hash=f"0x{block:060x}{n:04x}",
        block_timestamp=ts,
        amount_minor=amount,
        canonical=canonical,
    )


def evaluate(deposits: list[Deposit], *, head: int, already_paid: bool = False, amount: int = 1_000):
    return evaluate_deposits(
        SESSION,
        deposits,
        head=head,
        min_confirmations=3,
        amount_minor=amount,
        expires_at=EXPIRES_AT,
        already_paid=already_paid,
    )


def test_no_deposits_no_events() -> None:
    view = evaluate([], head=100)
    assert (view.seen_total, view.confirmed_total, view.events) == (0, 0, ())
    assert not view.paid
    assert view.outstanding_minor == 1_000


def test_unconfirmed_full_payment_is_only_seen() -> None:
    view = evaluate([deposit(1, block=99, amount=1_000)], head=100)  # 2 confirmations < 3
    assert view.seen_total == 1_000
    assert view.confirmed_total == 0
    assert [(e.event_id, e.status, e.amount_minor) for e in view.events] == [
        (f"web3:{SESSION}:seen", "pending", 1_000)
    ]
    assert not view.paid


def test_reaching_min_confirmations_emits_confirmed_with_the_confirmed_total() -> None:
    view = evaluate([deposit(1, block=98, amount=1_000)], head=100)  # exactly 3 confirmations
    assert view.paid
    assert [(e.stage, e.status, e.amount_minor) for e in view.events] == [
        (Stage.SEEN, "pending", 1_000),
        (Stage.CONFIRMED, "succeeded", 1_000),
    ]
    assert view.events[1].event_id == f"web3:{SESSION}:confirmed"
    assert view.events[0].event_id != view.events[1].event_id


def test_partial_payments_add_up_only_once_each_is_confirmed() -> None:
    deposits = [
        deposit(1, block=90, amount=400),
        deposit(2, block=95, amount=350),
        deposit(3, block=99, amount=250),
    ]
    at_99 = evaluate(deposits, head=99)  # third has 1 confirmation
    assert (at_99.seen_total, at_99.confirmed_total) == (1_000, 750)
    assert [e.stage for e in at_99.events] == [Stage.SEEN]
    assert at_99.outstanding_minor == 250

    at_101 = evaluate(deposits, head=101)
    assert at_101.confirmed_total == 1_000
    assert at_101.events[-1].stage is Stage.CONFIRMED
    assert at_101.events[-1].amount_minor == 1_000


def test_overpayment_is_recorded_in_the_confirmed_amount() -> None:
    view = evaluate([deposit(1, block=90, amount=700), deposit(2, block=91, amount=700)], head=100)
    assert view.paid
    assert view.events[-1].amount_minor == 1_400
    assert view.overpaid_minor == 400


def test_underpayment_never_confirms() -> None:
    view = evaluate([deposit(1, block=50, amount=999)], head=100)
    assert not view.paid
    assert [e.stage for e in view.events] == [Stage.SEEN]


def test_lateness_is_judged_by_block_time_not_by_confirmation_time() -> None:
    on_time = deposit(1, block=90, amount=600, ts=EXPIRES_AT)  # mined at the last open second
    late = deposit(2, block=91, amount=600, ts=EXPIRES_AT + 1)
    view = evaluate([on_time, late], head=200)
    assert view.late == (late,)
    assert view.counted == (on_time,)
    assert view.confirmed_total == 600
    assert not view.paid


def test_money_mined_before_expiry_but_confirmed_after_still_counts() -> None:
    # The head block may be far past expiry; only the including block's timestamp matters.
    view = evaluate([deposit(1, block=100, amount=1_000, ts=EXPIRES_AT - 1)], head=102)
    assert view.paid
    assert view.late == ()


def test_only_late_money_sends_no_event() -> None:
    view = evaluate([deposit(1, block=90, amount=5_000, ts=EXPIRES_AT + 10)], head=200)
    assert view.events == ()
    assert view.late[0].amount_minor == 5_000


def test_reorged_unconfirmed_deposit_is_dropped_without_alert() -> None:
    kept = deposit(1, block=90, amount=500)
    gone = deposit(2, block=99, amount=500, canonical=False)
    view = evaluate([kept, gone], head=100)
    assert view.dropped == (gone,)
    assert view.seen_total == 500
    assert view.confirmed_total == 500
    assert not view.paid
    assert view.alerts == ()


def test_reorg_deeper_than_confirmations_after_paid_raises_alert() -> None:
    gone = deposit(1, block=90, amount=1_000, canonical=False)
    view = evaluate([gone], head=100, already_paid=True)
    assert view.confirmed_total == 0
    assert not view.paid
    assert view.reorged_after_paid
    assert view.alerts == (ALERT_REORGED_AFTER_PAID,)
    assert all(e.stage is not Stage.CONFIRMED for e in view.events)


def test_reorg_of_surplus_deposit_after_paid_is_not_an_alert() -> None:
    # The session is still fully paid by what remains canonical.
    view = evaluate(
        [deposit(1, block=80, amount=1_000), deposit(2, block=99, amount=200, canonical=False)],
        head=100,
        already_paid=True,
    )
    assert view.paid
    assert view.alerts == ()


def test_deposits_are_keyed_per_log_so_two_logs_of_one_tx_both_count() -> None:
    a = deposit(1, block=80, amount=400, log_index=0)
    b = Deposit(a.tx_hash, 1, a.block_number, a.block_hash, a.block_timestamp, 600)
    view = evaluate([a, b], head=100)
    assert view.confirmed_total == 1_000
    assert view.paid


def test_event_ids_are_stable_and_per_stage() -> None:
    assert stage_event_id("s1", Stage.SEEN) == "web3:s1:seen"
    assert stage_event_id("s1", Stage.CONFIRMED) == "web3:s1:confirmed"


def test_no_expiry_means_nothing_is_late() -> None:
    view = evaluate_deposits(
        SESSION,
        [deposit(1, block=1, amount=1, ts=2**40)],
        head=10,
        min_confirmations=1,
        amount_minor=1,
        expires_at=None,
    )
    assert view.paid and view.late == ()


@pytest.mark.parametrize(
    ("amount", "min_conf", "code"), [(0, 1, "invalid_amount"), (1, 0, "invalid_min_confirmations")]
)
def test_bad_policy_is_refused(amount: int, min_conf: int, code: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        evaluate_deposits(
            SESSION, [], head=1, min_confirmations=min_conf, amount_minor=amount, expires_at=None
        )
    assert err.value.code == code
