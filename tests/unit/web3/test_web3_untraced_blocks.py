"""Blocks the node cannot trace, on web3's in-process EthereumTester chain behind a provider that answers every
trace_block with a per-block error: the scan still finds top-level transfers and names the untraced blocks,
and the watcher records them, moves its cursor on and settles the touched native-coin sessions by balance
difference. A node without trace_block at all is a configuration fault, not a block's."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from web3 import AsyncWeb3
from web3.providers.eth_tester import AsyncEthereumTesterProvider
from web3.types import RPCEndpoint, RPCResponse
from web3_unit_fakes import FakeAddresses, FakeLedger, FakeSessionService

from paygate.session.v1 import session_pb2
from webhook_gateway.chain.untraced_blocks import UntracedBlockRow
from webhook_gateway.chain.verification import ChainUnavailable, scan_blocks, scan_range
from webhook_gateway.chain.watcher import ChainWatcher, WatcherSettings
from webhook_gateway.chain.web3_service import ChainSettings, Web3Service

FINNEY = 10**15


class FakeUntraced:
    """In-memory UntracedBlocksRepository."""

    def __init__(self) -> None:
        self.rows: dict[int, UntracedBlockRow] = {}
        self.resolved: set[int] = set()

    async def record_failure(
        self,
        chain_id: int,
        block_number: int,
        *,
        block_hash: str,
        error: str,
        fallback_sessions: Iterable[str],
        base_s: float,
        cap_s: float,
    ) -> UntracedBlockRow:
        now = datetime.now(UTC)
        old = self.rows.get(block_number)
        failures = 1 if old is None else old.failures + 1
        row = UntracedBlockRow(
            chain_id=chain_id,
            block_number=block_number,
            block_hash=block_hash,
            failures=failures,
            last_error=error,
            fallback_sessions=frozenset(fallback_sessions) | (old.fallback_sessions if old else frozenset()),
            first_failed_at=old.first_failed_at if old else now,
            last_error_at=now,
            next_attempt_at=now + timedelta(seconds=min(cap_s, base_s * 2 ** (failures - 1))),
        )
        self.rows[block_number] = row
        self.resolved.discard(block_number)
        return row

    async def resolve(self, chain_id: int, block_numbers: Collection[int]) -> int:
        done = set(block_numbers) & (set(self.rows) - self.resolved)
        self.resolved |= done
        return len(done)

    async def open_blocks(self, chain_id: int, limit: int = 100) -> list[UntracedBlockRow]:
        return [self.rows[n] for n in sorted(self.rows) if n not in self.resolved][:limit]

    async def fallback_sessions(self, chain_id: int) -> set[str]:
        return {s for row in await self.open_blocks(chain_id) for s in row.fallback_sessions}

    def due_now(self) -> None:
        for number, row in self.rows.items():
            self.rows[number] = replace(row, next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))


class UntraceableProvider(AsyncEthereumTesterProvider):
    """EthereumTester has no trace_block at all (-32601); this one answers it as a node that fails to trace
    each block (an out-of-memory tracer, say)."""

    async def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        if method == "trace_block":
            error = {"code": -32000, "message": f"tracing block {params[0]} failed: out of memory"}
            return {"jsonrpc": "2.0", "id": 0, "error": error}  # type: ignore[typeddict-item]
        return await super().make_request(method, params)


@dataclass
class EvmNode:
    w3: AsyncWeb3
    payer: str

    async def pay_eth(self, to: str, value: int) -> int:
        tx = await self.w3.eth.send_transaction({"from": self.payer, "to": to, "value": value})
        return int((await self.w3.eth.wait_for_transaction_receipt(tx))["blockNumber"])


@pytest.fixture(scope="module")
async def tester() -> EvmNode:
    w3 = AsyncWeb3(UntraceableProvider())
    return EvmNode(w3, (await w3.eth.accounts)[0])


def fresh_address() -> str:
    return AsyncWeb3.to_checksum_address(os.urandom(20))


async def test_a_scan_names_the_blocks_it_could_not_trace_and_still_finds_top_level_transfers(
    tester: EvmNode,
) -> None:
    deposit = fresh_address()
    start = await tester.w3.eth.block_number + 1
    paid_in = await tester.pay_eth(deposit, 3 * FINNEY)
    end = await tester.w3.eth.block_number

    scan = await scan_range(tester.w3, start, end, {deposit}, set(), traces=True)
    assert [(t.to_address, t.amount_minor, t.block_number) for t in scan.transfers] == [
        (deposit, 3 * FINNEY, paid_in)
    ]
    assert [b.number for b in scan.untraced] == list(range(start, end + 1))
    assert "out of memory" in scan.untraced[0].error and not scan.traced
    block = await tester.w3.eth.get_block(paid_in)
    assert scan.untraced[-1].block_hash == block["hash"].to_0x_hex()

    # Blocks waiting for their retry are not traced again; without traces nothing is untraced.
    skipped = await scan_range(tester.w3, start, end, {deposit}, set(), traces=True, skip_traces={paid_in})
    assert paid_in not in [b.number for b in skipped.untraced]
    assert (await scan_range(tester.w3, start, end, {deposit}, set())).untraced == []
    # The list-returning scan keeps failing on a block it cannot trace (its callers want all or nothing).
    with pytest.raises(ChainUnavailable, match="trace_block"):
        await scan_blocks(tester.w3, start, end, {deposit}, set(), traces=True)


async def test_the_watcher_moves_past_untraceable_blocks_and_settles_touched_sessions_by_balance(
    tester: EvmNode,
) -> None:
    chain_id = await tester.w3.eth.chain_id
    ledger, sessions, untraced = FakeLedger(), FakeSessionService(), FakeUntraced()
    settings = ChainSettings(
        chain_id=chain_id,
        rpc_url="in-process",
        internal_transfers="traces",
        error_backoff_base_s=60,
        error_backoff_cap_s=600,
    )
    service = Web3Service(tester.w3, sessions, ledger, settings, addresses=FakeAddresses())  # type: ignore[arg-type]
    watcher = ChainWatcher(
        service,
        ledger,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        chain_id,
        WatcherSettings(rescan_blocks=1, max_blocks_per_pass=50),
        untraced=untraced,  # type: ignore[arg-type]
    )
    touched, untouched = fresh_address(), fresh_address()
    touched_sid = sessions.add_web3_session(
        chain_id=chain_id, deposit_address=touched, amount_minor=5 * FINNEY
    )
    untouched_sid = sessions.add_web3_session(
        chain_id=chain_id, deposit_address=untouched, amount_minor=FINNEY
    )
    await watcher.run_pass()
    before = ledger.cursors[chain_id]

    paid_in = await tester.pay_eth(touched, 5 * FINNEY)
    report = await watcher.run_pass()
    assert report.untraced >= 1 and ledger.cursors[chain_id] >= paid_in > before
    row = untraced.rows[paid_in]
    assert row.failures == 1 and "out of memory" in row.last_error
    # Only the session whose address the block touched is settled by balance while the block is untraced.
    assert row.fallback_sessions == {touched_sid}
    assert untouched_sid not in await untraced.fallback_sessions(chain_id)
    assert sessions.status_of(touched_sid) == session_pb2.SESSION_STATUS_PAID

    # Inside its backoff the block is left alone; once due it is traced again (and fails again here).
    await watcher.run_pass()
    assert untraced.rows[paid_in].failures == 1
    untraced.due_now()
    await watcher.run_pass()
    assert untraced.rows[paid_in].failures == 2
    assert untraced.rows[paid_in].next_attempt_at - untraced.rows[paid_in].last_error_at >= timedelta(
        seconds=119
    )


async def test_a_node_without_trace_block_fails_the_scan_instead_of_recording_every_block() -> None:
    w3 = AsyncWeb3(AsyncEthereumTesterProvider())  # answers trace_block with -32601 (method not found)
    with pytest.raises(ChainUnavailable, match="PAYGATE_CHAIN_INTERNAL_TRANSFERS"):
        await scan_range(w3, 0, await w3.eth.block_number, {fresh_address()}, set(), traces=True)
