"""Money sent on chain in the wrong asset is recorded and quarantined, never dropped (contract §4).

An ETH session paid with the merchant's token, or a token session paid with ETH: the transfer did reach the
deposit address, so it is a deposit of that asset (GET /v1/sessions/S/deposits shows it with its currency), it
never pays the session, and once confirmed it is quarantined once as a currency mismatch, whichever path (the
watcher's re-scans, a notifier's hints) reports it. A token contract the merchant did not configure stays
ignored, and money the address held before the session never counts. Real anvil chain and real services.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from paygate.session.v1 import session_pb2
from paygate_dev.chain.test_token import TEST_TOKEN_SYMBOL
from session_service.domain.deposit_addresses import derive_deposit_address
from support.stack import Merchant, ServiceStack
from support.web3_chain import (
    FINNEY,
    TUSD,
    Chain,
    chain_env,
    create_web3_session,
    get_session,
    quarantine,
    send_hint,
    wait_cursor_at_least,
    wait_for,
    wait_inbox_final,
    web3_merchant,
)

pytestmark = pytest.mark.chain


@pytest.fixture
def stack_env(stack_env: dict[str, str], chain: Chain) -> dict[str, str]:
    # A block stamped before the second a session was created is not its money (no slot skew on anvil).
    return {**stack_env, **chain_env(chain, watcher=True), "PAYGATE_CHAIN_CREATION_SKEW_S": "0"}


async def _deposits(stack: ServiceStack, merchant: Merchant, session_id: str) -> list[dict[str, Any]]:
    status, body = await stack.request("GET", f"/v1/sessions/{session_id}/deposits", headers=merchant.headers)
    assert status == 200, body
    return body["deposits"]


async def _entries(stack: ServiceStack, merchant: Merchant, session_id: str) -> list[dict[str, Any]]:
    return [e for e in await quarantine(stack, merchant) if e["session_id"] == session_id]


async def _two_full_passes(stack: ServiceStack, chain: Chain) -> None:
    await chain.mine(1)
    await wait_cursor_at_least(stack, await chain.head())
    await chain.mine(1)
    await wait_cursor_at_least(stack, await chain.head())


@pytest.mark.parametrize("session_asset", ["ETH", "TUSD"])
async def test_money_in_the_other_asset_is_a_deposit_of_that_asset_and_quarantined_once(
    stack: ServiceStack, chain: Chain, session_asset: str
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=3)
    session = await create_web3_session(stack, merchant, "1", session_asset)
    deposit = session["payment"]["deposit_address"]
    if session_asset == "ETH":
        tx = await chain.pay_token(deposit, 1 * TUSD)
        paid_in, amount_minor = TEST_TOKEN_SYMBOL, 1 * TUSD
    else:
        tx = await chain.pay_eth(deposit, 1000 * FINNEY)
        paid_in, amount_minor = "ETH", 1000 * FINNEY

    # Recorded as a deposit of the asset that arrived, with one confirmation of three: not yet quarantined.
    async def recorded() -> list[dict[str, Any]] | None:
        rows = await _deposits(stack, merchant, session["id"])
        return rows or None

    rows = await wait_for(recorded, what="the wrong-asset transfer in the session's deposits")
    assert [(r["tx_hash"], r["currency"], r["amount_minor"]) for r in rows] == [(tx, paid_in, amount_minor)]
    await wait_cursor_at_least(stack, await chain.head())
    assert await _entries(stack, merchant, session["id"]) == []

    # A notifier's hint names a transfer that did reach the deposit address.
    status, reply = await send_hint(stack, tx, session["id"])
    assert status == 200, reply
    hinted = await wait_inbox_final(stack, reply["event_id"])
    assert hinted["outcome"] != "no_transfer_to_deposit_address", hinted

    # Confirmed: quarantined as a currency mismatch, once.
    await chain.mine(2)

    async def one_entry() -> list[dict[str, Any]] | None:
        found = await _entries(stack, merchant, session["id"])
        return found or None

    entries = await wait_for(one_entry, what="the wrong-asset quarantine entry")
    assert [(e["reason"], e["note"]) for e in entries] == [("amount_mismatch", "currency_mismatch")], entries
    assert entries[0]["amount"]["currency"] == paid_in
    assert entries[0]["amount"]["amount_minor"] == amount_minor

    # Re-scans and a duplicate hint add nothing; the session is never paid by it.
    status, reply = await send_hint(stack, tx, session["id"])
    assert status == 200, reply
    again = await wait_inbox_final(stack, reply["event_id"])
    assert again["outcome"] != "no_transfer_to_deposit_address", again
    await _two_full_passes(stack, chain)
    assert len(await _entries(stack, merchant, session["id"])) == 1
    body = await get_session(stack, merchant, session["id"])
    assert body["status"] == "created" and body["paid_at"] is None
    rows = await _deposits(stack, merchant, session["id"])
    assert [(r["currency"], r["stage"], r["counted_in_payment"]) for r in rows] == [
        (paid_in, "confirmed", False)
    ]


async def test_a_token_the_merchant_did_not_configure_stays_ignored(
    stack: ServiceStack, chain: Chain
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    session = await create_web3_session(stack, merchant, "0.001", "ETH")
    tx = await chain.pay_token(session["payment"]["deposit_address"], 5 * TUSD, token=chain.fake_token)
    await _two_full_passes(stack, chain)
    status, reply = await send_hint(stack, tx, session["id"])
    assert status == 200, reply
    assert (await wait_inbox_final(stack, reply["event_id"]))["outcome"] == "no_transfer_to_deposit_address"
    assert await _deposits(stack, merchant, session["id"]) == []
    assert await _entries(stack, merchant, session["id"]) == []


async def test_wrong_asset_money_from_before_the_session_never_counts(
    stack: ServiceStack, chain: Chain
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    settings = await stack.session.GetPaymentSettings(
        session_pb2.GetPaymentSettingsRequest(merchant_id=merchant.id), timeout=5
    )
    address = derive_deposit_address(settings.onchain.xpub, settings.next_derivation_index)
    old_tx = await chain.pay_token(address, 2 * TUSD)  # a wallet used the address before
    await asyncio.sleep(1.1)  # block times are whole seconds: the session is created a second later
    session = await create_web3_session(stack, merchant, "0.001", "ETH")
    assert session["payment"]["deposit_address"] == address
    status, reply = await send_hint(stack, old_tx, session["id"])
    assert status == 200, reply
    assert (await wait_inbox_final(stack, reply["event_id"]))["outcome"] == "transfer_before_session"
    await _two_full_passes(stack, chain)
    assert await _deposits(stack, merchant, session["id"]) == []
    assert await _entries(stack, merchant, session["id"]) == []
