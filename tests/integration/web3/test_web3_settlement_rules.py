"""On-chain settlement rules on a real anvil node of its own (issue 13): only new money counts, partial, over
and late payments each have one outcome, a pending web3 session expires, reorgs after paid are quarantined,
an xpub and a token are checked on chain when configured, and the merchant sees every transfer's stage."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from paygate.session.v1 import session_pb2
from paygate_dev.chain.test_token import TEST_TOKEN_DECIMALS, TEST_TOKEN_SYMBOL
from session_service.domain.deposit_addresses import derive_deposit_address
from support.stack import Merchant, ServiceStack
from support.web3_chain import (
    CHAIN_ID,
    FINNEY,
    TUSD,
    Chain,
    chain_env,
    create_web3_session,
    get_session,
    ledger_rows,
    quarantine,
    random_xpub,
    running_chain,
    send_hint,
    wait_cursor_at_least,
    wait_for,
    wait_inbox_final,
    wait_status,
    web3_merchant,
)

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
async def chain() -> AsyncIterator[Chain]:
    # Its own node: a test here rewinds the chain (evm_revert), which must not reach the other modules.
    async with running_chain() as chain:
        yield chain


@pytest.fixture
def stack_env(stack_env: dict[str, str], chain: Chain) -> dict[str, str]:
    return {
        **stack_env,
        **chain_env(chain, watcher=True),
        # A block stamped before the second a session was created is not its money (no slot skew on anvil).
        "PAYGATE_CHAIN_CREATION_SKEW_S": "0",
        # Pending web3 sessions expire as soon as expires_at passes; the sweeper looks often.
        "PAYGATE_CHAIN_PENDING_GRACE_S": "0",
        "PAYGATE_SWEEP_INTERVAL_MS": "100",
    }


async def move_expiry_to_the_past(stack: ServiceStack, session_id: str) -> None:
    """Play the clock forward for one session: its expires_at is now (the chain's clock is left alone)."""
    conn = await stack.db.admin()
    try:
        await conn.execute(
            "UPDATE session.sessions SET expires_at = now() - interval '200 milliseconds' WHERE id = $1",
            uuid.UUID(session_id),
        )
    finally:
        await conn.close()


async def deposits(stack: ServiceStack, merchant: Merchant, session_id: str) -> dict[str, Any]:
    status, body = await stack.request("GET", f"/v1/sessions/{session_id}/deposits", headers=merchant.headers)
    assert status == 200, body
    return body


async def entries_for(stack: ServiceStack, merchant: Merchant, session_id: str, count: int) -> list[dict]:
    async def check() -> list[dict] | None:
        found = [e for e in await quarantine(stack, merchant) if e["session_id"] == session_id]
        return found if len(found) >= count else None

    return await wait_for(check, what=f"{count} quarantine entries for {session_id}")


async def test_money_the_deposit_address_held_before_the_session_never_pays_it(
    stack: ServiceStack, chain: Chain
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    settings = await stack.session.GetPaymentSettings(
        session_pb2.GetPaymentSettingsRequest(merchant_id=merchant.id), timeout=5
    )
    # The address the next session will get already holds the whole price (a wallet used it before).
    address = derive_deposit_address(settings.onchain.xpub, settings.next_derivation_index)
    old_tx = await chain.pay_eth(address, 20 * FINNEY)
    await asyncio.sleep(1.1)  # block times are whole seconds: the session is created a second later
    session = await create_web3_session(stack, merchant, "0.02", "ETH")
    assert session["payment"]["deposit_address"] == address

    status, _ = await send_hint(stack, old_tx, session["id"])  # an old transfer announced as new
    assert status == 200
    await chain.mine(3)
    await wait_cursor_at_least(stack, await chain.head())
    await wait_cursor_at_least(stack, await chain.head())  # and one more full pass
    body = await get_session(stack, merchant, session["id"])
    assert body["status"] == "created" and body["paid_at"] is None
    assert await ledger_rows(stack, session["id"]) == []

    new_tx = await chain.pay_eth(address, 20 * FINNEY)
    paid = await wait_status(stack, merchant, session["id"], "paid")
    assert paid["amount_received_minor"] == 20 * FINNEY  # only the new money, not 40 finney
    assert [r["tx_hash"] for r in await ledger_rows(stack, session["id"])] == [new_tx]
    assert await quarantine(stack, merchant) == []


async def test_an_old_transfer_announced_by_the_notifier_is_recorded_as_before_the_session(
    stack: ServiceStack, chain: Chain
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    settings = await stack.session.GetPaymentSettings(
        session_pb2.GetPaymentSettingsRequest(merchant_id=merchant.id), timeout=5
    )
    address = derive_deposit_address(settings.onchain.xpub, settings.next_derivation_index)
    old_tx = await chain.pay_token(address, 5 * TUSD)
    await asyncio.sleep(1.1)
    session = await create_web3_session(stack, merchant, "5", "TUSD")
    status, reply = await send_hint(stack, old_tx, session["id"])
    assert status == 200
    row = await wait_inbox_final(stack, reply["event_id"])
    assert (row["status"], row["outcome"]) == ("ignored", "transfer_before_session")
    assert (await get_session(stack, merchant, session["id"]))["status"] == "created"


async def test_a_session_paid_in_three_transfers_is_paid_when_the_confirmed_sum_reaches_the_price(
    stack: ServiceStack, chain: Chain
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=2)
    session = await create_web3_session(stack, merchant, "0.03", "ETH")
    address = session["payment"]["deposit_address"]
    txs = [await chain.pay_eth(address, 10 * FINNEY) for _ in range(2)]
    await wait_status(stack, merchant, session["id"], "pending")
    txs.append(await chain.pay_eth(address, 10 * FINNEY))
    seen = await wait_for(
        lambda: _stages(stack, merchant, session["id"], 3), what="three transfers in the deposits view"
    )
    assert seen[-1] == "seen"  # the last one has one confirmation of two
    await chain.mine(1)
    paid = await wait_status(stack, merchant, session["id"], "paid")
    assert paid["amount_received_minor"] == 30 * FINNEY
    body = await deposits(stack, merchant, session["id"])
    assert [d["tx_hash"] for d in body["deposits"]] == txs
    assert {d["stage"] for d in body["deposits"]} == {"confirmed"}
    assert all(d["counted_in_payment"] for d in body["deposits"])
    assert await quarantine(stack, merchant) == []


async def _stages(stack: ServiceStack, merchant: Merchant, session_id: str, count: int) -> list[str] | None:
    body = await deposits(stack, merchant, session_id)
    stages = [d["stage"] for d in body["deposits"]]
    return stages if len(stages) >= count else None


async def test_an_underpaid_session_expires_after_its_grace_and_every_transfer_is_quarantined(
    stack: ServiceStack, chain: Chain
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    session = await create_web3_session(stack, merchant, "10", "TUSD")
    address = session["payment"]["deposit_address"]
    txs = [await chain.pay_token(address, 2 * TUSD), await chain.pay_token(address, 3 * TUSD)]
    await wait_status(stack, merchant, session["id"], "pending")
    await wait_for(lambda: _stages(stack, merchant, session["id"], 2), what="both transfers recorded")

    await asyncio.sleep(1.5)  # block times are whole seconds: expire after the second they were mined in
    await move_expiry_to_the_past(stack, session["id"])  # grace 0: the sweeper takes it now
    expired = await wait_status(stack, merchant, session["id"], "expired")
    assert expired["paid_at"] is None
    assert [(h["from"], h["to"]) for h in expired["history"]][-1] == ("pending", "expired")
    entries = await entries_for(stack, merchant, session["id"], 2)
    assert sorted(
        (e["provider_reference"].split("#")[0], int(e["amount"]["amount_minor"])) for e in entries
    ) == sorted([(txs[0], 2 * TUSD), (txs[1], 3 * TUSD)])
    assert {e["reason"] for e in entries} == {"payment_on_closed_session"}
    rows = await ledger_rows(stack, session["id"])
    assert {r["reported_as"] for r in rows} == {"extra"}  # sent on its own: never lost, never counted


async def test_the_merchant_may_expire_a_pending_web3_session_and_its_money_is_quarantined(
    stack: ServiceStack, chain: Chain
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    session = await create_web3_session(stack, merchant, "0.05", "ETH")
    tx = await chain.pay_eth(session["payment"]["deposit_address"], 1 * FINNEY)  # dust
    await wait_status(stack, merchant, session["id"], "pending")

    status, body = await stack.request(
        "POST", f"/v1/sessions/{session['id']}/expire", headers=merchant.headers
    )
    assert status == 200, body
    assert body["status"] == "expired"
    entries = await entries_for(stack, merchant, session["id"], 1)
    assert [(e["provider_reference"], int(e["amount"]["amount_minor"])) for e in entries] == [
        (tx, 1 * FINNEY)
    ]


async def test_a_card_pending_session_still_cannot_be_expired(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant("Card Shop", "card")
    status, session = await stack.request(
        "POST", "/v1/sessions", json={"amount": "5.00", "currency": "EUR"}, headers=merchant.headers
    )
    assert status == 201, session
    conn = await stack.db.admin()
    try:
        await conn.execute(
            "UPDATE session.sessions SET status = 'pending', expires_at = now() - interval '1 hour' WHERE id = $1",
            uuid.UUID(session["id"]),
        )
    finally:
        await conn.close()
    status, body = await stack.request(
        "POST", f"/v1/sessions/{session['id']}/expire", headers=merchant.headers
    )
    assert status == 409, body
    assert body["error"]["code"] == "session_not_expirable"
    await asyncio.sleep(
        1.0
    )  # ten sweeper intervals: a card pending session is never swept (the provider decides)
    assert (await get_session(stack, merchant, session["id"]))["status"] == "pending"


async def test_an_overpayment_pays_and_quarantines_the_surplus(stack: ServiceStack, chain: Chain) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    session = await create_web3_session(stack, merchant, "0.01", "ETH")
    await chain.pay_eth(session["payment"]["deposit_address"], 15 * FINNEY)
    paid = await wait_status(stack, merchant, session["id"], "paid")
    assert paid["amount_received_minor"] == 15 * FINNEY
    entries = await entries_for(stack, merchant, session["id"], 1)
    assert [(e["reason"], int(e["surplus"]["amount_minor"])) for e in entries] == [("overpaid", 5 * FINNEY)]


async def test_a_payment_after_expiry_is_quarantined_not_paid(stack: ServiceStack, chain: Chain) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    session = await create_web3_session(stack, merchant, "0.02", "ETH")
    await move_expiry_to_the_past(stack, session["id"])
    await wait_status(stack, merchant, session["id"], "expired")
    await asyncio.sleep(1.1)  # the paying block is stamped after expires_at
    tx = await chain.pay_eth(session["payment"]["deposit_address"], 20 * FINNEY)
    entries = await entries_for(stack, merchant, session["id"], 1)
    assert [(e["reason"], e["provider_reference"]) for e in entries] == [("payment_on_closed_session", tx)]
    body = await get_session(stack, merchant, session["id"])
    assert body["status"] == "expired" and body["paid_at"] is None
    rows = await ledger_rows(stack, session["id"])
    assert [(r["tx_hash"], r["reported_as"]) for r in rows] == [(tx, "late")]


async def test_a_reorg_deeper_than_the_confirmations_after_paid_keeps_paid_and_opens_a_quarantine_entry(
    stack: ServiceStack, chain: Chain
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=2)
    session = await create_web3_session(stack, merchant, "3", "TUSD")
    snapshot = await chain.anvil.rpc("evm_snapshot")
    tx = await chain.pay_token(session["payment"]["deposit_address"], 3 * TUSD)
    await chain.mine(2)
    await wait_status(stack, merchant, session["id"], "paid")

    await chain.revert(snapshot)
    await chain.mine(6)
    entries = await entries_for(stack, merchant, session["id"], 1)
    assert [(e["reason"], e["provider_reference"], int(e["amount"]["amount_minor"])) for e in entries] == [
        ("reorged_after_paid", tx, 3 * TUSD)
    ]
    assert "left the canonical chain" in entries[0]["note"]  # the entry says why, to the merchant
    assert (await get_session(stack, merchant, session["id"]))["status"] == "paid"
    body = await deposits(stack, merchant, session["id"])
    assert [(d["tx_hash"], d["stage"]) for d in body["deposits"]] == [(tx, "reorged_out")]


async def test_chain_status_shows_the_head_and_the_lag(stack: ServiceStack, chain: Chain) -> None:
    merchant = await web3_merchant(stack, chain)
    await wait_cursor_at_least(stack, await chain.head())
    status, body = await stack.request("GET", "/v1/chain/status", headers=merchant.headers)
    assert status == 200, body
    assert body["configured"] is True and body["chain_id"] == CHAIN_ID and body["mode"] == "test"
    assert body["node_reachable"] is True and body["head"] >= body["scanned_block"] >= 0
    assert body["lag_blocks"] == body["head"] - body["scanned_block"]
    assert body["internal_transfers"] == "traces"  # anvil answers trace_block
    assert body["failing_addresses"] == []
    status, body = await stack.request("GET", "/v1/chain/status")
    assert status == 401


async def settings_request(xpub: str, tokens: list[tuple[str, str, int]], **extra: Any) -> Any:
    return session_pb2.UpdatePaymentSettingsRequest(
        settings=session_pb2.PaymentSettings(
            merchant_id=extra.pop("merchant_id"),
            default_currency="EUR",
            onchain=session_pb2.OnchainSettings(
                chain_id=CHAIN_ID,
                xpub=xpub,
                min_confirmations=1,
                tokens=[session_pb2.AcceptedToken(address=a, symbol=s, decimals=d) for a, s, d in tokens],
            ),
        ),
        **extra,
    )


async def refused(stack: ServiceStack, request: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.session.UpdatePaymentSettings(request, timeout=10)
    codes = dict(caught.value.trailing_metadata() or ())
    return caught.value.code(), str(codes.get("paygate-error-code", ""))


# Runtime code answering decimals() with 18 and symbol() with "WETH", anything else reverting.
_WETH_LIKE = bytes.fromhex(
    "60003560e01c"  # selector = calldata[0:4]
    "80" + "63313ce567" + "14" + "601e" + "57"  # decimals() -> 0x1e
    "6395d89b41" + "14" + "6029" + "57"  # symbol() -> 0x29
    "60006000fd"  # revert
    "5b" + "6012600052" + "60206000f3"  # 0x1e: return uint 18
    "5b" + "6020600052" + "6004602052" + "7f" + b"WETH".hex().ljust(64, "0") + "604052" + "60606000f3"
)


async def test_token_decimals_and_symbol_are_read_from_the_chain(stack: ServiceStack, chain: Chain) -> None:
    merchant = await stack.create_merchant("Token Shop", "tok")
    weth_like = "0x" + uuid.uuid4().hex[:8] + "00" * 16
    await chain.anvil.rpc("anvil_setCode", [weth_like, "0x" + _WETH_LIKE.hex()])
    weth_like = chain.w3.to_checksum_address(weth_like)
    xpub = random_xpub()

    # An 18-decimal token configured as 6 would price every session 10^12 times too low.
    assert await refused(
        stack, await settings_request(xpub, [(weth_like, "WETH", 6)], merchant_id=merchant.id)
    ) == (grpc.StatusCode.INVALID_ARGUMENT, "token_decimals_mismatch")
    assert await refused(
        stack,
        await settings_request(xpub, [(chain.token, "USDC", TEST_TOKEN_DECIMALS)], merchant_id=merchant.id),
    ) == (grpc.StatusCode.INVALID_ARGUMENT, "token_symbol_mismatch")
    assert await refused(
        stack, await settings_request(xpub, [(chain.payer, "NOPE", 6)], merchant_id=merchant.id)
    ) == (grpc.StatusCode.INVALID_ARGUMENT, "token_not_erc20")
    reply = await stack.session.UpdatePaymentSettings(
        await settings_request(
            xpub,
            [(weth_like, "WETH", 18), (chain.token, TEST_TOKEN_SYMBOL, TEST_TOKEN_DECIMALS)],
            merchant_id=merchant.id,
        ),
        timeout=10,
    )
    assert sorted((t.symbol, t.decimals) for t in reply.onchain.tokens) == [("TUSD", 6), ("WETH", 18)]


async def test_an_xpub_with_history_needs_the_merchants_confirmation_and_belongs_to_one_merchant(
    stack: ServiceStack, chain: Chain
) -> None:
    first = await stack.create_merchant("First", "first")
    second = await stack.create_merchant("Second", "second")
    xpub = random_xpub()
    await chain.pay_eth(derive_deposit_address(xpub, 2), 1 * FINNEY)  # a wallet already used address 2

    assert await refused(stack, await settings_request(xpub, [], merchant_id=first.id)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "xpub_in_use_on_chain",
    )
    await stack.session.UpdatePaymentSettings(
        await settings_request(xpub, [], merchant_id=first.id, allow_used_xpub=True), timeout=10
    )
    # Saving the same settings again is no new xpub: no confirmation needed.
    await stack.session.UpdatePaymentSettings(
        await settings_request(xpub, [], merchant_id=first.id), timeout=10
    )
    # The second merchant would share every deposit address with the first.
    assert await refused(
        stack, await settings_request(xpub, [], merchant_id=second.id, allow_used_xpub=True)
    ) == (grpc.StatusCode.ALREADY_EXISTS, "xpub_in_use")


# Runtime code of a minimal contract wallet: forwards the call's value to the address in calldata[0:32].
_FORWARDER = bytes.fromhex("6000600060006000" + "34" + "600035" + "5a" + "f1" + "50" + "00")


async def test_eth_forwarded_by_a_contract_wallet_is_found_in_the_nodes_traces(
    stack: ServiceStack, chain: Chain
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    session = await create_web3_session(stack, merchant, "0.004", "ETH")
    wallet = chain.w3.to_checksum_address("0x" + uuid.uuid4().hex[:8] + "11" * 16)
    await chain.anvil.rpc("anvil_setCode", [wallet, "0x" + _FORWARDER.hex()])
    address = session["payment"]["deposit_address"]
    tx = await chain.w3.eth.send_transaction(
        {
            "from": chain.payer,
            "to": wallet,
            "value": 4 * FINNEY,
            "data": "0x" + address[2:].lower().rjust(64, "0"),
        }
    )
    await chain.w3.eth.wait_for_transaction_receipt(tx)
    assert await chain.w3.eth.get_balance(address) == 4 * FINNEY  # no tx's `to` is the deposit address

    paid = await wait_status(stack, merchant, session["id"], "paid")
    assert paid["amount_received_minor"] == 4 * FINNEY
    body = await deposits(stack, merchant, session["id"])
    assert [(d["tx_hash"], d["kind"], d["from"]) for d in body["deposits"]] == [
        (tx.to_0x_hex(), "native_internal", wallet)
    ]
