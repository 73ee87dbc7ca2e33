"""Web3Service (the verification path shared by webhook and watcher) on web3's in-process EthereumTester chain.

The ledger and the session service are in-memory fakes (web3_unit_fakes); the chain is real EVM execution.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from web3 import AsyncWeb3
from web3.providers.eth_tester import AsyncEthereumTesterProvider
from web3_unit_fakes import FakeAddresses, FakeLedger, FakeSessionService

from paygate.session.v1 import session_pb2
from paygate_dev.chain.test_token import deploy_test_token, transfer_token
from paygate_dev.devtools.signing import encode_body
from webhook_gateway.adapters.inbox_repository import InboxEvent
from webhook_gateway.chain.watcher import ChainWatcher, WatcherSettings
from webhook_gateway.chain.web3_service import ChainSettings, Web3Service, connect_web3
from webhook_gateway.providers.standard_webhooks import Web3Hint
from webhook_gateway.service_layer.relay import RetryLater, SessionUnknown

ETH = 10**18


@dataclass
class Rig:
    w3: AsyncWeb3
    chain_id: int
    payer: str
    token: str
    fake_token: str
    ledger: FakeLedger
    sessions: FakeSessionService
    service: Web3Service

    async def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            await self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    async def pay_eth(self, to: str, value: int) -> str:
        tx = await self.w3.eth.send_transaction({"from": self.payer, "to": to, "value": value})
        await self.w3.eth.wait_for_transaction_receipt(tx)
        return tx.to_0x_hex()

    def hint(self, tx_hash: str, session_id: str, chain_id: int | None = None) -> Web3Hint:
        return Web3Hint(f"msg_{uuid.uuid4().hex}", chain_id or self.chain_id, tx_hash.lower(), session_id)


@pytest.fixture(scope="module")
async def tester() -> tuple[AsyncWeb3, str, str, str]:
    w3 = AsyncWeb3(AsyncEthereumTesterProvider())
    payer = (await w3.eth.accounts)[0]
    return w3, payer, await deploy_test_token(w3, payer), await deploy_test_token(w3, payer)


@pytest.fixture
async def rig(tester: tuple[AsyncWeb3, str, str, str]) -> AsyncIterator[Rig]:
    w3, payer, token, fake = tester
    chain_id = await w3.eth.chain_id
    ledger, sessions = FakeLedger(), FakeSessionService()
    settings = ChainSettings(
        chain_id=chain_id, rpc_url="in-process", tx_wait_s=60, reorg_depth=64, internal_transfers="balance"
    )
    service = Web3Service(w3, sessions, ledger, settings, addresses=FakeAddresses())  # type: ignore[arg-type]
    yield Rig(w3, chain_id, payer, token, fake, ledger, sessions, service)


def fresh_address() -> str:
    return AsyncWeb3.to_checksum_address(os.urandom(20))


def now() -> datetime:
    return datetime.now(UTC)


async def test_an_eth_hint_is_verified_recorded_and_pays_once_confirmed(rig: Rig) -> None:
    deposit = fresh_address()
    sid = rig.sessions.add_web3_session(
        chain_id=rig.chain_id, deposit_address=deposit, amount_minor=ETH // 10, min_confirmations=3
    )
    tx = await rig.pay_eth(deposit, ETH // 10)

    verdict = await rig.service.handle_hint(rig.hint(tx, sid), received_at=now())
    assert (verdict.status, verdict.outcome) == ("applied", "deposit_pending")
    assert rig.sessions.status_of(sid) == session_pb2.SESSION_STATUS_PENDING

    await rig.mine(2)
    info = await rig.service.get_session_info(sid)
    assert info is not None
    result = await rig.service.settle(info)
    assert result.status == "paid" and result.confirmed_total == ETH // 10
    applied = rig.sessions.sessions[sid].applied
    assert [(a.provider_event_id, a.kind) for a in applied] == [
        (f"web3:{sid}:seen", session_pb2.EVENT_KIND_PENDING),
        (f"web3:{sid}:confirmed", session_pb2.EVENT_KIND_SUCCEEDED),
    ]
    assert applied[1].amount.amount_minor == str(ETH // 10) and applied[1].provider_reference == tx
    # Settling again (every watcher pass does) sends nothing new.
    await rig.service.settle(info)
    assert len(rig.sessions.sessions[sid].applied) == 2


async def test_a_token_hint_counts_only_the_accepted_contract(rig: Rig) -> None:
    deposit = fresh_address()
    sid = rig.sessions.add_web3_session(
        chain_id=rig.chain_id,
        deposit_address=deposit,
        amount_minor=5_000_000,
        currency="TUSD",
        exponent=6,
        token=rig.token,
    )
    fake_tx = await transfer_token(rig.w3, rig.fake_token, rig.payer, deposit, 5_000_000)
    verdict = await rig.service.handle_hint(rig.hint(fake_tx, sid), received_at=now())
    assert (verdict.status, verdict.outcome) == ("ignored", "no_transfer_to_deposit_address")
    assert rig.ledger.rows == {}

    real_tx = await transfer_token(rig.w3, rig.token, rig.payer, deposit, 5_000_000)
    verdict = await rig.service.handle_hint(rig.hint(real_tx, sid), received_at=now())
    assert (verdict.status, verdict.outcome) == ("applied", "deposit_paid")
    assert rig.sessions.status_of(sid) == session_pb2.SESSION_STATUS_PAID


async def test_an_unknown_tx_is_retried_then_ignored(rig: Rig) -> None:
    sid = rig.sessions.add_web3_session(
        chain_id=rig.chain_id, deposit_address=fresh_address(), amount_minor=1
    )
    missing = "0x" + os.urandom(32).hex()
    with pytest.raises(RetryLater, match="tx_not_found"):
        await rig.service.handle_hint(rig.hint(missing, sid), received_at=now())
    verdict = await rig.service.handle_hint(rig.hint(missing, sid), received_at=now() - timedelta(minutes=5))
    assert (verdict.status, verdict.outcome) == ("ignored", "tx_not_found")
    assert rig.sessions.sessions[sid].applied == []


async def test_wrong_chain_and_other_sessions_money_are_refused(rig: Rig) -> None:
    deposit = fresh_address()
    owner = rig.sessions.add_web3_session(chain_id=rig.chain_id, deposit_address=deposit, amount_minor=7)
    other = rig.sessions.add_web3_session(
        chain_id=rig.chain_id, deposit_address=fresh_address(), amount_minor=7
    )
    tx = await rig.pay_eth(deposit, 7)

    wrong_chain = await rig.service.handle_hint(rig.hint(tx, owner, chain_id=1), received_at=now())
    assert wrong_chain.outcome == "wrong_chain_id"
    mismatch = await rig.service.handle_hint(rig.hint(tx, other), received_at=now())
    assert (mismatch.status, mismatch.outcome) == ("ignored", "session_mismatch")
    assert rig.ledger.rows == {}
    assert rig.sessions.sessions[other].applied == [] and rig.sessions.sessions[owner].applied == []


async def test_a_transfer_already_counted_for_another_session_is_not_counted_again(rig: Rig) -> None:
    deposit = fresh_address()
    first = rig.sessions.add_web3_session(chain_id=rig.chain_id, deposit_address=deposit, amount_minor=7)
    tx = await rig.pay_eth(deposit, 7)
    assert (await rig.service.handle_hint(rig.hint(tx, first), received_at=now())).outcome == "deposit_paid"
    # The merchant re-used the address for a new session (it never should): the transfer stays with the first.
    second = rig.sessions.add_web3_session(chain_id=rig.chain_id, deposit_address=deposit, amount_minor=7)
    verdict = await rig.service.handle_hint(rig.hint(tx, second), received_at=now())
    assert (verdict.status, verdict.outcome) == ("ignored", "transfer_counted_for_other_session")
    assert rig.sessions.sessions[second].applied == []


async def test_session_service_trouble_is_retried_or_waits_for_the_session(rig: Rig) -> None:
    deposit = fresh_address()
    sid = rig.sessions.add_web3_session(chain_id=rig.chain_id, deposit_address=deposit, amount_minor=7)
    tx = await rig.pay_eth(deposit, 7)
    with pytest.raises(SessionUnknown):
        await rig.service.handle_hint(rig.hint(tx, str(uuid.uuid4())), received_at=now())
    rig.sessions.unavailable = True
    with pytest.raises(RetryLater):
        await rig.service.handle_hint(rig.hint(tx, sid), received_at=now())


async def test_a_down_node_or_missing_configuration_keeps_the_event(rig: Rig) -> None:
    sid = rig.sessions.add_web3_session(
        chain_id=rig.chain_id, deposit_address=fresh_address(), amount_minor=7
    )
    body = encode_body(
        {
            "type": "transaction.detected",
            "data": {"chain_id": rig.chain_id, "tx_hash": "0x" + "1" * 64, "session_id": sid},
        }
    )
    event = InboxEvent(
        id=str(uuid.uuid4()),
        provider="web3",
        event_id="msg_1",
        event_type="transaction.detected",
        raw_body=body,
        received_at=now(),
        status="received",
        attempts=1,
        next_attempt_at=None,
        last_error=None,
        outcome=None,
        session_id=sid,
        provider_reference=None,
        merchant_id=None,
        mode=None,
        quarantine_id=None,
        updated_at=now(),
    )
    down = Web3Service(
        connect_web3("http://127.0.0.1:9", 1.0),  # nothing listens on the discard port
        rig.sessions,  # type: ignore[arg-type]
        rig.ledger,  # type: ignore[arg-type]
        ChainSettings(chain_id=rig.chain_id, rpc_url="http://127.0.0.1:9"),
        addresses=FakeAddresses(),  # type: ignore[arg-type]
    )
    try:
        with pytest.raises(RetryLater, match="chain_unavailable"):
            await down.handle_inbox_event(event)
    finally:
        await down.close()
    unconfigured = Web3Service(None, rig.sessions, rig.ledger, None, addresses=FakeAddresses())  # type: ignore[arg-type]
    with pytest.raises(RetryLater, match="chain_not_configured"):
        await unconfigured.handle_inbox_event(event)


async def test_native_payments_are_decided_by_balance_even_without_a_visible_tx(rig: Rig) -> None:
    deposit = fresh_address()
    sid = rig.sessions.add_web3_session(chain_id=rig.chain_id, deposit_address=deposit, amount_minor=ETH)
    await rig.pay_eth(deposit, ETH)  # nobody tells the gateway about this tx (as with an internal transfer)
    info = await rig.service.get_session_info(sid)
    assert info is not None
    result = await rig.service.settle(info)
    assert result.status == "paid" and rig.ledger.rows == {}
    confirmed = rig.sessions.sessions[sid].applied[-1]
    assert confirmed.provider_reference == deposit.lower() and confirmed.amount.amount_minor == str(ETH)


async def test_a_reverted_chain_drops_an_unconfirmed_deposit(rig: Rig) -> None:
    deposit = fresh_address()
    sid = rig.sessions.add_web3_session(
        chain_id=rig.chain_id, deposit_address=deposit, amount_minor=5, min_confirmations=3
    )
    snapshot = (await rig.w3.provider.make_request("evm_snapshot", []))["result"]  # type: ignore[arg-type]
    tx = await rig.pay_eth(deposit, 5)
    assert (await rig.service.handle_hint(rig.hint(tx, sid), received_at=now())).outcome == "deposit_pending"
    await rig.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    await rig.mine(4)

    info = await rig.service.get_session_info(sid)
    assert info is not None
    result = await rig.service.settle(info)
    assert result.confirmed_total == 0 and result.status == "pending"
    assert [row.canonical for row in rig.ledger.rows.values()] == [False]
    assert rig.sessions.alerts == []


async def test_late_money_is_quarantined_on_the_expired_session(rig: Rig) -> None:
    deposit = fresh_address()
    head = await rig.w3.eth.get_block("latest")
    expires_at = int(head["timestamp"]) + 100
    sid = rig.sessions.add_web3_session(
        chain_id=rig.chain_id,
        deposit_address=deposit,
        amount_minor=10**6,
        currency="TUSD",
        exponent=6,
        token=rig.token,
        expires_at=expires_at,
    )
    await rig.w3.provider.make_request("testing_timeTravel", [expires_at + 50])  # type: ignore[arg-type]
    tx = await transfer_token(rig.w3, rig.token, rig.payer, deposit, 10**6)

    verdict = await rig.service.handle_hint(rig.hint(tx, sid), received_at=now())
    assert verdict.outcome == "deposit_expired"
    entry = rig.sessions.sessions[sid]
    assert entry.session.status == session_pb2.SESSION_STATUS_EXPIRED
    assert [a.provider_event_id for a in entry.applied] == [
        f"web3:{sid}:late:{tx}:{next(iter(rig.ledger.rows))[2]}"
    ]
    assert entry.quarantined == [entry.applied[0].provider_event_id]
    assert [row.reported_as for row in rig.ledger.rows.values()] == ["late"]


async def test_the_watcher_finds_payments_resumes_and_never_double_counts(rig: Rig) -> None:
    eth_deposit, token_deposit = fresh_address(), fresh_address()
    eth_sid = rig.sessions.add_web3_session(
        chain_id=rig.chain_id, deposit_address=eth_deposit, amount_minor=3
    )
    token_sid = rig.sessions.add_web3_session(
        chain_id=rig.chain_id,
        deposit_address=token_deposit,
        amount_minor=4,
        currency="TUSD",
        exponent=6,
        token=rig.token,
    )
    settings = WatcherSettings(rescan_blocks=1, max_blocks_per_pass=3)
    watcher = ChainWatcher(rig.service, rig.ledger, None, rig.chain_id, settings)  # type: ignore[arg-type]
    await watcher.run_pass()
    start = rig.ledger.cursors[rig.chain_id]

    await rig.pay_eth(eth_deposit, 3)
    await rig.pay_eth(token_deposit, 99)  # ETH to a token session: not its asset
    await transfer_token(rig.w3, rig.token, rig.payer, token_deposit, 4)
    await rig.mine(4)
    head = await rig.w3.eth.block_number
    while rig.ledger.cursors[rig.chain_id] < head:  # three new blocks per pass: it resumes from its cursor
        report = await watcher.run_pass()
        assert (
            report.scanned_to - report.scanned_from <= settings.max_blocks_per_pass + settings.rescan_blocks
        )
    assert rig.ledger.cursors[rig.chain_id] > start
    for _ in range(3):
        await watcher.run_pass()  # re-scans and re-settles change nothing

    assert (
        rig.sessions.status_of(eth_sid)
        == rig.sessions.status_of(token_sid)
        == session_pb2.SESSION_STATUS_PAID
    )
    # The 99 wei of ETH at the token session's address is recorded as a deposit of ETH (not the session's
    # asset) and reported once as the wrong asset, however often the blocks are re-scanned.
    assert sorted((r.session_id, r.amount_minor) for r in rig.ledger.rows.values()) == sorted(
        [(eth_sid, 3), (token_sid, 4), (token_sid, 99)]
    )
    assert [a.provider_event_id for a in rig.sessions.sessions[eth_sid].applied] == [
        f"web3:{eth_sid}:seen",
        f"web3:{eth_sid}:confirmed",
    ]
    token_events = [a.provider_event_id for a in rig.sessions.sessions[token_sid].applied]
    assert sorted(token_events) == sorted(
        [f"web3:{token_sid}:seen", f"web3:{token_sid}:confirmed"]
        + [e for e in token_events if e.startswith(f"web3:{token_sid}:wrong_asset:")]
    )
    assert len([e for e in token_events if ":wrong_asset:" in e]) == 1
