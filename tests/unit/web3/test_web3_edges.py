"""Small pieces of the web3 edge: hint normalisation, chain configuration, `paygate pay` arithmetic."""

from __future__ import annotations

from typing import Any

import pytest

from paygate_dev.chain.pay_cmd import PayError, blocks_to_mine, resolve_asset, to_minor
from paygate_runtime.config import ConfigError, Env
from webhook_gateway.entrypoints.main import load_config
from webhook_gateway.entrypoints.routes_web3 import normalized_hint
from webhook_gateway.providers.standard_webhooks import Web3Hint

TX = "0x" + "ab" * 32
SID = "7d0b7a1e-1f1e-4c43-9f6a-5f0f3c1b2a10"
TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def test_a_usable_hint_is_stored_for_the_chain_check_with_its_tx_as_reference() -> None:
    event = normalized_hint(Web3Hint("msg_1", 31337, TX, SID), "transaction.detected")
    assert (event.provider, event.kind, event.session_id, event.provider_reference) == (
        "web3",
        "pending",
        SID,
        TX,
    )
    assert event.amount_minor is None  # a hint's claims about money are never carried


@pytest.mark.parametrize(
    ("hint", "reason"),
    [
        (Web3Hint("msg_2", None, None, None, ignore_reason="unknown_type"), "unknown_type"),
        (Web3Hint("msg_3", None, None, SID, ignore_reason="malformed_payload"), "malformed_payload"),
        (Web3Hint("msg_4", 31337, TX, None), "no_session_reference"),
    ],
)
def test_unusable_hints_are_stored_as_ignored(hint: Web3Hint, reason: str) -> None:
    event = normalized_hint(hint, "transaction.detected")
    assert event.ignored and event.ignore_reason == reason


def test_chain_settings_are_off_by_default_and_need_a_chain_id_with_an_rpc_url() -> None:
    config = load_config(Env({}))
    assert config.chain_rpc_url is None and config.chain_id is None and config.chain_watcher_enabled
    with pytest.raises(ConfigError, match="PAYGATE_CHAIN_ID"):
        load_config(Env({"PAYGATE_CHAIN_RPC_URL": "http://127.0.0.1:8545"}))
    config = load_config(
        Env(
            {
                "PAYGATE_CHAIN_RPC_URL": "http://127.0.0.1:8545",
                "PAYGATE_CHAIN_ID": "31337",
                "PAYGATE_CHAIN_POLL_MS": "250",
                "PAYGATE_CHAIN_RESCAN_BLOCKS": "3",
                "PAYGATE_CHAIN_WATCHER": "false",
                "PAYGATE_CHAIN_START_BLOCK": "0",
            }
        )
    )
    assert (config.chain_id, config.chain_poll_interval_s, config.chain_rescan_blocks) == (31337, 0.25, 3)
    assert config.chain_watcher_enabled is False and config.chain_start_block == 0
    with pytest.raises(ConfigError):
        load_config(Env({"PAYGATE_CHAIN_RPC_URL": "http://x", "PAYGATE_CHAIN_ID": "0"}))


@pytest.mark.parametrize(
    ("amount", "exponent", "minor"),
    [("0.05", 18, 5 * 10**16), ("12.5", 6, 12_500_000), ("1", 0, 1), ("0.000001", 6, 1)],
)
def test_amounts_convert_exactly_to_minor_units(amount: str, exponent: int, minor: int) -> None:
    assert to_minor(amount, exponent) == minor


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "0.0000001", "NaN", "Infinity"])
def test_bad_amounts_are_refused(bad: str) -> None:
    with pytest.raises(PayError):
        to_minor(bad, 6)


def test_the_asset_to_pay_with_defaults_to_the_sessions_own() -> None:
    chain = {"token": {"address": TOKEN, "symbol": "TUSD", "decimals": 6}}
    token_session = {"currency": "TUSD", "amount": "1.000000", "payment": {"token": TOKEN}}
    eth_session = {"currency": "ETH", "amount": "0.1", "payment": {"token": None}}
    assert resolve_asset(None, token_session, chain) == (TOKEN, 6, "TUSD")
    assert resolve_asset(None, eth_session, chain) == (None, 18, "ETH")
    assert resolve_asset("eth", token_session, chain) == (None, 18, "ETH")
    assert resolve_asset("tusd", eth_session, chain) == (TOKEN, 6, "TUSD")
    with pytest.raises(PayError):
        resolve_asset("DOGE", eth_session, chain)


def test_pay_mines_what_the_sessions_confirmations_still_need_unless_told() -> None:
    def session(confirmations: int | None) -> dict[str, Any]:
        return {"payment": {"min_confirmations": confirmations}}

    assert blocks_to_mine(None, session(2)) == 1  # the payment's own block is the first confirmation
    assert blocks_to_mine(None, session(12)) == 11
    assert blocks_to_mine(None, session(1)) == 0
    assert blocks_to_mine(None, session(None)) == 0
    assert blocks_to_mine(0, session(12)) == 0  # explicit: leave it unconfirmed
    assert blocks_to_mine(5, session(2)) == 5
    assert blocks_to_mine(-3, session(2)) == 0


def test_the_gateway_puts_back_the_recursion_limit_that_importing_web3_raises() -> None:
    import sys

    import web3  # noqa: F401 - py_ecc, imported with it, raises the limit to 100 000

    from webhook_gateway.entrypoints.routes_web3 import GATEWAY_RECURSION_LIMIT, restore_recursion_limit

    before = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(100_000)
        restore_recursion_limit()
        assert sys.getrecursionlimit() == GATEWAY_RECURSION_LIMIT
    finally:
        sys.setrecursionlimit(before)
