"""The chain side against a real anvil node (npm @foundry-rs/anvil): deploy, verify, confirm, reorg."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from web3 import AsyncHTTPProvider, AsyncWeb3

from paygate_dev.chain.anvil import AnvilProcess, start_anvil
from paygate_dev.chain.test_token import (
    TEST_TOKEN_DECIMALS,
    TEST_TOKEN_SYMBOL,
    deploy_test_token,
    token_contract,
    transfer_token,
)
from webhook_gateway.chain.ledger import ALERT_REORGED_AFTER_PAID, Deposit, Stage, evaluate_deposits
from webhook_gateway.chain.verification import (
    ObservedTransfer,
    confirmed_height,
    inspect_transaction,
    native_balance_at,
    scan_blocks,
)

pytestmark = pytest.mark.chain

MIN_CONFIRMATIONS = 3


@dataclass
class Node:
    anvil: AnvilProcess
    w3: AsyncWeb3
    payer: str
    token: str


@pytest.fixture(scope="module")
async def node() -> AsyncIterator[Node]:
    async with start_anvil() as anvil:
        w3 = AsyncWeb3(AsyncHTTPProvider(anvil.rpc_url))
        try:
            token = await deploy_test_token(w3, anvil.funded_account)
            yield Node(anvil=anvil, w3=w3, payer=anvil.funded_account, token=token)
        finally:
            await w3.provider.disconnect()  # web3 caches an aiohttp session per provider


def fresh_address() -> str:
    return AsyncWeb3.to_checksum_address(os.urandom(20))


async def pay_eth(node: Node, to: str, value: int) -> str:
    tx_hash = await node.w3.eth.send_transaction({"from": node.payer, "to": to, "value": value})
    await node.w3.eth.wait_for_transaction_receipt(tx_hash)
    return tx_hash.to_0x_hex()


async def mine(node: Node, blocks: int) -> None:
    await node.anvil.rpc("anvil_mine", [hex(blocks)])


async def inspect(node: Node, tx_hash: str, deposit: str, token: str | None = None):
    return await inspect_transaction(
        node.w3,
        tx_hash,
        expected_chain_id=31337,
        deposit_address=deposit,
        token=token,
        token_decimals=TEST_TOKEN_DECIMALS if token else None,
    )


def as_deposit(t: ObservedTransfer, canonical: bool = True) -> Deposit:
    return Deposit(
        tx_hash=t.tx_hash,
        log_index=t.log_index,
        block_number=t.block_number,
        block_hash=t.block_hash,
        block_timestamp=t.block_timestamp,
        amount_minor=t.amount_minor,
        canonical=canonical,
    )


async def still_canonical(node: Node, t: ObservedTransfer) -> bool:
    head = await node.w3.eth.block_number
    if t.block_number > head:
        return False
    return (await node.w3.eth.get_block(t.block_number))["hash"].to_0x_hex() == t.block_hash


async def test_anvil_is_chain_31337_with_funded_dev_accounts(node: Node) -> None:
    assert await node.w3.eth.chain_id == 31337
    assert (await node.w3.client_version).startswith("anvil/v")
    assert len(node.anvil.accounts) == 10
    assert await node.w3.eth.get_balance(node.payer) > 1_000 * 10**18


async def test_token_is_deployed_with_supply_at_the_deployer(node: Node) -> None:
    contract = token_contract(node.w3, node.token)
    assert await contract.functions.symbol().call() == TEST_TOKEN_SYMBOL
    assert await contract.functions.decimals().call() == TEST_TOKEN_DECIMALS
    supply = await contract.functions.totalSupply().call()
    assert supply > 0
    assert await contract.functions.balanceOf(node.payer).call() > 0


async def test_eth_payment_confirmations_grow_with_mined_blocks(node: Node) -> None:
    deposit = fresh_address()
    tx_hash = await pay_eth(node, deposit, 3 * 10**16)

    fresh = await inspect(node, tx_hash, deposit)
    assert fresh.problem is None
    assert fresh.confirmations == 1
    assert fresh.total_minor == 3 * 10**16

    await mine(node, 4)
    later = await inspect(node, tx_hash, deposit)
    assert later.confirmations == 5
    assert later.block_hash == fresh.block_hash


async def test_native_balance_at_confirmed_height_only_counts_deep_enough_money(node: Node) -> None:
    # The path for contract-wallet payments that no tx `to` shows: the balance at head − conf + 1.
    deposit = fresh_address()
    await pay_eth(node, deposit, 10**15)
    head = await node.w3.eth.block_number
    assert await native_balance_at(node.w3, deposit, confirmed_height(head, MIN_CONFIRMATIONS)) == 0

    await mine(node, MIN_CONFIRMATIONS - 1)
    head = await node.w3.eth.block_number
    assert await native_balance_at(node.w3, deposit, confirmed_height(head, MIN_CONFIRMATIONS)) == 10**15


async def test_token_payment_counts_only_from_the_accepted_contract(node: Node) -> None:
    deposit = fresh_address()
    fake = await deploy_test_token(node.w3, node.payer)
    real_tx = await transfer_token(node.w3, node.token, node.payer, deposit, 12_500_000)
    fake_tx = await transfer_token(node.w3, fake, node.payer, deposit, 99_000_000)

    real = await inspect(node, real_tx, deposit, node.token)
    forged = await inspect(node, fake_tx, deposit, node.token)

    assert real.problem is None
    assert [(t.to_address, t.amount_minor) for t in real.transfers] == [(deposit, 12_500_000)]
    assert forged.status == 1
    assert forged.transfers == ()
    assert forged.problem == "no_transfer_to_deposit_address"


async def test_eth_payment_to_another_address_and_unknown_hash(node: Node) -> None:
    deposit = fresh_address()
    tx_hash = await pay_eth(node, fresh_address(), 10**18)
    assert (await inspect(node, tx_hash, deposit)).problem == "no_transfer_to_deposit_address"
    assert (await inspect(node, "0x" + "cd" * 32, deposit)).problem == "tx_not_found"


async def test_reverted_token_transfer_on_anvil(node: Node) -> None:
    deposit = fresh_address()
    broke = node.anvil.accounts[5]  # holds ETH for gas but no TUSD
    contract = token_contract(node.w3, node.token)
    tx_hash = await contract.functions.transfer(deposit, 1).transact({"from": broke, "gas": 100_000})
    await node.w3.eth.wait_for_transaction_receipt(tx_hash)
    result = await inspect(node, tx_hash.to_0x_hex(), deposit, node.token)
    assert result.status == 0
    assert result.problem == "tx_reverted"


async def test_scan_blocks_sees_eth_and_token_payments(node: Node) -> None:
    eth_deposit, token_deposit = fresh_address(), fresh_address()
    start = await node.w3.eth.block_number + 1
    eth_tx = await pay_eth(node, eth_deposit, 777)
    token_tx = await transfer_token(node.w3, node.token, node.payer, token_deposit, 888)
    await pay_eth(node, fresh_address(), 999)
    end = await node.w3.eth.block_number

    found = await scan_blocks(node.w3, start, end, {eth_deposit, token_deposit}, {node.token})

    assert [(t.tx_hash, t.token, t.to_address, t.amount_minor, t.chain_id) for t in found] == [
        (eth_tx, None, eth_deposit, 777, 31337),
        (token_tx, node.token, token_deposit, 888, 31337),
    ]
    # Rescanning the same window (as the watcher does every pass to catch reorgs) yields the same keys.
    assert await scan_blocks(node.w3, start, end, {eth_deposit, token_deposit}, {node.token}) == found


async def test_snapshot_revert_removes_an_unconfirmed_payment(node: Node) -> None:
    deposit = fresh_address()
    snapshot = await node.anvil.rpc("evm_snapshot")
    tx_hash = await transfer_token(node.w3, node.token, node.payer, deposit, 5_000_000)
    seen = await inspect(node, tx_hash, deposit, node.token)
    (observed,) = seen.observed_transfers()
    before = evaluate_deposits(
        "s-revert",
        [as_deposit(observed)],
        head=await node.w3.eth.block_number,
        min_confirmations=MIN_CONFIRMATIONS,
        amount_minor=5_000_000,
        expires_at=None,
    )
    assert [e.stage for e in before.events] == [Stage.SEEN]

    assert await node.anvil.rpc("evm_revert", [snapshot]) is True
    await mine(node, MIN_CONFIRMATIONS)  # the chain moves on without the tx

    gone = await inspect(node, tx_hash, deposit, node.token)
    assert not gone.found
    assert not await still_canonical(node, observed)
    head = await node.w3.eth.block_number
    assert await scan_blocks(node.w3, observed.block_number, head, {deposit}, {node.token}) == []
    after = evaluate_deposits(
        "s-revert",
        [as_deposit(observed, canonical=False)],
        head=head,
        min_confirmations=MIN_CONFIRMATIONS,
        amount_minor=5_000_000,
        expires_at=None,
    )
    assert (after.seen_total, after.confirmed_total, after.events, after.alerts) == (0, 0, (), ())


async def test_anvil_reorg_deeper_than_confirmations_after_paid_raises_alert(node: Node) -> None:
    deposit = fresh_address()
    tx_hash = await pay_eth(node, deposit, 2 * 10**17)
    await mine(node, MIN_CONFIRMATIONS)
    (observed,) = (await inspect(node, tx_hash, deposit)).observed_transfers()
    head = await node.w3.eth.block_number
    paid = evaluate_deposits(
        "s-deep",
        [as_deposit(observed)],
        head=head,
        min_confirmations=MIN_CONFIRMATIONS,
        amount_minor=2 * 10**17,
        expires_at=None,
    )
    assert paid.paid and paid.events[-1].stage is Stage.CONFIRMED

    depth = head - observed.block_number + 1  # 4 > MIN_CONFIRMATIONS
    await node.anvil.rpc("anvil_reorg", [depth, []])

    assert not (await inspect(node, tx_hash, deposit)).found
    assert not await still_canonical(node, observed)
    assert await native_balance_at(node.w3, deposit, await node.w3.eth.block_number) == 0
    after = evaluate_deposits(
        "s-deep",
        [as_deposit(observed, canonical=False)],
        head=await node.w3.eth.block_number,
        min_confirmations=MIN_CONFIRMATIONS,
        amount_minor=2 * 10**17,
        expires_at=None,
        already_paid=True,
    )
    assert after.alerts == (ALERT_REORGED_AFTER_PAID,)
    assert not after.paid


async def test_custom_chain_id_block_time_and_clean_stop() -> None:
    anvil = await start_anvil(chain_id=1337, block_time=1)
    try:
        w3 = AsyncWeb3(AsyncHTTPProvider(anvil.rpc_url))
        assert await w3.eth.chain_id == 1337
        deposit = fresh_address()
        tx_hash = await w3.eth.send_transaction({"from": anvil.funded_account, "to": deposit, "value": 1})
        await w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
        first = await w3.eth.block_number
        await asyncio.sleep(2.2)
        assert await w3.eth.block_number >= first + 1  # interval mining without any tx
        wrong = await inspect_transaction(
            w3, tx_hash.to_0x_hex(), expected_chain_id=31337, deposit_address=deposit, token=None
        )
        assert wrong.problem == "wrong_chain_id"
        await w3.provider.disconnect()
    finally:
        await anvil.stop()
    assert anvil.process.returncode is not None
    with pytest.raises(aiohttp.ClientConnectionError):
        await anvil.rpc("eth_chainId")


async def test_checked_in_artifacts_match_a_fresh_solc_js_build() -> None:
    repo = Path(__file__).resolve().parents[3]
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(repo / "contracts" / "build.mjs"),
        "--check",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
