"""On-chain payments for integration tests: a real anvil node, web3 merchants, signed hints, chain reads.

Used by the web3 tests (whose conftest starts one shared node with `running_chain`) and by the on-chain refund
tests."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from bip_utils import Bip44, Bip44Coins
from web3 import AsyncWeb3
from web3.types import Wei

from paygate.session.v1 import session_pb2
from paygate_dev.chain.anvil import AnvilProcess, start_anvil
from paygate_dev.chain.test_token import (
    TEST_TOKEN_DECIMALS,
    TEST_TOKEN_SYMBOL,
    deploy_test_token,
    transfer_token,
)
from paygate_dev.devtools.signing import standard_delivery
from support import polling
from support.stack import Merchant, ServiceStack
from webhook_gateway.chain.web3_service import connect_web3

CHAIN_ID = 31337
WEI = 10**18
# Amounts the chain tests pay in: a thousandth of an ether, and one whole test token (6 decimals).
FINNEY = 10**15
TUSD = 10**6

FAST_ENV = {
    "PAYGATE_WEBHOOK_RELAY_INTERVAL_MS": "50",
    "PAYGATE_WEBHOOK_RETRY_BASE_MS": "50",
    "PAYGATE_WEBHOOK_RETRY_MAX_MS": "300",
    "PAYGATE_WEBHOOK_LEASE_MS": "3000",
    "PAYGATE_CHAIN_POLL_MS": "100",
    "PAYGATE_CHAIN_RPC_TIMEOUT_MS": "2000",
}


@dataclass
class Chain:
    anvil: AnvilProcess
    w3: AsyncWeb3
    payer: str
    token: str
    # A second, worthless deployment of the same bytecode: its Transfer events look real.
    fake_token: str

    async def mine(self, blocks: int = 1) -> None:
        await self.anvil.rpc("anvil_mine", [hex(blocks)])

    async def revert(self, snapshot: str) -> None:
        """A reorg made with evm_revert. anvil's revert also winds its clock back to the snapshot, so every
        later block would be stamped minutes in the past: a session created now would then see new money as
        mined before it started (and rightly not count it). A real chain's timestamps follow real time, so the
        clock is set back to now for the next block."""
        assert await self.anvil.rpc("evm_revert", [snapshot]) is True
        last = (await self.w3.eth.get_block("latest"))["timestamp"]
        await self.anvil.rpc("evm_setNextBlockTimestamp", [max(int(time.time()), last + 1)])

    async def head(self) -> int:
        return await self.w3.eth.block_number

    async def pay_eth(self, to: str, wei: int, sender: str | None = None) -> str:
        tx_hash = await self.w3.eth.send_transaction(
            {"from": sender or self.payer, "to": AsyncWeb3.to_checksum_address(to), "value": Wei(wei)}
        )
        await self.w3.eth.wait_for_transaction_receipt(tx_hash)
        return tx_hash.to_0x_hex()

    async def pay_token(self, to: str, amount_minor: int, token: str | None = None) -> str:
        return await transfer_token(self.w3, token or self.token, self.payer, to, amount_minor)


@contextlib.asynccontextmanager
async def running_chain(anvil_args: Sequence[str] = ()) -> AsyncIterator[Chain]:
    """A fresh anvil node (`anvil_args` added to its command line) with the test token and a fake one
    deployed; stopped on exit. A module that rewinds or reshapes its chain starts its own."""
    async with start_anvil(extra_args=anvil_args) as anvil:
        w3 = connect_web3(anvil.rpc_url, 10.0)
        token = await deploy_test_token(w3, anvil.funded_account)
        fake = await deploy_test_token(w3, anvil.funded_account)
        yield Chain(anvil=anvil, w3=w3, payer=anvil.funded_account, token=token, fake_token=fake)
        await w3.provider.disconnect()


def chain_env(chain: Chain, *, watcher: bool, rpc_url: str | None = None) -> dict[str, str]:
    return {
        **FAST_ENV,
        "PAYGATE_CHAIN_RPC_URL": rpc_url or chain.anvil.rpc_url,
        "PAYGATE_CHAIN_ID": str(CHAIN_ID),
        "PAYGATE_CHAIN_WATCHER": "true" if watcher else "false",
    }


def random_xpub() -> str:
    # Each test gets its own wallet: the shared anvil keeps balances while the database is reset per test,
    # so reusing one xpub would hand a new session an address that a previous test already paid.
    account = Bip44.FromSeed(os.urandom(64), Bip44Coins.ETHEREUM).Purpose().Coin().Account(0)
    return account.PublicKey().ToExtended()


async def web3_merchant(
    stack: ServiceStack, chain: Chain, *, min_confirmations: int = 2, prefix: str = "chain"
) -> Merchant:
    merchant = await stack.create_merchant("Chain Shop", prefix)
    await stack.session.UpdatePaymentSettings(
        session_pb2.UpdatePaymentSettingsRequest(
            settings=session_pb2.PaymentSettings(
                merchant_id=merchant.id,
                default_currency="EUR",
                onchain=session_pb2.OnchainSettings(
                    chain_id=CHAIN_ID,
                    xpub=random_xpub(),
                    min_confirmations=min_confirmations,
                    tokens=[
                        session_pb2.AcceptedToken(
                            address=chain.token, symbol=TEST_TOKEN_SYMBOL, decimals=TEST_TOKEN_DECIMALS
                        )
                    ],
                ),
            )
        ),
        timeout=5,
    )
    return merchant


async def create_web3_session(
    stack: ServiceStack, merchant: Merchant, amount: str, currency: str, **extra: Any
) -> dict[str, Any]:
    status, body = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": amount, "currency": currency, "provider": "web3", **extra},
        headers=merchant.headers,
    )
    assert status == 201, body
    assert body["payment"]["deposit_address"], body
    return body


def web3_secret(stack: ServiceStack) -> str:
    return stack.env["PAYGATE_WEB3_WEBHOOK_SECRETS"].split(",")[0]


async def send_hint(
    stack: ServiceStack,
    tx_hash: str,
    session_id: str,
    *,
    chain_id: int = CHAIN_ID,
    secret: str | None = None,
    msg_id: str | None = None,
) -> tuple[int, Any]:
    body = {
        "type": "transaction.detected",
        "data": {"chain_id": chain_id, "tx_hash": tx_hash, "session_id": session_id},
    }
    raw, headers = standard_delivery(
        body, secret or web3_secret(stack), int(time.time()), msg_id or f"msg_{uuid.uuid4().hex}"
    )
    return await stack.request("POST", "/webhooks/web3", data=raw, headers=headers)


async def get_session(stack: ServiceStack, merchant: Merchant, session_id: str) -> dict[str, Any]:
    status, body = await stack.request("GET", f"/v1/sessions/{session_id}", headers=merchant.headers)
    assert status == 200, body
    return body


async def wait_for(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 15.0, interval: float = 0.1, what: str = ""
) -> Any:
    return await polling.eventually(check, timeout=timeout, interval=interval, what=what)


async def wait_status(
    stack: ServiceStack, merchant: Merchant, session_id: str, status: str, timeout: float = 40.0
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        body = await get_session(stack, merchant, session_id)
        return body if body["status"] == status else None

    return await wait_for(check, timeout=timeout, what=f"session {session_id} to be {status}")


async def inbox_event(stack: ServiceStack, event_id: str) -> dict[str, Any] | None:
    conn = await stack.db.admin()
    try:
        row = await conn.fetchrow(
            "SELECT * FROM gateway.inbox_events WHERE provider = 'web3' AND event_id = $1", event_id
        )
    finally:
        await conn.close()
    return dict(row) if row is not None else None


async def wait_inbox_final(stack: ServiceStack, event_id: str, timeout: float = 15.0) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        row = await inbox_event(stack, event_id)
        return row if row is not None and row["status"] != "received" else None

    return await wait_for(check, timeout=timeout, what=f"inbox event {event_id} to be final")


async def ledger_rows(stack: ServiceStack, session_id: str) -> list[dict[str, Any]]:
    conn = await stack.db.admin()
    try:
        rows = await conn.fetch(
            "SELECT * FROM gateway.chain_deposits WHERE session_id = $1 ORDER BY block_number, log_index",
            uuid.UUID(session_id),
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows]


class RpcProxy:
    """A JSON-RPC pass-through in front of anvil that a test can take down and bring back on the same port,
    to play an RPC node outage without losing the chain's state."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._http is not None
        body = await request.read()
        async with self._http.post(
            self.upstream, data=body, headers={"Content-Type": "application/json"}
        ) as response:
            return web.Response(
                body=await response.read(), status=response.status, content_type="application/json"
            )

    async def start(self) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_post("/", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        if not self.port:
            self.port = self._runner.addresses[0][1]

    async def down(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def close(self) -> None:
        await self.down()
        if self._http is not None:
            await self._http.close()
            self._http = None


async def quarantine(stack: ServiceStack, merchant: Merchant) -> list[dict[str, Any]]:
    status, body = await stack.request("GET", "/v1/quarantine?limit=100", headers=merchant.headers)
    assert status == 200, body
    return body["data"]


async def watcher_cursor(stack: ServiceStack) -> int | None:
    conn = await stack.db.admin()
    try:
        return await conn.fetchval(
            "SELECT last_block FROM gateway.chain_cursors WHERE chain_id = $1", CHAIN_ID
        )
    finally:
        await conn.close()


async def wait_cursor_at_least(stack: ServiceStack, block: int, timeout: float = 15.0) -> int:
    async def check() -> int | None:
        cursor = await watcher_cursor(stack)
        return cursor if cursor is not None and cursor >= block else None

    return await wait_for(check, timeout=timeout, what=f"the watcher to scan block {block}")
