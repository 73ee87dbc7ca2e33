"""The Test USD (TUSD) ERC-20 used on the local chain: artifact loading, deployment and transfers.

The artifact is compiled from contracts/TestToken.sol by contracts/build.mjs (solc-js) and a copy ships
inside this package, so a wheel install can deploy it without the repository or Node.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from hexbytes import HexBytes
from web3 import AsyncWeb3
from web3.contract import AsyncContract

TEST_TOKEN_NAME = "Test USD"
TEST_TOKEN_SYMBOL = "TUSD"
TEST_TOKEN_DECIMALS = 6
# One billion TUSD to the deployer: plenty for any dev session, far below uint256 limits.
DEFAULT_INITIAL_SUPPLY = 1_000_000_000 * 10**TEST_TOKEN_DECIMALS


@dataclass(frozen=True)
class ContractArtifact:
    contract_name: str
    abi: list[dict[str, Any]]
    bytecode: str
    compiler_version: str


@cache
def load_test_token_artifact() -> ContractArtifact:
    """The compiled TestToken (ABI + creation bytecode) from the package data."""
    raw = resources.files("paygate_dev.chain").joinpath("artifacts", "TestToken.json").read_text("utf-8")
    data = json.loads(raw)
    return ContractArtifact(
        contract_name=data["contractName"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        compiler_version=data["compiler"]["version"],
    )


async def deploy_test_token(
    w3: AsyncWeb3, from_addr: str, initial_supply: int = DEFAULT_INITIAL_SUPPLY
) -> str:
    """Deploy TestToken from the unlocked account `from_addr`, which receives the whole supply.

    Returns the checksummed contract address once the deployment is mined.
    """
    artifact = load_test_token_artifact()
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    tx_hash = await factory.constructor(initial_supply).transact(
        {"from": AsyncWeb3.to_checksum_address(from_addr)}
    )
    receipt = await w3.eth.wait_for_transaction_receipt(tx_hash)
    if receipt["status"] != 1 or not receipt["contractAddress"]:
        raise RuntimeError(f"TestToken deployment failed in tx {HexBytes(tx_hash).to_0x_hex()}")
    return AsyncWeb3.to_checksum_address(receipt["contractAddress"])


def token_contract(w3: AsyncWeb3, address: str) -> AsyncContract:
    """A web3 contract handle for an already-deployed TestToken (or any ERC-20 with the same ABI)."""
    return w3.eth.contract(address=AsyncWeb3.to_checksum_address(address), abi=load_test_token_artifact().abi)


async def transfer_token(w3: AsyncWeb3, token: str, from_addr: str, to_addr: str, amount_minor: int) -> str:
    """Send `amount_minor` token units from the unlocked `from_addr`; returns the 0x tx hash once mined."""
    contract = token_contract(w3, token)
    tx_hash = await contract.functions.transfer(
        AsyncWeb3.to_checksum_address(to_addr), amount_minor
    ).transact({"from": AsyncWeb3.to_checksum_address(from_addr)})
    await w3.eth.wait_for_transaction_receipt(tx_hash)
    return HexBytes(tx_hash).to_0x_hex()
