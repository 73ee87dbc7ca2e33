"""inspect_transaction / scan_blocks / native_balance_at against web3's in-process EthereumTester chain."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from web3 import AsyncWeb3
from web3.providers.eth_tester import AsyncEthereumTesterProvider

from paygate_dev.chain.test_token import (
    TEST_TOKEN_DECIMALS,
    deploy_test_token,
    token_contract,
    transfer_token,
)
from paygate_runtime.errors import InvalidArgument
from webhook_gateway.chain.verification import (
    NATIVE_LOG_INDEX,
    ChainUnavailable,
    inspect_transaction,
    native_balance_at,
    scan_blocks,
)


@dataclass
class Chain:
    w3: AsyncWeb3
    chain_id: int
    payer: str
    other: str
    token: str
    fake_token: str


@pytest.fixture(scope="module")
async def chain() -> Chain:
    w3 = AsyncWeb3(AsyncEthereumTesterProvider())
    accounts = await w3.eth.accounts
    token = await deploy_test_token(w3, accounts[0])
    # Same bytecode, different contract: its Transfer events look identical but are worthless.
    fake = await deploy_test_token(w3, accounts[0])
    return Chain(
        w3=w3,
        chain_id=await w3.eth.chain_id,
        payer=accounts[0],
        other=accounts[1],
        token=token,
        fake_token=fake,
    )


def fresh_address() -> str:
    return AsyncWeb3.to_checksum_address(os.urandom(20))


async def send_eth(chain: Chain, to: str, value: int) -> str:
    tx_hash = await chain.w3.eth.send_transaction({"from": chain.payer, "to": to, "value": value})
    await chain.w3.eth.wait_for_transaction_receipt(tx_hash)
    return tx_hash.to_0x_hex()


async def test_eth_to_deposit_address_is_a_transfer(chain: Chain) -> None:
    deposit = fresh_address()
    tx_hash = await send_eth(chain, deposit, 12_345)

    result = await inspect_transaction(
        chain.w3, tx_hash, expected_chain_id=chain.chain_id, deposit_address=deposit, token=None
    )

    assert result.problem is None
    assert result.found and result.mined and result.status == 1
    assert result.confirmations == 1
    assert result.block_number == await chain.w3.eth.block_number
    block = await chain.w3.eth.get_block(result.block_number)
    assert result.block_hash == block["hash"].to_0x_hex()
    assert result.block_timestamp == block["timestamp"]
    assert [(t.log_index, t.from_address, t.to_address, t.amount_minor) for t in result.transfers] == [
        (NATIVE_LOG_INDEX, chain.payer, deposit, 12_345)
    ]
    observed = result.observed_transfers()
    assert len(observed) == 1
    assert (observed[0].chain_id, observed[0].tx_hash, observed[0].token) == (chain.chain_id, tx_hash, None)


async def test_confirmations_grow_with_new_blocks(chain: Chain) -> None:
    deposit = fresh_address()
    tx_hash = await send_eth(chain, deposit, 1)
    await chain.w3.provider.make_request("evm_mine", [])
    await chain.w3.provider.make_request("evm_mine", [])

    result = await inspect_transaction(
        chain.w3, tx_hash, expected_chain_id=chain.chain_id, deposit_address=deposit, token=None
    )

    assert result.confirmations == 3
    assert result.head == result.block_number + 2


async def test_deposit_address_is_matched_case_insensitively(chain: Chain) -> None:
    deposit = fresh_address()
    tx_hash = await send_eth(chain, deposit, 5)
    result = await inspect_transaction(
        chain.w3,
        tx_hash.upper().replace("0X", "0x"),
        expected_chain_id=chain.chain_id,
        deposit_address=deposit.lower(),
        token=None,
    )
    assert result.total_minor == 5


async def test_eth_to_another_address_pays_nothing(chain: Chain) -> None:
    deposit = fresh_address()
    tx_hash = await send_eth(chain, fresh_address(), 10**18)

    result = await inspect_transaction(
        chain.w3, tx_hash, expected_chain_id=chain.chain_id, deposit_address=deposit, token=None
    )

    assert result.found and result.status == 1
    assert result.transfers == ()
    assert result.problem == "no_transfer_to_deposit_address"
    assert result.observed_transfers() == []


async def test_reverted_tx_has_status_0_and_no_transfers(chain: Chain) -> None:
    deposit = fresh_address()
    contract = token_contract(chain.w3, chain.token)
    # `other` holds no TUSD, so the transfer reverts; explicit gas skips the estimate that would fail.
    tx_hash = await contract.functions.transfer(deposit, 1_000_000).transact(
        {"from": chain.other, "gas": 100_000}
    )
    receipt = await chain.w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt["status"] == 0

    result = await inspect_transaction(
        chain.w3,
        tx_hash.to_0x_hex(),
        expected_chain_id=chain.chain_id,
        deposit_address=deposit,
        token=chain.token,
        token_decimals=TEST_TOKEN_DECIMALS,
    )

    assert result.found and result.mined
    assert result.status == 0
    assert result.transfers == ()
    assert result.problem == "tx_reverted"


async def test_reverted_eth_payment_with_value_counts_nothing(chain: Chain) -> None:
    # A tx whose `to` and `value` look right but which reverts moves no money.
    contract = token_contract(chain.w3, chain.token)
    data = contract.encode_abi("transfer", args=[fresh_address(), 10**30])
    tx_hash = await chain.w3.eth.send_transaction(
        {"from": chain.other, "to": chain.token, "data": data, "gas": 100_000}
    )
    await chain.w3.eth.wait_for_transaction_receipt(tx_hash)

    result = await inspect_transaction(
        chain.w3,
        tx_hash.to_0x_hex(),
        expected_chain_id=chain.chain_id,
        deposit_address=chain.token,
        token=None,
    )

    assert result.status == 0
    assert result.total_minor == 0


async def test_nonexistent_hash_is_not_found(chain: Chain) -> None:
    result = await inspect_transaction(
        chain.w3,
        "0x" + "ab" * 32,
        expected_chain_id=chain.chain_id,
        deposit_address=fresh_address(),
        token=None,
    )
    assert not result.found
    assert result.problem == "tx_not_found"
    assert result.transfers == ()


async def test_wrong_chain_id_is_flagged_before_anything_is_trusted(chain: Chain) -> None:
    deposit = fresh_address()
    tx_hash = await send_eth(chain, deposit, 99)

    result = await inspect_transaction(
        chain.w3, tx_hash, expected_chain_id=31337, deposit_address=deposit, token=None
    )

    assert chain.chain_id != 31337
    assert not result.chain_id_matches
    assert result.problem == "wrong_chain_id"
    assert result.transfers == ()
    assert result.observed_transfers() == []


@pytest.mark.parametrize("bad_hash", ["", "0x1234", "ab" * 32, "0x" + "zz" * 32])
async def test_malformed_tx_hash_is_invalid_argument(chain: Chain, bad_hash: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        await inspect_transaction(
            chain.w3, bad_hash, expected_chain_id=chain.chain_id, deposit_address=fresh_address(), token=None
        )
    assert err.value.code == "invalid_tx_hash"


async def test_token_transfer_from_the_accepted_contract_counts(chain: Chain) -> None:
    deposit = fresh_address()
    tx_hash = await transfer_token(chain.w3, chain.token, chain.payer, deposit, 25_000_000)

    result = await inspect_transaction(
        chain.w3,
        tx_hash,
        expected_chain_id=chain.chain_id,
        deposit_address=deposit,
        token=chain.token,
        token_decimals=TEST_TOKEN_DECIMALS,
    )

    assert result.problem is None
    assert result.decimals == TEST_TOKEN_DECIMALS
    assert len(result.transfers) == 1
    transfer = result.transfers[0]
    receipt = await chain.w3.eth.get_transaction_receipt(tx_hash)
    assert transfer.log_index == receipt["logs"][0]["logIndex"]
    assert (transfer.from_address, transfer.to_address, transfer.amount_minor) == (
        chain.payer,
        deposit,
        25_000_000,
    )
    assert result.observed_transfers()[0].token == chain.token


async def test_token_transfer_from_a_different_contract_does_not_count(chain: Chain) -> None:
    deposit = fresh_address()
    tx_hash = await transfer_token(chain.w3, chain.fake_token, chain.payer, deposit, 25_000_000)

    result = await inspect_transaction(
        chain.w3,
        tx_hash,
        expected_chain_id=chain.chain_id,
        deposit_address=deposit,
        token=chain.token,
        token_decimals=TEST_TOKEN_DECIMALS,
    )

    assert result.status == 1
    assert result.transfers == ()
    assert result.problem == "no_transfer_to_deposit_address"


async def test_token_transfer_to_another_address_does_not_count(chain: Chain) -> None:
    deposit = fresh_address()
    tx_hash = await transfer_token(chain.w3, chain.token, chain.payer, fresh_address(), 7)
    result = await inspect_transaction(
        chain.w3,
        tx_hash,
        expected_chain_id=chain.chain_id,
        deposit_address=deposit,
        token=chain.token,
        token_decimals=TEST_TOKEN_DECIMALS,
    )
    assert result.transfers == ()


async def test_token_session_ignores_plain_eth_and_eth_session_ignores_tokens(chain: Chain) -> None:
    deposit = fresh_address()
    eth_tx = await send_eth(chain, deposit, 10**15)
    token_tx = await transfer_token(chain.w3, chain.token, chain.payer, deposit, 3)

    as_token = await inspect_transaction(
        chain.w3, eth_tx, expected_chain_id=chain.chain_id, deposit_address=deposit, token=chain.token
    )
    as_eth = await inspect_transaction(
        chain.w3, token_tx, expected_chain_id=chain.chain_id, deposit_address=deposit, token=None
    )

    assert as_token.transfers == ()
    assert as_eth.transfers == ()


async def test_native_balance_at_reads_history(chain: Chain) -> None:
    deposit = fresh_address()
    await send_eth(chain, deposit, 1_000)
    first_block = await chain.w3.eth.block_number
    await send_eth(chain, deposit, 2_000)

    assert await native_balance_at(chain.w3, deposit, first_block - 1) == 0
    assert await native_balance_at(chain.w3, deposit, first_block) == 1_000
    assert await native_balance_at(chain.w3, deposit, first_block + 1) == 3_000


async def test_scan_blocks_finds_eth_and_token_credits_to_watched_addresses_only(chain: Chain) -> None:
    watched_a, watched_b, unwatched = fresh_address(), fresh_address(), fresh_address()
    start = await chain.w3.eth.block_number + 1
    eth_tx = await send_eth(chain, watched_a, 111)
    await send_eth(chain, unwatched, 222)
    token_tx = await transfer_token(chain.w3, chain.token, chain.payer, watched_b, 333)
    await transfer_token(chain.w3, chain.fake_token, chain.payer, watched_b, 444)
    await transfer_token(chain.w3, chain.token, chain.payer, unwatched, 555)
    end = await chain.w3.eth.block_number

    found = await scan_blocks(chain.w3, start, end, {watched_a, watched_b.lower()}, {chain.token})

    assert [(t.tx_hash, t.token, t.to_address, t.amount_minor) for t in found] == [
        (eth_tx, None, watched_a, 111),
        (token_tx, chain.token, watched_b, 333),
    ]
    native, token = found
    assert native.log_index == NATIVE_LOG_INDEX and token.log_index >= 0
    assert native.chain_id == token.chain_id == chain.chain_id
    for transfer in found:
        block = await chain.w3.eth.get_block(transfer.block_number)
        assert transfer.block_hash == block["hash"].to_0x_hex()
        assert transfer.block_timestamp == block["timestamp"]


async def test_scan_blocks_matches_inspect_transaction(chain: Chain) -> None:
    # Both detection paths must produce the same ledger key and amount, or a transfer would count twice.
    deposit = fresh_address()
    start = await chain.w3.eth.block_number + 1
    tx_hash = await transfer_token(chain.w3, chain.token, chain.payer, deposit, 42)
    scanned = await scan_blocks(chain.w3, start, await chain.w3.eth.block_number, {deposit}, {chain.token})
    inspected = await inspect_transaction(
        chain.w3, tx_hash, expected_chain_id=chain.chain_id, deposit_address=deposit, token=chain.token
    )
    assert scanned == inspected.observed_transfers()


async def test_scan_blocks_skips_reverted_value_transfers(chain: Chain) -> None:
    start = await chain.w3.eth.block_number + 1
    contract = token_contract(chain.w3, chain.token)
    data = contract.encode_abi("transfer", args=[fresh_address(), 10**30])
    # Sending value to the token contract reverts (no payable function): watch the token address itself.
    tx_hash = await chain.w3.eth.send_transaction(
        {"from": chain.payer, "to": chain.token, "data": data, "value": 5, "gas": 100_000}
    )
    assert (await chain.w3.eth.wait_for_transaction_receipt(tx_hash))["status"] == 0
    found = await scan_blocks(chain.w3, start, await chain.w3.eth.block_number, {chain.token}, set())
    assert found == []


async def test_scan_blocks_with_nothing_watched_is_empty(chain: Chain) -> None:
    assert await scan_blocks(chain.w3, 0, await chain.w3.eth.block_number, set(), {chain.token}) == []


async def test_unreachable_node_raises_chain_unavailable() -> None:
    from web3 import AsyncHTTPProvider

    # Port 9 (discard) on localhost is closed in any test environment: connection refused at once.
    provider = AsyncHTTPProvider(
        "http://127.0.0.1:9", request_kwargs={"timeout": 2}, exception_retry_configuration=None
    )
    w3 = AsyncWeb3(provider)
    try:
        with pytest.raises(ChainUnavailable):
            await inspect_transaction(
                w3, "0x" + "ab" * 32, expected_chain_id=31337, deposit_address=fresh_address(), token=None
            )
        with pytest.raises(ChainUnavailable):
            await native_balance_at(w3, fresh_address(), 1)
    finally:
        await provider.disconnect()  # web3 caches an aiohttp session per provider, even after a refusal
