from __future__ import annotations

import json
from pathlib import Path

from web3 import Web3

from paygate_dev.chain.test_token import load_test_token_artifact
from webhook_gateway.chain.verification import TRANSFER_TOPIC

REPO = Path(__file__).resolve().parents[3]


def test_packaged_artifact_is_the_one_built_from_the_source() -> None:
    # contracts/build.mjs writes both; a hand edit of one would deploy bytecode nobody can rebuild.
    beside_source = json.loads((REPO / "contracts" / "TestToken.json").read_text())
    packaged = load_test_token_artifact()
    assert packaged.abi == beside_source["abi"]
    assert packaged.bytecode == beside_source["bytecode"]
    assert packaged.bytecode.startswith("0x") and len(packaged.bytecode) > 1000


def test_artifact_exposes_the_erc20_surface_the_gateway_relies_on() -> None:
    abi = load_test_token_artifact().abi
    functions = {f["name"] for f in abi if f["type"] == "function"}
    assert {
        "transfer",
        "transferFrom",
        "approve",
        "balanceOf",
        "decimals",
        "symbol",
        "totalSupply",
    } <= functions
    (transfer,) = [e for e in abi if e["type"] == "event" and e["name"] == "Transfer"]
    assert [i["indexed"] for i in transfer["inputs"]] == [True, True, False]
    assert Web3.keccak(text="Transfer(address,address,uint256)").to_0x_hex() == TRANSFER_TOPIC
