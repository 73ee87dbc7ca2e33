"""plan_settlement: which events, claims, quarantines and alerts follow from a session's ledger. Pure."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from webhook_gateway.chain.deposits_repository import Confirmation, DepositRow
from webhook_gateway.chain.settlement import NativeBalances, SessionInfo, plan_settlement

CHAIN = 31337
TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DEPOSIT = "0x1111111111111111111111111111111111111111"
EXPIRES = 1_700_000_000
SID = "7d0b7a1e-1f1e-4c43-9f6a-5f0f3c1b2a10"


def info(
    status: str = "created", amount: int = 100, token: str | None = TOKEN, confirmations: int = 2
) -> SessionInfo:
    return SessionInfo(
        session_id=SID,
        merchant_id="m",
        mode="test",
        status=status,
        amount_minor=amount,
        currency="TUSD" if token else "ETH",
        exponent=6 if token else 18,
        chain_id=CHAIN,
        deposit_address=DEPOSIT,
        token=token,
        min_confirmations=confirmations,
        expires_at=EXPIRES,
    )


def row(
    n: int, amount: int, block: int, *, late: bool = False, log: int = 0, **changes: object
) -> DepositRow:
    base = DepositRow(
        chain_id=CHAIN,
        tx_hash="0x" + f"{n:064x}",
        log_index=log,
        session_id=SID,
        deposit_address=DEPOSIT,
        token=TOKEN,
        from_address="0x2222222222222222222222222222222222222222",
        amount_minor=amount,
        block_number=block,
        block_hash="0x" + f"{block:064x}",
        block_timestamp=EXPIRES + 10 if late else EXPIRES - 100,
        canonical=True,
        source="watcher",
        claimed=False,
        reported_as=None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def confirmation(amount: int = 100, height: int = 10, applied: str | None = "applied") -> Confirmation:
    return Confirmation(SID, CHAIN, amount, height, "ref", EXPIRES - 100, applied)


def test_nothing_recorded_means_nothing_to_send() -> None:
    plan = plan_settlement(info(), [], head=50, confirmation=None)
    assert (plan.seen, plan.claim, plan.send_confirmed, plan.late, plan.extra, plan.alerts) == (
        None,
        None,
        False,
        (),
        (),
        (),
    )


def test_an_unconfirmed_deposit_is_seen_but_not_claimed() -> None:
    plan = plan_settlement(info(), [row(1, 100, block=50)], head=50, confirmation=None)
    assert plan.seen is not None and plan.seen.event_id == f"web3:{SID}:seen"
    assert plan.seen.provider_reference == "0x" + f"{1:064x}" + "#0"
    assert plan.claim is None and not plan.send_confirmed


def test_seen_is_only_sent_while_the_session_is_created() -> None:
    plan = plan_settlement(info(status="pending"), [row(1, 100, block=50)], head=50, confirmation=None)
    assert plan.seen is None


def test_confirmed_partial_payments_add_up_and_the_crossing_transfer_is_the_reference() -> None:
    rows = [row(1, 60, block=40), row(2, 30, block=41), row(3, 25, block=42)]
    plan = plan_settlement(info(status="pending"), rows, head=43, confirmation=None)
    assert plan.claim is not None and plan.send_confirmed
    assert plan.claim.amount_minor == 115  # the confirmed total, overpayment included
    assert plan.claim.provider_reference.startswith("0x" + f"{3:064x}")
    assert set(plan.claim.included) == {r.key for r in rows}
    assert plan.extra == ()


def test_below_the_price_nothing_is_claimed_however_confirmed() -> None:
    plan = plan_settlement(info(status="pending"), [row(1, 99, block=10)], head=500, confirmation=None)
    assert plan.claim is None and plan.confirmed_total == 99


def test_a_deposit_short_of_confirmations_does_not_count_yet() -> None:
    rows = [row(1, 60, block=40), row(2, 40, block=43)]  # the second has 1 of 2 confirmations
    plan = plan_settlement(info(status="pending"), rows, head=43, confirmation=None)
    assert plan.claim is None and plan.confirmed_total == 60 and plan.view.seen_total == 100


def test_an_applied_claim_is_not_sent_again_and_later_money_is_extra() -> None:
    rows = [row(1, 100, block=10, claimed=True), row(2, 5, block=20)]
    plan = plan_settlement(info(status="paid"), rows, head=30, confirmation=confirmation())
    assert not plan.send_confirmed and plan.claim is None
    assert [(e.event_id, e.amount_minor, e.reported_as) for e in plan.extra] == [
        (f"web3:{SID}:extra:{rows[1].tx_hash}:0", 5, "extra")
    ]


def test_an_unacknowledged_claim_is_sent_again_with_its_stored_amount() -> None:
    rows = [row(1, 100, block=10, claimed=True)]
    plan = plan_settlement(info(status="pending"), rows, head=30, confirmation=confirmation(applied=None))
    assert plan.send_confirmed and plan.claim is None and plan.extra == ()


def test_extra_money_waits_for_its_own_confirmations() -> None:
    rows = [row(1, 100, block=10, claimed=True), row(2, 5, block=30)]
    plan = plan_settlement(info(status="paid"), rows, head=30, confirmation=confirmation())
    assert plan.extra == ()


def test_late_money_expires_a_created_session_first() -> None:
    plan = plan_settlement(info(), [row(1, 100, block=10, late=True)], head=30, confirmation=None)
    assert plan.expire_first and plan.late == () and plan.seen is None and plan.claim is None


def test_late_money_on_a_closed_session_is_sent_on_its_own() -> None:
    late = row(1, 100, block=10, late=True)
    plan = plan_settlement(info(status="expired"), [late], head=30, confirmation=None)
    assert not plan.expire_first
    assert [(e.event_id, e.reported_as, e.occurred_at) for e in plan.late] == [
        (f"web3:{SID}:late:{late.tx_hash}:0", "late", EXPIRES + 10)
    ]


def test_late_money_waits_while_the_session_is_pending_or_unconfirmed() -> None:
    rows = [row(1, 10, block=10), row(2, 100, block=11, late=True)]
    assert plan_settlement(info(status="pending"), rows, head=30, confirmation=None).late == ()
    unconfirmed = [row(2, 100, block=30, late=True)]
    plan = plan_settlement(info(status="expired"), unconfirmed, head=30, confirmation=None)
    assert plan.late == () and not plan.expire_first


def test_reported_money_is_not_reported_twice() -> None:
    rows = [row(1, 100, block=10, late=True, reported_as="late")]
    assert plan_settlement(info(status="expired"), rows, head=30, confirmation=None).late == ()


def test_a_dropped_deposit_before_paid_simply_stops_counting() -> None:
    rows = [row(1, 100, block=10, canonical=False)]
    plan = plan_settlement(info(status="pending"), rows, head=30, confirmation=None)
    assert plan.claim is None and plan.alerts == () and plan.confirmed_total == 0


def test_a_dropped_deposit_after_paid_raises_reorged_after_paid() -> None:
    rows = [row(1, 100, block=10, claimed=True, canonical=False)]
    plan = plan_settlement(info(status="paid"), rows, head=30, confirmation=confirmation())
    assert [(a.code, a.reference) for a in plan.alerts] == [("reorged_after_paid", rows[0].tx_hash)]
    assert plan.extra == () and plan.late == ()


def test_a_dropped_deposit_that_was_never_counted_raises_no_alert_when_still_paid() -> None:
    rows = [row(1, 100, block=10, claimed=True), row(2, 7, block=11, canonical=False)]
    assert plan_settlement(info(status="paid"), rows, head=30, confirmation=confirmation()).alerts == ()


def test_native_coin_is_decided_by_the_balance_when_no_tx_shows_the_money() -> None:
    balances = NativeBalances(
        confirmed=100, seen=100, confirmed_block=29, confirmed_block_timestamp=EXPIRES - 5
    )
    plan = plan_settlement(info(token=None), [], head=30, confirmation=None, balances=balances)
    assert plan.seen is not None and plan.seen.provider_reference == DEPOSIT.lower()
    assert plan.claim is not None and plan.claim.amount_minor == 100
    assert plan.claim.provider_reference == DEPOSIT.lower() and plan.claim.confirmed_height == 29


def test_native_deposits_inside_the_counted_balance_are_not_extra() -> None:
    native = info(status="paid", token=None)
    rows = [row(1, 100, block=25, token=None, log=-1), row(2, 9, block=40, token=None, log=-1)]
    plan = plan_settlement(native, rows, head=45, confirmation=confirmation(height=29))
    assert [e.key for e in plan.extra] == [rows[1].key]


def test_no_claim_for_a_session_paid_by_other_means_and_its_money_is_reported_not_kept() -> None:
    # e.g. the merchant accepted a quarantined late payment: the session is paid without our claim.
    rows = [row(1, 100, block=10)]
    plan = plan_settlement(info(status="paid"), rows, head=30, confirmation=None)
    assert plan.claim is None and not plan.send_confirmed
    assert [e.key for e in plan.extra] == [rows[0].key]


def test_short_on_time_money_noticed_after_expiry_is_reported_on_its_own() -> None:
    rows = [row(1, 40, block=10)]
    plan = plan_settlement(info(status="expired"), rows, head=30, confirmation=None)
    assert plan.claim is None and [(e.key, e.amount_minor) for e in plan.extra] == [(rows[0].key, 40)]


deposits = st.lists(
    st.tuples(
        st.integers(1, 10**30),  # amount
        st.integers(0, 60),  # block
        st.booleans(),  # late
        st.booleans(),  # canonical
    ),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(deposits, st.integers(1, 10**30), st.integers(1, 6), st.integers(0, 70), st.randoms())
def test_money_is_never_counted_twice_and_order_does_not_matter(
    raw: list[tuple[int, int, bool, bool]], amount: int, confirmations: int, head: int, rng: object
) -> None:
    rows = [row(i, a, block=b, late=late, canonical=canon) for i, (a, b, late, canon) in enumerate(raw, 1)]
    session = info(status="pending", amount=amount, confirmations=confirmations)
    plan = plan_settlement(session, rows, head=head, confirmation=None)
    shuffled = list(rows)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert plan_settlement(session, shuffled, head=head, confirmation=None) == plan

    on_time_confirmed = sum(
        r.amount_minor
        for r in rows
        if r.canonical and r.block_timestamp <= EXPIRES and head - r.block_number + 1 >= confirmations
    )
    assert plan.confirmed_total == on_time_confirmed
    if plan.claim is not None:
        assert plan.claim.amount_minor == on_time_confirmed >= amount
        included = set(plan.claim.included)
        assert not included & {e.key for e in (*plan.extra, *plan.late)}
        assert all(r.canonical and r.block_timestamp <= EXPIRES for r in rows if r.key in included)
    else:
        assert on_time_confirmed < amount
