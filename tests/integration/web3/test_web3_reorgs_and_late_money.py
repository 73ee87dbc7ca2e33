"""Reorgs and late money on a real anvil chain of its own (these tests rewind the chain and move its clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from paygate.session.v1 import session_pb2
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
    running_chain,
    send_hint,
    wait_cursor_at_least,
    wait_for,
    wait_status,
    web3_merchant,
)

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
async def chain() -> AsyncIterator[Chain]:
    # Its own node: evm_revert and a clock pushed past expiry must not leak into the other modules' chain.
    async with running_chain() as chain:
        yield chain


@pytest.fixture
def stack_env(stack_env: dict[str, str], chain: Chain) -> dict[str, str]:
    return {**stack_env, **chain_env(chain, watcher=True)}


async def deposit_rows_where(stack: ServiceStack, session_id: str, canonical: bool) -> list[dict]:
    return [r for r in await ledger_rows(stack, session_id) if r["canonical"] is canonical]


async def test_a_reorg_removes_an_unconfirmed_payment(stack: ServiceStack, chain: Chain) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=3)
    session = await create_web3_session(stack, merchant, "0.03", "ETH")
    snapshot = await chain.anvil.rpc("evm_snapshot")
    tx = await chain.pay_eth(session["payment"]["deposit_address"], 30 * FINNEY)
    await wait_status(stack, merchant, session["id"], "pending")  # seen with one confirmation

    await chain.revert(snapshot)
    await chain.mine(5)  # a longer chain without the payment
    dropped = await wait_for(
        lambda: deposit_rows_where(stack, session["id"], canonical=False), what="the deposit to be dropped"
    )
    assert [r["tx_hash"] for r in dropped] == [tx]
    await chain.mine(3)
    await wait_cursor_at_least(stack, await chain.head())
    body = await get_session(stack, merchant, session["id"])
    # Never paid: the money never had enough confirmations. No backward move is needed either.
    assert body["status"] == "pending" and body["paid_at"] is None
    assert body["alerts"] == []


async def test_a_reorg_deeper_than_the_confirmations_after_paid_raises_an_alert(
    stack: ServiceStack, chain: Chain
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=2)
    session = await create_web3_session(stack, merchant, "4", "TUSD")
    snapshot = await chain.anvil.rpc("evm_snapshot")
    tx = await chain.pay_token(session["payment"]["deposit_address"], 4 * TUSD)
    await chain.mine(2)
    await wait_status(stack, merchant, session["id"], "paid")

    await chain.revert(snapshot)
    await chain.mine(6)

    async def alerted() -> list[dict]:
        return (await get_session(stack, merchant, session["id"]))["alerts"]

    alerts = await wait_for(alerted, what="a reorged_after_paid alert")
    assert [(a["code"], a["reference"]) for a in alerts] == [("reorged_after_paid", tx)]
    assert (await get_session(stack, merchant, session["id"]))["status"] == "paid"  # the merchant decides


async def test_a_payment_mined_after_expiry_is_quarantined_not_paid(
    stack: ServiceStack, chain: Chain
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    session = await create_web3_session(stack, merchant, "2", "TUSD", expires_in=300)
    reply = await stack.session.GetSession(session_pb2.GetSessionRequest(session_id=session["id"]), timeout=5)
    expires_at = reply.expires_at.seconds
    # The block that carries the payment is stamped after expiry: that, not when we notice, makes it late.
    await chain.anvil.rpc("evm_setNextBlockTimestamp", [hex(expires_at + 30)])
    tx = await chain.pay_token(session["payment"]["deposit_address"], 2 * TUSD)
    status, _ = await send_hint(stack, tx, session["id"])
    assert status == 200

    body = await wait_status(stack, merchant, session["id"], "expired")
    assert body["paid_at"] is None
    entries = await wait_for(lambda: quarantine(stack, merchant), what="the late payment in quarantine")
    assert [(e["reason"], e["session_id"]) for e in entries] == [("payment_on_closed_session", session["id"])]
    rows = await ledger_rows(stack, session["id"])
    assert [(r["tx_hash"], r["reported_as"], r["claimed"]) for r in rows] == [(tx, "late", False)]
