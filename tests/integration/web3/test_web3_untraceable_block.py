"""A block the node can never trace does not hold back the chain watcher (traces on): the block is recorded
and shown in GET /v1/chain/status, every other session settles and the cursor moves on, a native-coin session
whose deposit address the block touched is settled by its balance difference meanwhile, and the block is
traced again with backoff until the node answers."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

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
    wait_cursor_at_least,
    wait_for,
    wait_status,
    web3_merchant,
)

pytestmark = pytest.mark.chain

_TRACE_METHODS = ("trace_block", "trace_replayBlockTransactions", "debug_traceBlockByNumber")
# Runtime code of a minimal contract wallet: forwards the call's value to the address in calldata[0:32].
_FORWARDER = bytes.fromhex("6000600060006000" + "34" + "600035" + "5a" + "f1" + "50" + "00")


class TraceFailingProxy(RpcProxy):
    """Passes JSON-RPC through to anvil, except trace calls for `untraceable` (a block number): those get the
    error reply a node gives for a block it cannot trace (out of memory, a tracer bug, pruned trace data)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.untraceable: int | None = None
        self.refused = 0

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        call = json.loads(body)
        if (
            self.untraceable is not None
            and isinstance(call, dict)
            and call.get("method") in _TRACE_METHODS
            and (call.get("params") or [None])[0] == hex(self.untraceable)
        ):
            self.refused += 1
            error = {"code": -32000, "message": f"tracing block {self.untraceable} failed: out of memory"}
            return web.json_response({"jsonrpc": "2.0", "id": call.get("id"), "error": error})
        return await super()._forward(request)


@pytest.fixture(scope="module")
async def chain() -> AsyncIterator[Chain]:
    async with running_chain() as chain:
        yield chain


@pytest.fixture
async def proxy(chain: Chain) -> AsyncIterator[TraceFailingProxy]:
    proxy = TraceFailingProxy(chain.anvil.rpc_url)
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture
def stack_env(stack_env: dict[str, str], chain: Chain, proxy: TraceFailingProxy) -> dict[str, str]:
    return {
        **stack_env,
        **chain_env(chain, watcher=True, rpc_url=proxy.url),
        "PAYGATE_CHAIN_INTERNAL_TRANSFERS": "traces",
        "PAYGATE_CHAIN_CREATION_SKEW_S": "0",
        "PAYGATE_CHAIN_ERROR_BACKOFF_MS": "200",
        "PAYGATE_CHAIN_ERROR_BACKOFF_MAX_MS": "1000",
    }


async def chain_status(stack: ServiceStack, merchant: Merchant) -> dict[str, Any]:
    status, body = await stack.request("GET", "/v1/chain/status", headers=merchant.headers)
    assert status == 200, body
    return body


async def untraced_gauge(stack: ServiceStack) -> float | None:
    """The gauge as a scrape reads it: sampled from the database when /metrics is rendered, by any replica."""
    await stack.gateway.metrics.render()
    return stack.gateway.metrics.registry.get_sample_value(
        "paygate_chain_untraced_blocks", {"chain_id": str(CHAIN_ID)}
    )


async def deposits(stack: ServiceStack, merchant: Merchant, session_id: str) -> list[dict[str, Any]]:
    status, body = await stack.request("GET", f"/v1/sessions/{session_id}/deposits", headers=merchant.headers)
    assert status == 200, body
    return body["deposits"]


async def test_a_block_the_node_cannot_trace_does_not_hold_back_the_watcher(
    stack: ServiceStack, chain: Chain, proxy: TraceFailingProxy
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    forwarded = await create_web3_session(stack, merchant, "0.004", "ETH")
    direct = await create_web3_session(stack, merchant, "0.002", "ETH")
    token = await create_web3_session(stack, merchant, "1", "TUSD")
    wallet = chain.w3.to_checksum_address("0x" + uuid.uuid4().hex[:8] + "22" * 16)
    await chain.anvil.rpc("anvil_setCode", [wallet, "0x" + _FORWARDER.hex()])

    # anvil mines each tx in a block of its own: the contract wallet's payment lands in `bad`.
    bad = await chain.head() + 1
    proxy.untraceable = bad
    address = forwarded["payment"]["deposit_address"]
    tx = await chain.w3.eth.send_transaction(
        {
            "from": chain.payer,
            "to": wallet,
            "value": 4 * FINNEY,
            "data": "0x" + address[2:].lower().rjust(64, "0"),
        }
    )
    receipt = await chain.w3.eth.wait_for_transaction_receipt(tx)
    assert receipt["blockNumber"] == bad
    await chain.pay_eth(direct["payment"]["deposit_address"], 2 * FINNEY)
    await chain.pay_token(token["payment"]["deposit_address"], TUSD)
    await chain.mine(1)

    # Every other session settles and the cursor moves past the block the node cannot trace.
    await wait_status(stack, merchant, direct["id"], "paid")
    await wait_status(stack, merchant, token["id"], "paid")
    await wait_cursor_at_least(stack, bad + 2, timeout=40.0)

    async def untraced() -> list[dict[str, Any]] | None:
        return (await chain_status(stack, merchant))["untraced_blocks"] or None

    rows = await wait_for(untraced, timeout=40.0, what="the untraceable block in /v1/chain/status")
    assert [r["block_number"] for r in rows] == [bad]
    assert rows[0]["failures"] >= 1 and "out of memory" in rows[0]["last_error"]
    assert rows[0]["block_hash"] == receipt["blockHash"].to_0x_hex()
    assert rows[0]["first_failed_at"] and rows[0]["next_attempt_at"]
    assert proxy.refused >= 1

    # The alert: a gauge of the blocks the watcher moved past untraced.
    async def gauge_at(value: float) -> bool | None:
        return (await untraced_gauge(stack)) == value or None

    await wait_for(lambda: gauge_at(1), what="the untraced-blocks gauge at 1")

    # The block touched the forwarded session's address: its balance difference settles it meanwhile.
    paid = await wait_status(stack, merchant, forwarded["id"], "paid")
    assert paid["amount_received_minor"] == 4 * FINNEY
    assert await deposits(stack, merchant, forwarded["id"]) == []

    # Retried with backoff while it fails; once the node traces it, the internal transfer is recorded.
    refused = proxy.refused
    await wait_for(
        lambda: _true(proxy.refused > refused), timeout=20.0, what="the untraceable block to be retried"
    )
    proxy.untraceable = None

    async def recorded() -> list[dict[str, Any]] | None:
        return await deposits(stack, merchant, forwarded["id"]) or None

    found = await wait_for(recorded, timeout=40.0, what="the internal transfer once the block is traced")
    assert [(d["tx_hash"], d["kind"], d["from"], d["amount_minor"]) for d in found] == [
        (tx.to_0x_hex(), "native_internal", wallet, 4 * FINNEY)
    ]
    # Counted once: inside the balance it was already paid by, not reported again as extra money.
    assert found[0]["reported_as"] is None

    async def resolved() -> bool:
        return (await chain_status(stack, merchant))["untraced_blocks"] == []

    await wait_for(resolved, timeout=20.0, what="the block to leave /v1/chain/status once traced")
    await wait_for(lambda: gauge_at(0), what="the untraced-blocks gauge back at 0")


async def _true(value: bool) -> bool | None:
    return True if value else None
