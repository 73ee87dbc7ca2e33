"""The chain watcher against a real anvil chain: payments found without any notifier, resumable scanning."""

from __future__ import annotations

import asyncio

import pytest

from support.stack import ServiceStack
from support.web3_chain import (
    FINNEY,
    TUSD,
    Chain,
    chain_env,
    create_web3_session,
    get_session,
    ledger_rows,
    quarantine,
    wait_cursor_at_least,
    wait_for,
    wait_status,
    watcher_cursor,
    web3_merchant,
)

pytestmark = pytest.mark.chain


@pytest.fixture
def stack_env(stack_env: dict[str, str], chain: Chain) -> dict[str, str]:
    # A short re-scan window: a restarted watcher must find older blocks through its stored cursor.
    return {**stack_env, **chain_env(chain, watcher=True), "PAYGATE_CHAIN_RESCAN_BLOCKS": "2"}


async def test_eth_payment_found_by_the_watcher_goes_pending_then_paid(
    stack: ServiceStack, chain: Chain
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=3)
    session = await create_web3_session(stack, merchant, "0.04", "ETH")
    tx = await chain.pay_eth(session["payment"]["deposit_address"], 40 * FINNEY)

    await wait_status(stack, merchant, session["id"], "pending")  # seen, one confirmation of three
    await wait_cursor_at_least(stack, await chain.head())
    assert (await get_session(stack, merchant, session["id"]))["status"] == "pending"
    await chain.mine(2)
    paid = await wait_status(stack, merchant, session["id"], "paid")
    assert paid["amount_received_minor"] == 40 * FINNEY
    rows = await ledger_rows(stack, session["id"])
    assert [(r["tx_hash"], r["log_index"], r["source"]) for r in rows] == [(tx, -1, "watcher")]
    sources = [move["source_event_id"] for move in paid["history"]]
    assert f"web3:web3:{session['id']}:seen" in sources and f"web3:web3:{session['id']}:confirmed" in sources


async def test_token_payment_found_by_the_watcher(stack: ServiceStack, chain: Chain) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=2)
    session = await create_web3_session(stack, merchant, "7.25", "TUSD")
    tx = await chain.pay_token(session["payment"]["deposit_address"], 7_250_000)
    await chain.mine(1)

    paid = await wait_status(stack, merchant, session["id"], "paid")
    assert paid["amount_received_minor"] == 7_250_000
    rows = await ledger_rows(stack, session["id"])
    assert len(rows) == 1 and rows[0]["tx_hash"] == tx and rows[0]["log_index"] >= 0
    assert await quarantine(stack, merchant) == []


async def test_partial_token_payments_add_up_and_an_overpayment_is_recorded(
    stack: ServiceStack, chain: Chain
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    session = await create_web3_session(stack, merchant, "10", "TUSD")
    deposit = session["payment"]["deposit_address"]
    await chain.pay_token(deposit, 4 * TUSD)
    await wait_status(stack, merchant, session["id"], "pending")
    await chain.pay_token(deposit, 3 * TUSD)
    await wait_for(
        lambda: _rows_count(stack, session["id"], 2), what="the second partial payment to be recorded"
    )
    assert (await get_session(stack, merchant, session["id"]))["status"] == "pending"  # 7 of 10
    await chain.pay_token(deposit, 5 * TUSD)  # 12 of 10: paid, 2 over

    paid = await wait_status(stack, merchant, session["id"], "paid")
    assert paid["amount_received_minor"] == 12 * TUSD
    entries = await wait_for(lambda: quarantine(stack, merchant), what="the overpayment entry")
    assert [(e["reason"], e["session_id"]) for e in entries] == [("overpaid", session["id"])]
    amounts = sorted(int(r["amount_minor"]) for r in await ledger_rows(stack, session["id"]))
    assert amounts == [3 * TUSD, 4 * TUSD, 5 * TUSD]


async def _rows_count(stack: ServiceStack, session_id: str, count: int) -> bool:
    return len(await ledger_rows(stack, session_id)) >= count


async def test_eth_and_another_token_sent_to_a_token_session_do_not_count(
    stack: ServiceStack, chain: Chain
) -> None:
    """Neither pays the token session. The ETH is an asset paygate knows: it is recorded as a deposit of ETH
    and reported once as the wrong asset (quarantined: test_web3_wrong_asset.py). A token contract the merchant
    never configured is not paygate's to read and leaves no row."""
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    session = await create_web3_session(stack, merchant, "1", "TUSD")
    deposit = session["payment"]["deposit_address"]
    await chain.pay_eth(deposit, 5 * 10**18)
    await chain.pay_token(deposit, 5 * TUSD, token=chain.fake_token)
    await chain.mine(2)
    await wait_cursor_at_least(stack, await chain.head())
    await wait_cursor_at_least(stack, await chain.head())  # and one more full pass
    body = await get_session(stack, merchant, session["id"])
    assert body["status"] == "created" and body["paid_at"] is None
    rows = await ledger_rows(stack, session["id"])
    assert [(r["currency"], r["amount_minor"], r["reported_as"]) for r in rows] == [
        ("ETH", 5 * 10**18, "wrong_asset")
    ]


async def test_a_restarted_watcher_neither_misses_nor_double_counts(
    stack: ServiceStack, chain: Chain
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    token_session = await create_web3_session(stack, merchant, "3", "TUSD")
    eth_session = await create_web3_session(stack, merchant, "0.003", "ETH")
    before = await wait_cursor_at_least(stack, await chain.head())

    await stack.stop_service("gateway")
    token_tx = await chain.pay_token(token_session["payment"]["deposit_address"], 3 * TUSD)
    eth_tx = await chain.pay_eth(eth_session["payment"]["deposit_address"], 3 * FINNEY)
    await chain.mine(20)  # far beyond the 2-block re-scan window: only the stored cursor finds the payments
    head = await chain.head()
    assert await watcher_cursor(stack) == before
    await stack.start_service("gateway")

    for session in (token_session, eth_session):
        await wait_status(stack, merchant, session["id"], "paid")
    await wait_cursor_at_least(stack, head)
    await stack.stop_service("gateway")
    await stack.start_service("gateway")  # again: the same blocks must not count twice
    await chain.mine(3)
    await wait_cursor_at_least(stack, head + 3)

    token_rows = await ledger_rows(stack, token_session["id"])
    eth_rows = await ledger_rows(stack, eth_session["id"])
    assert [(r["tx_hash"], r["source"]) for r in token_rows] == [(token_tx, "watcher")]
    assert [(r["tx_hash"], r["source"]) for r in eth_rows] == [(eth_tx, "watcher")]
    assert (await get_session(stack, merchant, token_session["id"]))["amount_received_minor"] == 3 * TUSD
    assert (await get_session(stack, merchant, eth_session["id"]))["amount_received_minor"] == 3 * FINNEY
    assert await quarantine(stack, merchant) == []


async def test_only_one_replica_scans(stack: ServiceStack, chain: Chain) -> None:
    from paygate_runtime.db import create_pool
    from webhook_gateway.chain.watcher import WatcherLock

    await wait_cursor_at_least(stack, await chain.head())  # the stack's gateway scans: it holds the lock
    pool = await create_pool(stack.db.runtime_dsn("gateway"), "gateway", min_size=1, max_size=2)
    try:
        other = WatcherLock(pool, 31337)
        assert await other.try_acquire() is False
        await stack.stop_service("gateway")
        assert await wait_for(other.try_acquire, what="the lock to be free once the scanning replica stopped")
        await stack.start_service("gateway")
        await chain.mine(1)
        head = await chain.head()
        cursor_before = await watcher_cursor(stack)
        await asyncio.sleep(1.0)  # ten poll intervals: the restarted replica does not scan while we hold it
        assert await watcher_cursor(stack) == cursor_before and (cursor_before or 0) < head
        await other.release()
        await wait_cursor_at_least(stack, head)  # it takes over once the lock is free
    finally:
        await pool.close()
