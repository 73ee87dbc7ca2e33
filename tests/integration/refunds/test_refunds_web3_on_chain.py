"""Web3 refunds verified on a real anvil chain (issue 19, contract §8): the merchant names the refund tx and
the gateway reads it back before recording anything. The deposit address's key is the merchant's (derived
from its xpub); anvil impersonates it here to send the refund."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from paygate_dev.chain.test_token import transfer_token
from support.refund_flows import credited_sum, fulfilled, refund, session_json, wait_credit_notes
from support.stack import Merchant, ServiceStack
from support.web3_chain import (
    CHAIN_ID,
    FINNEY,
    TUSD,
    Chain,
    RpcProxy,
    chain_env,
    create_web3_session,
    running_chain,
    send_hint,
    wait_status,
    web3_merchant,
)

pytestmark = pytest.mark.chain


class ChainIdProxy(RpcProxy):
    """The JSON-RPC pass-through, able to answer `eth_chainId` as another chain would (a node of the wrong
    chain behind the configured URL)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.fake_chain_id: int | None = None

    async def _forward(self, request: web.Request) -> web.Response:
        if self.fake_chain_id is not None:
            call = json.loads(await request.read())
            if isinstance(call, dict) and call.get("method") == "eth_chainId":
                return web.json_response(
                    {"jsonrpc": "2.0", "id": call.get("id"), "result": hex(self.fake_chain_id)}
                )
        return await super()._forward(request)


@pytest.fixture(scope="module")
async def chain() -> AsyncIterator[Chain]:
    async with running_chain() as chain:
        yield chain


@pytest.fixture
async def rpc_proxy(chain: Chain) -> AsyncIterator[ChainIdProxy]:
    proxy = ChainIdProxy(chain.anvil.rpc_url)
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture
def stack_env(stack_env: dict[str, str], chain: Chain, rpc_proxy: ChainIdProxy) -> dict[str, str]:
    return {**stack_env, **chain_env(chain, watcher=False, rpc_url=rpc_proxy.url)}


async def _paid(
    stack: ServiceStack, chain: Chain, merchant: Merchant, amount: str, currency: str, payer: str, minor: int
) -> dict[str, Any]:
    """A web3 session paid by `payer` (proved by a hint, confirmed) and fulfilled."""
    session = await create_web3_session(stack, merchant, amount, currency)
    deposit = session["payment"]["deposit_address"]
    if currency == "ETH":
        tx = await chain.pay_eth(deposit, minor, sender=payer)
    else:
        tx = await transfer_token(chain.w3, chain.token, payer, deposit, minor)
    await chain.mine(1)
    status, _ = await send_hint(stack, tx, session["id"])
    assert status == 200
    await wait_status(stack, merchant, session["id"], "paid")
    await fulfilled(stack, merchant, session["id"])
    return session


async def _as_deposit(chain: Chain, deposit: str) -> None:
    """Let the test send from the deposit address (the merchant holds its key), with ETH for gas."""
    await chain.anvil.rpc("anvil_impersonateAccount", [deposit])
    balance = await chain.w3.eth.get_balance(deposit)
    await chain.anvil.rpc("anvil_setBalance", [deposit, hex(balance + 10**18)])


def _refused(status: int, body: Any, expected_status: int, code: str) -> None:
    assert status == expected_status and body["error"]["code"] == code, (status, body)


async def test_eth_refunds_are_verified_on_chain(
    stack: ServiceStack, chain: Chain, rpc_proxy: ChainIdProxy
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=2)
    payer, stranger, wallet = chain.anvil.accounts[1], chain.anvil.accounts[2], chain.anvil.accounts[3]
    session = await _paid(stack, chain, merchant, "0.05", "ETH", payer, 50 * FINNEY)
    sid, deposit = session["id"], session["payment"]["deposit_address"]
    await _as_deposit(chain, deposit)

    # A web3 refund needs its tx.
    _refused(*await refund(stack, merchant, sid, {"amount": "0.01"}), 400, "missing_tx_hash")
    _refused(*await refund(stack, merchant, sid, {"tx_hash": "0x1234"}), 400, "invalid_tx_hash")
    _refused(*await refund(stack, merchant, sid, {"tx_hash": "0x" + "ab" * 32}), 400, "refund_tx_not_found")

    # Sent back to the payer from the deposit address, but with 1 of the 2 confirmations: not yet.
    back = await chain.pay_eth(payer, 20 * FINNEY, sender=deposit)
    _refused(*await refund(stack, merchant, sid, {"tx_hash": back}, key="r-1"), 409, "refund_tx_unconfirmed")
    assert (await session_json(stack, merchant, sid))["refunds"] == []

    # Confirmed: without an amount the refund is what the tx sent back; it makes a credit note.
    await chain.mine(1)
    status, first = await refund(stack, merchant, sid, {"tx_hash": back, "reason": "returned"}, key="r-1")
    assert status == 202, first
    assert first["status"] == "succeeded" and first["amount"] == "0.020000000000000000", first
    assert first["provider_refund_id"] == back.lower() and first["session"]["status"] == "paid"
    await wait_credit_notes(stack, merchant, sid, 20 * FINNEY, 1)

    # The same tx again (another key, no key, upper-case hex) is that one refund.
    for again_body, again_key in (
        ({"tx_hash": back}, "r-2"),
        ({"tx_hash": back.upper().replace("0X", "0x")}, None),
    ):
        status, again = await refund(stack, merchant, sid, again_body, key=again_key)
        assert status == 202 and again["id"] == first["id"], again
    assert len((await session_json(stack, merchant, sid))["refunds"]) == 1

    # Refused, recording nothing: a transfer to someone else than the payer ...
    elsewhere = await chain.pay_eth(stranger, 10 * FINNEY, sender=deposit)
    # ... a transfer smaller than the refund ...
    small = await chain.pay_eth(payer, 5 * FINNEY, sender=deposit)
    # ... a failed tx (ETH sent to a contract that takes none reverts) ...
    failed_hash = await chain.w3.eth.send_transaction(
        {"from": deposit, "to": chain.token, "value": 10 * FINNEY, "gas": 100_000}
    )
    receipt = await chain.w3.eth.wait_for_transaction_receipt(failed_hash)
    assert receipt["status"] == 0
    # ... and a refund from the merchant's own wallet that the request does not declare.
    from_wallet = await chain.pay_eth(payer, 10 * FINNEY, sender=wallet)
    await chain.mine(2)
    _refused(
        *await refund(stack, merchant, sid, {"tx_hash": elsewhere}), 400, "refund_tx_no_matching_transfer"
    )
    _refused(
        *await refund(stack, merchant, sid, {"tx_hash": small, "amount": "0.01"}),
        400,
        "refund_tx_no_matching_transfer",
    )
    _refused(
        *await refund(stack, merchant, sid, {"tx_hash": failed_hash.to_0x_hex()}), 400, "refund_tx_failed"
    )
    _refused(
        *await refund(stack, merchant, sid, {"tx_hash": from_wallet}), 400, "refund_tx_no_matching_transfer"
    )
    # More than is still refundable is refused before the chain is read.
    status, body = await refund(stack, merchant, sid, {"tx_hash": small, "amount": "0.04"})
    _refused(status, body, 400, "amount_too_large")
    # Worded as the card rails word it: what is left, in the session's money.
    assert body["error"]["message"].endswith(" ETH can still be refunded"), body

    # A node of another chain behind the configured URL proves nothing about this chain's money.
    rpc_proxy.fake_chain_id = CHAIN_ID + 1
    try:
        _refused(*await refund(stack, merchant, sid, {"tx_hash": from_wallet}), 400, "refund_tx_wrong_chain")
    finally:
        rpc_proxy.fake_chain_id = None
    after = await session_json(stack, merchant, sid)
    assert len(after["refunds"]) == 1 and after["amount_refunded"] == "0.020000000000000000"

    # Declared as the refund's source, the merchant's wallet counts (and the amount may be less than sent).
    status, declared = await refund(
        stack, merchant, sid, {"tx_hash": from_wallet, "from_address": wallet, "amount": "0.008"}
    )
    assert status == 202 and declared["amount"] == "0.008000000000000000", declared

    # One tx is one refund: another session paid by the same payer cannot count it again.
    other = await _paid(stack, chain, merchant, "0.01", "ETH", payer, 10 * FINNEY)
    _refused(
        *await refund(stack, merchant, other["id"], {"tx_hash": from_wallet, "from_address": wallet}),
        409,
        "refund_tx_already_used",
    )
    assert (await session_json(stack, merchant, other["id"]))["refunds"] == []

    # The rest, sent back from the deposit address: the session is refunded, the credit notes sum to it.
    rest = await chain.pay_eth(payer, 22 * FINNEY, sender=deposit)
    await chain.mine(1)
    status, last = await refund(stack, merchant, sid, {"tx_hash": rest})
    assert status == 202 and last["amount"] == "0.022000000000000000", last
    assert last["session"]["status"] == "refunded"
    await wait_credit_notes(stack, merchant, sid, 50 * FINNEY, 3)
    assert await credited_sum(stack, merchant, sid) == 50 * FINNEY
    _refused(*await refund(stack, merchant, sid, {"tx_hash": small}), 409, "session_refunded")
    # The last request again is still that refund, though the session is refunded now.
    status, repeated = await refund(stack, merchant, sid, {"tx_hash": rest})
    assert status == 202 and repeated["id"] == last["id"], repeated
    assert len((await session_json(stack, merchant, sid))["refunds"]) == 3


async def test_token_refunds_count_only_the_sessions_token(stack: ServiceStack, chain: Chain) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    session = await _paid(stack, chain, merchant, "12.50", "TUSD", chain.payer, 12_500_000)
    sid, deposit = session["id"], session["payment"]["deposit_address"]
    await _as_deposit(chain, deposit)

    # A look-alike token (same bytecode, another contract) moves nothing of the session's asset.
    await transfer_token(chain.w3, chain.fake_token, chain.payer, deposit, 5 * TUSD)
    fake_back = await transfer_token(chain.w3, chain.fake_token, deposit, chain.payer, 5 * TUSD)
    _refused(
        *await refund(stack, merchant, sid, {"tx_hash": fake_back}), 400, "refund_tx_no_matching_transfer"
    )
    # ETH sent back for a token session is not the session's asset either.
    eth_back = await chain.pay_eth(chain.payer, 5 * FINNEY, sender=deposit)
    _refused(
        *await refund(stack, merchant, sid, {"tx_hash": eth_back}), 400, "refund_tx_no_matching_transfer"
    )

    back = await transfer_token(chain.w3, chain.token, deposit, chain.payer, 5 * TUSD)
    status, first = await refund(stack, merchant, sid, {"tx_hash": back, "amount": "5.00"})
    assert status == 202 and first["amount"] == "5.000000" and first["status"] == "succeeded", first
    await wait_credit_notes(stack, merchant, sid, 5 * TUSD, 1)
    assert (await session_json(stack, merchant, sid))["status"] == "paid"
