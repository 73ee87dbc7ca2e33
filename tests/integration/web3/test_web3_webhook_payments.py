"""POST /webhooks/web3 against a real anvil chain: the hint is checked on the chain, never believed.

The watcher is off in this module, so everything a session gets here came through the webhook path; the
gateway reaches anvil through a pass-through proxy that a test can take down (an RPC node outage).
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from web3 import AsyncWeb3

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate_dev.chain.test_token import token_contract
from paygate_dev.devtools.signing import standard_delivery
from support.stack import Merchant, ServiceStack
from support.web3_chain import (
    CHAIN_ID,
    FINNEY,
    TUSD,
    Chain,
    RpcProxy,
    chain_env,
    create_web3_session,
    get_session,
    inbox_event,
    ledger_rows,
    send_hint,
    wait_for,
    wait_inbox_final,
    wait_status,
    web3_merchant,
)

pytestmark = pytest.mark.chain

LIVE_WEB3_SECRET = "whsec_" + base64.b64encode(b"live-web3-notifier-secret-32byte").decode()


@pytest.fixture
async def rpc_proxy(chain: Chain) -> AsyncIterator[RpcProxy]:
    proxy = RpcProxy(chain.anvil.rpc_url)
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture
def stack_env(stack_env: dict[str, str], chain: Chain, rpc_proxy: RpcProxy) -> dict[str, str]:
    return {
        **stack_env,
        **chain_env(chain, watcher=False, rpc_url=rpc_proxy.url),
        # An unknown tx hash is retried this long (it may not have propagated yet), then ignored.
        "PAYGATE_CHAIN_TX_WAIT_S": "1",
        "PAYGATE_WEB3_WEBHOOK_SECRETS_LIVE": LIVE_WEB3_SECRET,
    }


async def final_outcome(stack: ServiceStack, reply: dict[str, Any]) -> tuple[str, str]:
    row = await wait_inbox_final(stack, reply["event_id"])
    return row["status"], row["outcome"]


async def assert_not_paid(stack: ServiceStack, merchant: Merchant, session_id: str) -> dict[str, Any]:
    body = await get_session(stack, merchant, session_id)
    assert body["status"] != "paid" and body["paid_at"] is None, body
    assert body["payment_status"] != "paid", body
    return body


async def test_eth_payment_by_webhook_is_pending_then_paid_with_confirmations(
    stack: ServiceStack, chain: Chain
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=3)
    session = await create_web3_session(stack, merchant, "0.05", "ETH")
    assert session["payment"]["chain_id"] == CHAIN_ID and session["payment"]["token"] is None
    tx = await chain.pay_eth(session["payment"]["deposit_address"], 50 * FINNEY)

    status, reply = await send_hint(stack, tx, session["id"])
    assert status == 200 and reply == {"received": True, "event_id": reply["event_id"], "duplicate": False}
    assert await final_outcome(stack, reply) == ("applied", "deposit_pending")
    assert (await get_session(stack, merchant, session["id"]))["status"] == "pending"  # 1 of 3 confirmations

    await chain.mine(2)
    status, again = await send_hint(stack, tx, session["id"])  # the notifier reports it again
    assert status == 200
    assert await final_outcome(stack, again) == ("applied", "deposit_paid")
    paid = await get_session(stack, merchant, session["id"])
    assert paid["status"] == "paid" and paid["amount_received_minor"] == 50 * FINNEY
    rows = await ledger_rows(stack, session["id"])
    assert [(r["tx_hash"], r["log_index"], int(r["amount_minor"]), r["source"]) for r in rows] == [
        (tx, -1, 50 * FINNEY, "webhook")
    ]
    status, listed = await stack.request(
        "GET", f"/v1/sessions/{session['id']}/deposits", headers=merchant.headers
    )
    assert status == 200
    assert [
        (d["tx_hash"], d["amount_minor"], d["canonical"], d["counted_in_payment"]) for d in listed["deposits"]
    ] == [(tx, 50 * FINNEY, True, True)]
    # With no watcher running, the stage comes from the node's head: paid means confirmed.
    assert [(d["stage"], d["kind"]) for d in listed["deposits"]] == [("confirmed", "native")]
    assert listed["deposits"][0]["confirmations"] >= 3
    # The same merchant's live key sees no test session's deposits (modes are worlds apart).
    live_key = await stack.keys.CreateMerchantSecretKey(
        keys_pb2.CreateMerchantSecretKeyRequest(merchant_id=merchant.id, mode=common_pb2.MODE_LIVE), timeout=5
    )
    status, body = await stack.request(
        "GET",
        f"/v1/sessions/{session['id']}/deposits",
        headers=Merchant(merchant.id, live_key.secret_key, "live").headers,
    )
    assert status == 404 and body["error"]["code"] == "not_found"
    stranger = await stack.create_merchant("Stranger", "strange")
    status, body = await stack.request(
        "GET", f"/v1/sessions/{session['id']}/deposits", headers=stranger.headers
    )
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_token_payment_by_webhook_uses_the_transfer_log(stack: ServiceStack, chain: Chain) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    session = await create_web3_session(stack, merchant, "12.50", "TUSD")
    assert session["payment"]["token"].lower() == chain.token.lower()
    tx = await chain.pay_token(session["payment"]["deposit_address"], 12_500_000)

    status, reply = await send_hint(stack, tx, session["id"])
    assert status == 200
    assert await final_outcome(stack, reply) == ("applied", "deposit_paid")
    paid = await get_session(stack, merchant, session["id"])
    assert paid["status"] == "paid" and paid["amount_received_minor"] == 12_500_000
    rows = await ledger_rows(stack, session["id"])
    assert len(rows) == 1 and rows[0]["log_index"] >= 0 and rows[0]["token"].lower() == chain.token.lower()

    status, dup = await send_hint(stack, tx, session["id"], msg_id=reply["event_id"])
    assert status == 200 and dup["duplicate"] is True


# ----- bad input: each is stored, answered 200, and pays nobody ---------------------------------------------


async def test_a_tx_hash_that_does_not_exist_is_retried_then_ignored(
    stack: ServiceStack, chain: Chain
) -> None:
    merchant = await web3_merchant(stack, chain)
    session = await create_web3_session(stack, merchant, "0.01", "ETH")
    status, reply = await send_hint(stack, "0x" + os.urandom(32).hex(), session["id"])
    assert status == 200
    assert await final_outcome(stack, reply) == ("ignored", "tx_not_found")
    row = await inbox_event(stack, reply["event_id"])
    assert row is not None and row["attempts"] >= 2  # it was given time to appear before it was given up
    assert (await assert_not_paid(stack, merchant, session["id"]))["status"] == "created"
    assert await ledger_rows(stack, session["id"]) == []


async def test_a_reverted_tx_pays_nothing(stack: ServiceStack, chain: Chain) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    session = await create_web3_session(stack, merchant, "5", "TUSD")
    broke = AsyncWeb3.to_checksum_address(chain.anvil.accounts[7])  # holds ETH for gas, but no TUSD
    sent = (
        await token_contract(chain.w3, chain.token)
        .functions.transfer(session["payment"]["deposit_address"], 5 * TUSD)
        .transact({"from": broke, "gas": 200_000})
    )
    receipt = await chain.w3.eth.wait_for_transaction_receipt(sent)
    assert receipt["status"] == 0

    status, reply = await send_hint(stack, sent.to_0x_hex(), session["id"])
    assert status == 200
    assert await final_outcome(stack, reply) == ("ignored", "tx_reverted")
    await assert_not_paid(stack, merchant, session["id"])
    assert await ledger_rows(stack, session["id"]) == []


async def test_a_payment_to_another_address_pays_nothing(stack: ServiceStack, chain: Chain) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    session = await create_web3_session(stack, merchant, "0.01", "ETH")
    tx = await chain.pay_eth(AsyncWeb3.to_checksum_address(os.urandom(20)), 10 * FINNEY)

    status, reply = await send_hint(stack, tx, session["id"])
    assert status == 200
    assert await final_outcome(stack, reply) == ("ignored", "no_transfer_to_deposit_address")
    assert (await assert_not_paid(stack, merchant, session["id"]))["status"] == "created"


async def test_too_little_value_leaves_the_session_pending_not_paid(
    stack: ServiceStack, chain: Chain
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    session = await create_web3_session(stack, merchant, "0.05", "ETH")
    tx = await chain.pay_eth(session["payment"]["deposit_address"], 49 * FINNEY)
    await chain.mine(3)

    status, reply = await send_hint(stack, tx, session["id"])
    assert status == 200
    assert await final_outcome(stack, reply) == ("applied", "deposit_pending")
    body = await assert_not_paid(stack, merchant, session["id"])
    assert body["status"] == "pending"  # money is there, confirmed, but short: waiting for the rest
    assert [int(r["amount_minor"]) for r in await ledger_rows(stack, session["id"])] == [49 * FINNEY]


async def test_a_transfer_from_a_different_token_contract_does_not_count(
    stack: ServiceStack, chain: Chain
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    session = await create_web3_session(stack, merchant, "5", "TUSD")
    # Same bytecode, same symbol, same Transfer event: only the emitting contract tells it apart.
    tx = await chain.pay_token(session["payment"]["deposit_address"], 5 * TUSD, token=chain.fake_token)

    status, reply = await send_hint(stack, tx, session["id"])
    assert status == 200
    assert await final_outcome(stack, reply) == ("ignored", "no_transfer_to_deposit_address")
    assert (await assert_not_paid(stack, merchant, session["id"]))["status"] == "created"
    assert await ledger_rows(stack, session["id"]) == []


async def test_the_wrong_chain_id_is_refused(stack: ServiceStack, chain: Chain) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    session = await create_web3_session(stack, merchant, "0.01", "ETH")
    tx = await chain.pay_eth(session["payment"]["deposit_address"], 10 * FINNEY)

    status, reply = await send_hint(stack, tx, session["id"], chain_id=1)
    assert status == 200
    assert await final_outcome(stack, reply) == ("ignored", "wrong_chain_id")
    assert (await assert_not_paid(stack, merchant, session["id"]))["status"] == "created"
    assert await ledger_rows(stack, session["id"]) == []


async def test_a_hint_signed_with_the_other_modes_secret_is_a_recorded_mode_mismatch(
    stack: ServiceStack, chain: Chain
) -> None:
    """Contract §6a: a web3 event's mode is the mode whose secret verified it. A live-signed hint that names a
    test session is answered 200 and recorded as mode_mismatch; the chain is not even asked, nothing moves."""
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    session = await create_web3_session(stack, merchant, "0.01", "ETH")
    tx = await chain.pay_eth(session["payment"]["deposit_address"], 10 * FINNEY)

    status, reply = await send_hint(stack, tx, session["id"], secret=LIVE_WEB3_SECRET)
    assert status == 200, reply
    row = await wait_inbox_final(stack, reply["event_id"])
    assert (row["status"], row["outcome"], row["mode"]) == ("ignored", "mode_mismatch", "live")
    assert (await assert_not_paid(stack, merchant, session["id"]))["status"] == "created"
    assert await ledger_rows(stack, session["id"]) == []

    # The same transfer announced with the test secret is the session's own money.
    status, reply = await send_hint(stack, tx, session["id"])
    assert status == 200, reply
    assert (await wait_status(stack, merchant, session["id"], "paid"))["status"] == "paid"


async def test_one_tx_pays_one_session_only(stack: ServiceStack, chain: Chain) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    first = await create_web3_session(stack, merchant, "0.01", "ETH")
    second = await create_web3_session(stack, merchant, "0.01", "ETH")
    tx = await chain.pay_eth(first["payment"]["deposit_address"], 10 * FINNEY)

    status, reply = await send_hint(stack, tx, first["id"])
    assert status == 200 and await final_outcome(stack, reply) == ("applied", "deposit_paid")
    status, reply = await send_hint(stack, tx, second["id"])
    assert status == 200
    assert await final_outcome(stack, reply) == ("ignored", "session_mismatch")
    assert (await assert_not_paid(stack, merchant, second["id"]))["status"] == "created"
    assert (await get_session(stack, merchant, first["id"]))["amount_received_minor"] == 10 * FINNEY
    assert await ledger_rows(stack, second["id"]) == []


async def test_the_ledger_key_refuses_a_transfer_for_a_second_session(
    stack: ServiceStack, chain: Chain
) -> None:
    from webhook_gateway.chain.deposits_repository import DepositsRepository, RecordOutcome
    from webhook_gateway.chain.verification import ObservedTransfer

    repo = DepositsRepository(stack.pools["gateway"])
    transfer = ObservedTransfer(
        chain_id=CHAIN_ID,
        tx_hash="0x" + "ab" * 32,
        log_index=-1,
        block_number=5,
        block_hash="0x" + "cd" * 32,
        block_timestamp=int(time.time()),
        token=None,
        from_address=chain.payer,
        to_address=AsyncWeb3.to_checksum_address(os.urandom(20)),
        amount_minor=7,
    )
    owner, intruder = str(uuid.uuid4()), str(uuid.uuid4())
    assert (await repo.record(transfer, owner, "watcher")).outcome is RecordOutcome.INSERTED
    assert (await repo.record(transfer, owner, "webhook")).outcome is RecordOutcome.UNCHANGED
    refused = await repo.record(transfer, intruder, "webhook")
    assert refused.outcome is RecordOutcome.OTHER_SESSION and refused.owner_session_id == owner
    assert await repo.for_session(intruder) == []
    # The database itself enforces it, whatever the code does.
    conn = await stack.db.admin()
    try:
        with pytest.raises(Exception, match="chain_deposits_transfer"):
            await conn.execute(
                """INSERT INTO gateway.chain_deposits (chain_id, tx_hash, log_index, session_id, deposit_address,
                        from_address, amount_minor, block_number, block_hash, block_timestamp, source)
                   VALUES ($1, $2, -1, $3, 'x', 'y', 7, 5, 'h', 0, 'webhook')""",
                CHAIN_ID,
                transfer.tx_hash,
                uuid.UUID(intruder),
            )
    finally:
        await conn.close()


async def test_a_webhook_naming_the_wrong_session_is_stored_not_applied(
    stack: ServiceStack, chain: Chain
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    paid_to = await create_web3_session(stack, merchant, "0.01", "ETH")
    named = await create_web3_session(stack, merchant, "0.01", "ETH")
    tx = await chain.pay_eth(paid_to["payment"]["deposit_address"], 10 * FINNEY)

    status, reply = await send_hint(stack, tx, named["id"])
    assert status == 200 and reply["duplicate"] is False
    assert await final_outcome(stack, reply) == ("ignored", "session_mismatch")
    row = await inbox_event(stack, reply["event_id"])
    assert row is not None and row["merchant_id"] is not None  # stored, visible to the merchant
    for session in (named, paid_to):
        assert (await assert_not_paid(stack, merchant, session["id"]))["status"] == "created"


async def test_a_bad_signature_is_refused_and_nothing_is_stored(stack: ServiceStack, chain: Chain) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    session = await create_web3_session(stack, merchant, "0.01", "ETH")
    tx = await chain.pay_eth(session["payment"]["deposit_address"], 10 * FINNEY)
    wrong = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
    status, reply = await send_hint(stack, tx, session["id"], secret=wrong, msg_id="msg_forged")
    assert status == 400 and reply["error"]["code"] == "invalid_signature"

    body = {
        "type": "transaction.detected",
        "data": {"chain_id": CHAIN_ID, "tx_hash": tx, "session_id": session["id"]},
    }
    raw, headers = standard_delivery(body, stack.env["PAYGATE_WEB3_WEBHOOK_SECRETS"], int(time.time()) - 3600)
    status, reply = await stack.request("POST", "/webhooks/web3", data=raw, headers=headers)
    assert status == 400 and reply["error"]["code"] == "timestamp_out_of_tolerance"

    assert await inbox_event(stack, "msg_forged") is None
    assert (await assert_not_paid(stack, merchant, session["id"]))["status"] == "created"
    assert await ledger_rows(stack, session["id"]) == []


async def test_an_rpc_outage_keeps_the_event_and_retries_it(
    stack: ServiceStack, chain: Chain, rpc_proxy: RpcProxy
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    session = await create_web3_session(stack, merchant, "0.02", "ETH")
    tx = await chain.pay_eth(session["payment"]["deposit_address"], 20 * FINNEY)
    await rpc_proxy.down()
    try:
        status, reply = await send_hint(stack, tx, session["id"])
        assert status == 200 and reply["received"] is True  # stored before the chain is even asked

        async def retried() -> dict[str, Any] | None:
            row = await inbox_event(stack, reply["event_id"])
            return row if row and row["attempts"] >= 2 and row["status"] == "received" else None

        row = await wait_for(retried, what="the event to be retried while the node is down")
        assert "RPC node" in (row["last_error"] or ""), row
        assert (await assert_not_paid(stack, merchant, session["id"]))["status"] == "created"
    finally:
        await rpc_proxy.start()  # the node is back, on the same address
    assert await final_outcome(stack, reply) == ("applied", "deposit_paid")
    await wait_status(stack, merchant, session["id"], "paid")


async def test_a_deeply_nested_signed_body_is_refused_not_a_crash(stack: ServiceStack, chain: Chain) -> None:
    from paygate_dev.devtools.signing import sign_standard

    raw = b"[" * 200_000 + b"]" * 200_000  # signed, so it reaches the JSON parser
    headers = sign_standard(raw, "msg_deep", stack.env["PAYGATE_WEB3_WEBHOOK_SECRETS"], int(time.time()))
    status, reply = await stack.request("POST", "/webhooks/web3", data=raw, headers=headers)
    assert status == 400 and reply["error"]["code"] == "invalid_json"
    status, _ = await stack.request("GET", "/healthz")
    assert status == 200
