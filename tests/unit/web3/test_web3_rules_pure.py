"""Pure rules of issue 13: the web3-only pending -> expired move, live sessions on live chains only, token
metadata checks, money from before a session, internal transfers from traces, per-mode chain config."""

from __future__ import annotations

import pytest

from paygate_runtime.chain_config import load_chain_nodes
from paygate_runtime.config import ConfigError, Env
from paygate_runtime.errors import FailedPrecondition, InvalidArgument
from session_service.domain.deposit_addresses import (
    account_index,
    derivation_path,
    dev_xpub_from_mnemonic,
    first_addresses,
)
from session_service.domain.payment_settings import (
    AcceptedToken,
    check_token_metadata,
    require_chain_for_mode,
)
from session_service.domain.states import (
    TERMINAL,
    SessionStatus,
    can_move,
    next_statuses,
    require_move,
)
from webhook_gateway.chain.deposits_repository import DepositRow
from webhook_gateway.chain.settlement import SessionInfo, before_session
from webhook_gateway.chain.verification import internal_log_index, internal_transfers
from webhook_gateway.entrypoints.deposit_objects import deposit_stage

S = SessionStatus
WATCHED = "0x1111111111111111111111111111111111111111"
OTHER = "0x2222222222222222222222222222222222222222"
WALLET = "0x3333333333333333333333333333333333333333"
TX = "0x" + "ab" * 32


# ----------------------------------------------------------------------------------------- states
def test_pending_expires_for_web3_only() -> None:
    assert can_move(S.PENDING, S.EXPIRED, "web3")
    for provider in ("stripe", "onecom", "card", None, ""):
        assert not can_move(S.PENDING, S.EXPIRED, provider)
    assert next_statuses(S.PENDING, "web3") == {S.PAID, S.FAILED, S.EXPIRED}
    assert next_statuses(S.PENDING) == {S.PAID, S.FAILED}
    require_move(S.PENDING, S.EXPIRED, "web3")
    with pytest.raises(FailedPrecondition):
        require_move(S.PENDING, S.EXPIRED, "stripe")
    # Terminal states stay terminal; the new move never leaves one.
    assert {S.PAID, S.FAILED, S.EXPIRED, S.REFUNDED} == TERMINAL
    assert can_move(S.CREATED, S.EXPIRED, "stripe") and can_move(S.CREATED, S.EXPIRED)


# ----------------------------------------------------------------------------------------- payment settings
def test_a_live_session_needs_a_mainnet_chain() -> None:
    require_chain_for_mode(31337, "test", frozenset({1}))
    require_chain_for_mode(1, "live", frozenset({1}))
    require_chain_for_mode(10, "live", frozenset({1, 10}))
    with pytest.raises(FailedPrecondition) as caught:
        require_chain_for_mode(31337, "live", frozenset({1}))
    assert caught.value.code == "test_chain_in_live_mode"


def test_token_metadata_must_match_the_contract() -> None:
    token = AcceptedToken("0x" + "44" * 20, "USDC", 6)
    check_token_metadata(token, "USDC", 6)
    check_token_metadata(token, "usdc ", 6)  # contracts differ in case; codes are upper case
    with pytest.raises(InvalidArgument) as caught:
        check_token_metadata(token, "USDC", 18)
    assert caught.value.code == "token_decimals_mismatch"
    with pytest.raises(InvalidArgument) as caught:
        check_token_metadata(token, "DAI", 6)
    assert caught.value.code == "token_symbol_mismatch"


def test_the_account_path_of_an_xpub_and_its_first_addresses() -> None:
    xpub = dev_xpub_from_mnemonic()
    assert account_index(xpub) == 0
    assert derivation_path(3) == "m/44'/60'/0'/0/3"
    assert derivation_path(3, account=1000) == "m/44'/60'/1000'/0/3"
    addresses = first_addresses(xpub)
    assert len(addresses) == 5 and len(set(addresses)) == 5


# ----------------------------------------------------------------------------------------- money before a session
def _info(created_at: float | None) -> SessionInfo:
    return SessionInfo(
        session_id="s",
        merchant_id="m",
        mode="test",
        status="created",
        amount_minor=1,
        currency="ETH",
        exponent=18,
        chain_id=1,
        deposit_address=WATCHED,
        token=None,
        min_confirmations=1,
        expires_at=None,
        created_at=created_at,
    )


def test_money_from_before_the_session_is_not_its_money() -> None:
    created = 1_700_000_000.7
    assert before_session(_info(created), 1_699_999_999, 0)
    assert not before_session(_info(created), 1_700_000_000, 0)  # the creation second still counts
    assert not before_session(_info(created), 1_699_999_990, 12)  # a slot's skew is allowed for
    assert before_session(_info(created), 1_699_999_987, 12)
    assert not before_session(_info(None), 0, 0)


# ----------------------------------------------------------------------------------------- traces
def _trace(address: list[int], to: str, value: int, *, error: bool = False, call: str = "call") -> dict:
    trace = {
        "transactionHash": TX,
        "type": "call",
        "traceAddress": address,
        "action": {"from": WALLET, "to": to, "value": hex(value), "callType": call},
    }
    if error:
        trace["error"] = "Reverted"
    return trace


def test_internal_transfers_come_from_successful_nested_calls_only() -> None:
    traces = [
        _trace([], OTHER, 5),  # the tx's own value: found from the tx itself
        _trace([0], WATCHED, 7),  # a contract wallet forwards 7 wei to the deposit address
        _trace([1], WATCHED, 9, error=True),  # failed: moved nothing
        _trace([1, 0], WATCHED, 11),  # below a failed call: undone with it
        _trace([2], WATCHED, 13, call="delegatecall"),  # no ETH of its own
        _trace([3], OTHER, 17),  # someone else's money
        _trace([4], WATCHED, 0),  # no value
    ]
    found = internal_transfers(traces, {WATCHED.lower()})
    assert found == [(TX, internal_log_index(1), WALLET, WATCHED, 7)]
    assert internal_log_index(0) == -2  # -1 stays the tx's own top-level value


def test_a_reverted_transaction_has_no_internal_transfers() -> None:
    traces = [_trace([], OTHER, 0, error=True), _trace([0], WATCHED, 7)]
    assert internal_transfers(traces, {WATCHED.lower()}) == []


# ----------------------------------------------------------------------------------------- deposit stages
def _row(block: int, canonical: bool = True) -> DepositRow:
    return DepositRow(
        chain_id=1,
        tx_hash=TX,
        log_index=-1,
        session_id="s",
        deposit_address=WATCHED,
        token=None,
        from_address=WALLET,
        amount_minor=1,
        block_number=block,
        block_hash="0x",
        block_timestamp=0,
        canonical=canonical,
        source="watcher",
        claimed=False,
        reported_as=None,
    )


def test_a_deposit_is_seen_confirmed_or_reorged_out() -> None:
    assert deposit_stage(_row(10), head=10, needed=2) == ("seen", 1)
    assert deposit_stage(_row(10), head=11, needed=2) == ("confirmed", 2)
    assert deposit_stage(_row(10, canonical=False), head=20, needed=2) == ("reorged_out", 0)


# ----------------------------------------------------------------------------------------- per-mode chains
def test_unsuffixed_chain_variables_mean_test() -> None:
    nodes = load_chain_nodes(Env({"PAYGATE_CHAIN_RPC_URL": "http://node:8545", "PAYGATE_CHAIN_ID": "31337"}))
    assert nodes.for_mode("test") is not None and nodes.for_mode("test").chain_id == 31337  # type: ignore[union-attr]
    assert nodes.for_mode("live") is None


def test_each_mode_has_its_own_chain_and_live_must_be_a_mainnet() -> None:
    env = {
        "PAYGATE_CHAIN_RPC_URL_TEST": "http://sepolia:8545",
        "PAYGATE_CHAIN_ID_TEST": "11155111",
        "PAYGATE_CHAIN_RPC_URL_LIVE": "https://mainnet.example",
        "PAYGATE_CHAIN_ID_LIVE": "1",
    }
    nodes = load_chain_nodes(Env(env))
    assert {m: c.chain_id for m, c in nodes.chains.items()} == {"test": 11155111, "live": 1}
    with pytest.raises(ConfigError) as caught:
        load_chain_nodes(Env({**env, "PAYGATE_CHAIN_ID_LIVE": "31337"}))
    assert caught.value.variable == "PAYGATE_CHAIN_ID_LIVE"
    nodes = load_chain_nodes(Env({**env, "PAYGATE_CHAIN_ID_LIVE": "10", "PAYGATE_CHAIN_MAINNET_IDS": "1,10"}))
    assert nodes.for_mode("live").chain_id == 10  # type: ignore[union-attr]
    with pytest.raises(ConfigError) as caught:
        load_chain_nodes(Env({**env, "PAYGATE_CHAIN_ID_TEST": "1"}))
    assert caught.value.variable == "PAYGATE_CHAIN_ID_TEST"


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"PAYGATE_CHAIN_RPC_URL": "http://node:8545"}, "PAYGATE_CHAIN_ID"),
        ({"PAYGATE_CHAIN_ID": "31337"}, "PAYGATE_CHAIN_RPC_URL"),
        ({"PAYGATE_CHAIN_RPC_URL_TEST": "http://node:8545"}, "PAYGATE_CHAIN_ID_TEST"),
        ({"PAYGATE_CHAIN_RPC_URL_LIVE": "https://node"}, "PAYGATE_CHAIN_ID_LIVE"),
        ({"PAYGATE_CHAIN_ID_LIVE": "1"}, "PAYGATE_CHAIN_RPC_URL_LIVE"),
    ],
)
def test_a_url_without_its_chain_id_names_the_missing_variable(env: dict[str, str], missing: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_chain_nodes(Env(env))
    assert caught.value.variable == missing


def test_the_gateway_exits_2_naming_the_missing_chain_id(capsys: pytest.CaptureFixture[str]) -> None:
    from paygate_runtime.config import exit_on_config_error
    from webhook_gateway.entrypoints.main import load_config

    with pytest.raises(ConfigError) as caught:
        load_config(Env({"PAYGATE_CHAIN_RPC_URL": "http://127.0.0.1:8545"}))
    with pytest.raises(SystemExit) as exited:
        exit_on_config_error(caught.value)
    assert exited.value.code == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("paygate: configuration error: PAYGATE_CHAIN_ID ") and "\n" not in line


def test_token_symbols_decode_as_abi_strings_or_bytes32() -> None:
    from session_service.adapters.chain_probe import _abi_string

    encoded = (
        "0x" + (32).to_bytes(32, "big").hex() + (4).to_bytes(32, "big").hex() + b"USDC".hex().ljust(64, "0")
    )
    assert _abi_string(encoded) == "USDC"
    assert _abi_string("0x" + b"MKR".hex().ljust(64, "0")) == "MKR"  # early tokens return bytes32
    for bad in ("0x", None, "0x" + "00" * 40, "0x" + (999).to_bytes(32, "big").hex() + "00" * 32):
        with pytest.raises(ValueError):
            _abi_string(bad)
