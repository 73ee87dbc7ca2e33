"""A merchant records a web3 refund they sent from their own wallet, from the dashboard: the session page's
"Record a refund you sent" form names the refund tx, and the gateway reads it back from a real anvil chain
through refund_requests.request_refund, the writer of POST /v1/sessions/{id}/refund. Over real HTTP against the
real stack: each refusal is a sentence on the session page (never a 500), the recorded refund's amount is the
one read from chain, the same form again records nothing twice, and the API shows the refund."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from html import unescape
from typing import Any

import pytest
from aiohttp import web

from support.dashboard import form_of, get, post, signed_in
from support.refund_flows import fulfilled, session_json
from support.stack import Merchant, ServiceStack
from support.web3_chain import (
    FINNEY,
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


class FlakyProxy(RpcProxy):
    """The JSON-RPC pass-through, able to answer as a failing node does (HTTP 503)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.failing = False

    async def _forward(self, request: web.Request) -> web.Response:
        if self.failing:
            return web.Response(status=503, text="node down")
        return await super()._forward(request)


@pytest.fixture(scope="module")
async def chain() -> AsyncIterator[Chain]:
    async with running_chain() as chain:
        yield chain


@pytest.fixture
async def rpc_proxy(chain: Chain) -> AsyncIterator[FlakyProxy]:
    proxy = FlakyProxy(chain.anvil.rpc_url)
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture
def stack_env(stack_env: dict[str, str], chain: Chain, rpc_proxy: FlakyProxy) -> dict[str, str]:
    return {**stack_env, **chain_env(chain, watcher=False, rpc_url=rpc_proxy.url)}


async def _paid_eth(stack: ServiceStack, chain: Chain, merchant: Merchant, payer: str) -> dict[str, Any]:
    """A 0.05 ETH web3 session paid by `payer` (proved by a hint, confirmed) and fulfilled."""
    session = await create_web3_session(stack, merchant, "0.05", "ETH")
    tx = await chain.pay_eth(session["payment"]["deposit_address"], 50 * FINNEY, sender=payer)
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


def _text(html: str) -> str:
    """The page as the merchant reads it: tags dropped, entities decoded, whitespace folded."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def test_record_a_sent_web3_refund_from_the_dashboard(
    stack: ServiceStack, chain: Chain, rpc_proxy: FlakyProxy
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=2)
    payer, stranger = chain.anvil.accounts[1], chain.anvil.accounts[2]
    session = await _paid_eth(stack, chain, merchant, payer)
    sid, deposit = session["id"], session["payment"]["deposit_address"]
    await _as_deposit(chain, deposit)
    base = f"/dashboard/sessions/{sid}"
    record = f"{base}/refund"
    started = datetime.now(UTC)

    async with signed_in(stack, merchant.api_key) as http:
        page = await get(http, stack, base)
        # Not the card Refund form (paygate cannot send a web3 refund): the form that records one sent.
        assert f"{base}/refund/confirm" not in page
        assert "Record a refund you sent" in _text(page), _text(page)[:3000]
        fields = form_of(page, record)
        assert fields.get("idempotency_key") and fields.get("csrf_token"), fields
        assert {"tx_hash", "from_address", "reason"} <= set(fields), fields

        # A malformed hash is a sentence on the page, never a 500; nothing is recorded.
        for bad in ("0x1234", "not a hash <b>", ""):
            status, _, refused = await post(http, stack, record, {**fields, "tx_hash": bad})
            assert status == 400, (bad, status, _text(refused)[:2000])
            assert "Record a refund you sent" in _text(refused)
            assert "<b>" not in refused  # shown again as typed, escaped
        status, _, refused = await post(http, stack, record, {**fields, "tx_hash": "0x1234"})
        assert "0x followed by 64 hex digits" in _text(refused), _text(refused)[:3000]
        status, _, refused = await post(http, stack, record, {**fields, "tx_hash": "0x" + "ab" * 32})
        assert status == 400 and "not found on chain" in _text(refused), (status, _text(refused)[:3000])
        status, _, refused = await post(
            http, stack, record, {**fields, "tx_hash": "0x" + "ab" * 32, "from_address": "0x12"}
        )
        assert status == 400 and "sending address" in _text(refused), (status, _text(refused)[:3000])

        # Sent back to the payer, with 1 of the 2 confirmations the session needs: try again in a minute.
        back = await chain.pay_eth(payer, 20 * FINNEY, sender=deposit)
        status, _, refused = await post(
            http, stack, record, {**fields, "tx_hash": back, "reason": "returned"}
        )
        assert status == 409 and "try again in a minute" in _text(refused), (status, _text(refused)[:3000])
        assert (await session_json(stack, merchant, sid))["refunds"] == []
        # The refused page keeps what the merchant typed, so "try again" is one click, not a second paste.
        again = form_of(refused, record)
        assert (again["tx_hash"], again["from_address"], again["reason"]) == (back, "", "returned"), again

        # The node fails: nothing is recorded, try again.
        await chain.mine(1)
        rpc_proxy.failing = True
        try:
            status, _, refused = await post(
                http, stack, record, {**fields, "tx_hash": back, "reason": "returned"}
            )
        finally:
            rpc_proxy.failing = False
        assert status == 503 and "nothing was recorded" in _text(refused), (status, _text(refused)[:3000])

        # Confirmed now: recorded, for the amount the tx sent back (read from chain), in ETH.
        sent = {**fields, "tx_hash": back, "reason": "returned"}
        status, location, text = await post(http, stack, record, sent)
        assert status == 303 and location.startswith(base), (status, location, _text(text)[:2000])
        shown = _text(await get(http, stack, location))
        assert f"Recorded: your refund of 0.020000000000000000 ETH (transaction {back.lower()})" in shown, (
            shown[:3000]
        )

        # The same form again (a reload, a double click): nothing is recorded twice.
        status, location, _ = await post(http, stack, record, sent)
        assert status == 303 and location.startswith(base), (status, location)
        again = _text(await get(http, stack, location))
        assert "already recorded" in again, again[:3000]
        # A fresh form naming the same tx: a tx hash is one refund.
        fresh = form_of(await get(http, stack, base), record)
        assert fresh["idempotency_key"] != fields["idempotency_key"]
        status, location, _ = await post(
            http, stack, record, {**fresh, "tx_hash": back.upper().replace("0X", "0x")}
        )
        assert status == 303, (status, location)
        assert "already recorded" in _text(await get(http, stack, location))

        # A transfer to someone else than the payer refunds nothing of this session.
        elsewhere = await chain.pay_eth(stranger, 10 * FINNEY, sender=deposit)
        await chain.mine(2)
        status, _, refused = await post(http, stack, record, {**fresh, "tx_hash": elsewhere})
        assert status == 400 and "does not send" in _text(refused), (status, _text(refused)[:3000])

    after = await session_json(stack, merchant, sid)
    assert len(after["refunds"]) == 1, after["refunds"]
    made = after["refunds"][0]
    assert made["provider_refund_id"] == back.lower() and made["status"] == "succeeded", made
    assert made["amount"] == "0.020000000000000000" and made["reason"] == "returned", made
    assert after["amount_refunded"] == "0.020000000000000000" and after["status"] == "paid", after
    assert await _refund_actors(stack, sid, started) == [
        f"dashboard:merchant_key:{await _key_id(stack, merchant)}"
    ]


async def test_the_last_web3_refund_ends_the_form(stack: ServiceStack, chain: Chain) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    payer, wallet = chain.anvil.accounts[1], chain.anvil.accounts[3]
    session = await _paid_eth(stack, chain, merchant, payer)
    sid = session["id"]
    base = f"/dashboard/sessions/{sid}"

    async with signed_in(stack, merchant.api_key) as http:
        fields = form_of(await get(http, stack, base), base + "/refund")
        # Sent from the merchant's own wallet: it counts once the form names that sending address.
        back = await chain.pay_eth(payer, 60 * FINNEY, sender=wallet)
        status, _, refused = await post(http, stack, base + "/refund", {**fields, "tx_hash": back})
        assert status == 400 and "does not send" in _text(refused), (status, _text(refused)[:3000])
        status, location, _ = await post(
            http, stack, base + "/refund", {**fields, "tx_hash": back, "from_address": wallet}
        )
        assert status == 303, (status, location)
        # More than the session was sent back: the refund is what was still refundable, the whole 0.05 ETH.
        shown = _text(await get(http, stack, location))
        assert "Recorded: your refund of 0.050000000000000000 ETH" in shown, shown[:3000]
        assert "Record a refund you sent" not in shown and "already fully refunded" in shown, shown[:3000]
        status, location, _ = await post(
            http, stack, base + "/refund", {**fields, "tx_hash": back, "from_address": wallet}
        )
        assert status == 303 and "already recorded" in _text(await get(http, stack, location))

    after = await session_json(stack, merchant, sid)
    assert after["status"] == "refunded" and after["amount_refunded"] == "0.050000000000000000", after
    assert len(after["refunds"]) == 1, after["refunds"]


async def _key_id(stack: ServiceStack, merchant: Merchant) -> str:
    status, keys = await stack.request("GET", "/v1/merchant_keys", headers=merchant.headers)
    assert status == 200, keys
    return str(keys["data"][0]["id"])


async def _refund_actors(stack: ServiceStack, sid: str, since: datetime) -> list[str]:
    """Who changed the session since `since`, as the session service audits it: the refunds asked for (the
    credit notes' follow-up rows are its refund worker's, "refunds")."""
    conn = await stack.db.admin()
    try:
        rows = await conn.fetch(
            "SELECT actor FROM session.audit_log WHERE session_id = $1 AND at >= $2 ORDER BY id",
            uuid.UUID(sid),
            since,
        )
    finally:
        await conn.close()
    return [row["actor"] for row in rows if row["actor"] != "refunds"]
