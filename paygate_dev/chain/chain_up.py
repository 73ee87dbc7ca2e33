"""`paygate up --chain`: a real local Ethereum node beside the stack, with the test token and a configured merchant.

Two hooks (registered in paygate_dev.extras):
- `start_local_chain` (startup, before the services): starts anvil on chain id 31337 at `plan.chain_port`
  with its state under $PAYGATE_HOME/anvil (kept across restarts), deploys the Test USD token once and
  remembers its address in $PAYGATE_HOME/chain.json, and hands the services PAYGATE_CHAIN_RPC_URL and
  PAYGATE_CHAIN_ID. anvil is stopped with the stack (it is one of `stack.side`).
- `configure_chain_merchant` (post-start): gives the dev merchant on-chain settings (chain 31337, the dev
  xpub, min confirmations, TUSD) and returns the `chain` facts for stack.json.

The dev xpub comes from DEV_MNEMONIC, never anvil's own mnemonic: anvil's accounts are pre-funded, so deposit
addresses derived from them would look paid before anyone paid.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import grpc
from web3 import AsyncWeb3

from paygate.session.v1 import session_pb2, session_pb2_grpc
from paygate_dev.chain.anvil import DEFAULT_CHAIN_ID, AnvilProcess, start_anvil
from paygate_dev.chain.test_token import (
    TEST_TOKEN_DECIMALS,
    TEST_TOKEN_NAME,
    TEST_TOKEN_SYMBOL,
    deploy_test_token,
)
from paygate_runtime.stack import read_json, write_private_json
from session_service.domain.deposit_addresses import DEV_MNEMONIC, dev_xpub_from_mnemonic
from webhook_gateway.chain.web3_service import connect_web3

if TYPE_CHECKING:
    from paygate_dev.stack_plan import Stack

log = logging.getLogger(__name__)

DEV_MIN_CONFIRMATIONS: Final = 2
CHAIN_FILE: Final = "chain.json"
# How often anvil writes its state to disk besides on exit, so a hard kill loses little.
STATE_INTERVAL_S: Final = 10


def chain_file(home: Path) -> Path:
    return home / CHAIN_FILE


def anvil_state_args(home: Path) -> list[str]:
    state_dir = home / "anvil"
    state_dir.mkdir(parents=True, exist_ok=True)
    # Historical states make balance reads at past blocks (the confirmed height) work after a restart.
    return [
        "--state",
        str(state_dir / "state.json"),
        "--state-interval",
        str(STATE_INTERVAL_S),
        "--preserve-historical-states",
    ]


async def ensure_test_token(anvil: AnvilProcess, home: Path) -> dict[str, Any]:
    """The TUSD token on this node: the remembered deployment if its code is still there, else a new one."""
    w3 = connect_web3(anvil.rpc_url, 10.0)
    try:
        return await _ensure_test_token(w3, anvil, home)
    finally:
        await w3.provider.disconnect()


async def _ensure_test_token(w3: AsyncWeb3, anvil: AnvilProcess, home: Path) -> dict[str, Any]:
    saved = read_json(chain_file(home)) or {}
    token = saved.get("token") or {}
    address = token.get("address")
    if address and saved.get("chain_id") == anvil.chain_id:
        code = await w3.eth.get_code(w3.to_checksum_address(address))
        if len(code) > 0:
            return token
    address = await deploy_test_token(w3, anvil.funded_account)
    token = {
        "address": address,
        "symbol": TEST_TOKEN_SYMBOL,
        "decimals": TEST_TOKEN_DECIMALS,
        "name": TEST_TOKEN_NAME,
    }
    write_private_json(chain_file(home), {"chain_id": anvil.chain_id, "token": token})
    return token


async def start_local_chain(stack: Stack) -> None:
    """Startup hook: start anvil (only with --chain) and tell the services where it is."""
    plan = stack.plan
    if not plan.chain:
        return
    anvil = await start_anvil(
        port=plan.chain_port, chain_id=DEFAULT_CHAIN_ID, extra_args=anvil_state_args(plan.home)
    )
    stack.side.append(anvil)
    token = await ensure_test_token(anvil, plan.home)
    plan.extras.setdefault("env", {}).update(
        {"PAYGATE_CHAIN_RPC_URL": anvil.rpc_url, "PAYGATE_CHAIN_ID": str(anvil.chain_id)}
    )
    plan.extras["chain"] = {"rpc_url": anvil.rpc_url, "chain_id": anvil.chain_id, "token": token}
    print(f"paygate: chain node anvil on {anvil.rpc_url} (chain id {anvil.chain_id})", flush=True)


def onchain_settings(
    chain_id: int, token: dict[str, Any], min_confirmations: int
) -> session_pb2.OnchainSettings:
    return session_pb2.OnchainSettings(
        chain_id=chain_id,
        xpub=dev_xpub_from_mnemonic(DEV_MNEMONIC),
        min_confirmations=min_confirmations,
        tokens=[
            session_pb2.AcceptedToken(
                address=token["address"], symbol=token["symbol"], decimals=int(token["decimals"])
            )
        ],
    )


async def configure_chain_merchant(stack: Stack) -> dict[str, Any] | None:
    """Post-start hook: give the dev merchant on-chain settings; returns stack.json's `chain` entry."""
    plan = stack.plan
    chain = plan.extras.get("chain")
    if not plan.chain or not chain:
        return None
    merchant = read_json(plan.home / "dev_merchant.json")
    if not merchant or not merchant.get("id"):
        raise RuntimeError("the dev merchant is not known yet ($PAYGATE_HOME/dev_merchant.json is missing)")
    async with grpc.aio.insecure_channel(plan.grpc_addr("session")) as channel:
        session = session_pb2_grpc.SessionServiceStub(channel)
        current = await session.GetPaymentSettings(
            session_pb2.GetPaymentSettingsRequest(merchant_id=merchant["id"]), timeout=10
        )
        await session.UpdatePaymentSettings(
            session_pb2.UpdatePaymentSettingsRequest(
                settings=session_pb2.PaymentSettings(
                    merchant_id=merchant["id"],
                    default_currency=current.default_currency or "EUR",
                    onchain=onchain_settings(chain["chain_id"], chain["token"], DEV_MIN_CONFIRMATIONS),
                )
            ),
            timeout=10,
        )
    return {
        "chain": {
            "rpc_url": chain["rpc_url"],
            "chain_id": chain["chain_id"],
            "token": chain["token"],
            "min_confirmations": DEV_MIN_CONFIRMATIONS,
        }
    }
