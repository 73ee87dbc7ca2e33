"""The chain watcher: follows new blocks itself, so on-chain payments never depend on a third-party notifier.

Each pass (one replica at a time, see `WatcherLock`):
1. reads the head and the active deposit addresses (SessionService.ListActiveDeposits, including sessions
   closed recently, to catch late money);
2. scans [cursor + 1 - rescan window, head] (at most `max_blocks_per_pass` new blocks) for native-coin
   transfers and ERC-20 `Transfer` logs to those addresses: the window is scanned again on every pass, so a
   transfer that a reorg moved into another block is found again;
3. records what it found (the ledger's unique key makes re-scans and the webhook path harmless) and stores
   the new cursor, so a restart resumes where it stopped;
4. settles every session that has news or may have: sessions that just got deposits, open sessions with
   deposits (their confirmations grow with every block), native-coin sessions (internal transfers show only
   in the balance) and sessions whose deposits are still inside the reorg window (to catch a reorg after
   `paid`). Settling goes through the same Web3Service path as the webhook.

If the node or the session service is down, the pass fails before the cursor moves and is retried. Trouble
with ONE block is not that: when internal transfers come from traces and the node refuses to trace one block
(an error reply for it, or its trace timing out), the block is recorded (`chain_untraced_blocks`, shown in
GET /v1/chain/status and counted in `paygate_chain_untraced_blocks`, read from the table by every replica),
traced again with the address backoff until the node answers, and the cursor moves on. Until then the
native-coin sessions whose deposit address that block touched (its balance changed in the block, or it sent a
tx there) are settled by balance difference as well, as on a node without traces: its top-level and token
transfers were still read from the block.

Trouble with ONE session (a balance read its node refuses, a settlement that raises) never stops the pass
either: it is recorded against that session's deposit address (`chain_addresses.failures`, `last_error`), the
address is left alone for a backoff (5 s doubling to 5 min), and the others settle as usual
(GET /v1/chain/status shows the failing addresses to their merchant).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import grpc

from paygate.session.v1 import session_pb2
from paygate_runtime.tasks import wait_event
from webhook_gateway.chain.deposits_repository import DepositsRepository
from webhook_gateway.chain.settlement import OPEN_STATUSES, SessionInfo, before_session
from webhook_gateway.chain.untraced_blocks import UntracedBlockRow, UntracedBlocksRepository
from webhook_gateway.chain.verification import (
    BlockScan,
    BlockUntraceable,
    ChainUnavailable,
    ObservedTransfer,
    UntracedBlock,
    native_balance_at,
    scan_range,
    trace_block_transfers,
)
from webhook_gateway.chain.web3_service import BlockView, Web3Service, active_deposit_info, chain_guard
from webhook_gateway.service_layer.relay import RetryLater, SessionUnknown

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatcherSettings:
    poll_interval_s: float = 1.0
    rescan_blocks: int = 12
    max_blocks_per_pass: int = 500
    # Closed sessions stay watched this long, so late money is found and quarantined.
    late_window_s: int = 86_400
    # Where a watcher with no stored cursor starts; None: `rescan_blocks` below the current head.
    start_block: int | None = None
    lock_retry_s: float = 5.0


@dataclass
class PassReport:
    head: int
    scanned_from: int
    scanned_to: int
    found: int
    settled: int
    untraced: int = 0


class WatcherLock:
    """`pg_try_advisory_lock` held on one dedicated connection for as long as this replica scans.

    Session-level advisory locks belong to a connection, so the connection is taken out of the pool and kept;
    if it breaks, Postgres releases the lock and this replica stops scanning until it wins the lock again.
    """

    def __init__(self, pool: asyncpg.Pool, chain_id: int) -> None:
        self.pool = pool
        self.chain_id = chain_id
        self._conn: asyncpg.pool.PoolConnectionProxy | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    async def try_acquire(self) -> bool:
        if self._conn is not None:
            return True
        conn = await self.pool.acquire()
        try:
            got = await conn.fetchval(
                "SELECT pg_try_advisory_lock(hashtextextended('paygate-chain-watcher:' || $1::text, 0))",
                str(self.chain_id),
            )
        except BaseException:
            await self.pool.release(conn)
            raise
        if not got:
            await self.pool.release(conn)
            return False
        self._conn = conn
        return True

    async def still_held(self) -> bool:
        if self._conn is None:
            return False
        try:
            await self._conn.fetchval("SELECT 1", timeout=5)
            return True
        except (asyncpg.PostgresError, OSError, TimeoutError, asyncpg.InterfaceError):
            await self._drop()
            return False

    async def release(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(Exception):
            await self._conn.fetchval(
                "SELECT pg_advisory_unlock(hashtextextended('paygate-chain-watcher:' || $1::text, 0))",
                str(self.chain_id),
            )
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # Closed, never returned: the pool does not reset a returned connection's session state
            # (paygate_runtime/db.py), and an unlock that failed would hand this lock to the next borrower.
            with contextlib.suppress(Exception):
                conn.terminate()


class ChainWatcher:
    def __init__(
        self,
        service: Web3Service,
        repo: DepositsRepository,
        pool: asyncpg.Pool,
        chain_id: int,
        settings: WatcherSettings,
        *,
        untraced: UntracedBlocksRepository | None = None,
    ) -> None:
        self.service = service
        self.repo = repo
        self.chain_id = chain_id
        self.settings = settings
        self.lock = WatcherLock(pool, chain_id)
        # Used only when internal transfers come from traces.
        self.untraced = untraced if untraced is not None else UntracedBlocksRepository(pool)
        self.passes = 0
        self._last_head: int | None = None

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Scan forever (or until `stop`), whenever this replica holds the watcher lock."""
        try:
            while stop is None or not stop.is_set():
                delay = self.settings.poll_interval_s
                try:
                    if await self.lock.try_acquire() and await self.lock.still_held():
                        await self.run_pass()
                    else:
                        delay = self.settings.lock_retry_s
                except asyncio.CancelledError:
                    raise
                except (ChainUnavailable, RetryLater) as exc:
                    log.warning("chain watcher pass deferred", extra={"reason": str(exc)})
                except Exception:
                    log.exception("chain watcher pass failed; retrying")
                if stop is None:
                    await asyncio.sleep(delay)
                else:
                    await wait_event(stop, delay)
        finally:
            await self.lock.release()

    async def active_sessions(self) -> list[SessionInfo]:
        try:
            reply = await self.service.session.ListActiveDeposits(
                session_pb2.ListActiveDepositsRequest(
                    chain_id=self.chain_id, include_closed_within_seconds=self.settings.late_window_s
                ),
                timeout=self.service._deadline,
            )
        except grpc.aio.AioRpcError as error:
            raise RetryLater(f"ListActiveDeposits: {error.code().name}") from None
        return [active_deposit_info(d) for d in reply.deposits]

    async def _record_failure(self, info: SessionInfo, exc: BaseException) -> None:
        settings = self.service.settings
        assert settings is not None
        error = f"{type(exc).__name__}: {exc}"
        try:
            await self.service.addresses.ensure(
                info.session_id,
                chain_id=info.chain_id,
                merchant_id=info.merchant_id,
                deposit_address=info.deposit_address,
                session_created_at=info.created_at or 0.0,
            )
            state = await self.service.addresses.record_failure(
                info.session_id, error, settings.error_backoff_base_s, settings.error_backoff_cap_s
            )
        except asyncpg.PostgresError:
            log.exception("recording a watcher failure failed", extra={"session_id": info.session_id})
            return
        log.warning(
            "settling a web3 session failed; retrying after a backoff",
            extra={
                "session_id": info.session_id,
                "deposit_address": info.deposit_address,
                "failures": state.failures,
                "error": error[:300],
            },
        )

    async def _add_sessions_to_settle(
        self,
        touched: dict[str, SessionInfo],
        sessions: list[SessionInfo],
        head: int,
        *,
        balance: bool,
        fallback: set[str],
    ) -> None:
        """Sessions that may have news although no new transfer of theirs was found in this pass:
        - open sessions with deposits: their confirmations grow with every block;
        - open native-coin sessions on a node without traces, or touched by a block the node could not
          trace (`fallback`): internal transfers show only in the balance;
        - closed sessions with money not yet counted nor reported (late or extra money);
        - any session with a deposit still inside the reorg window (a reorg after `paid` raises an alert).
        """
        open_ids = [s.session_id for s in sessions if s.status in ("created", "pending")]
        with_deposits = await self.repo.sessions_with_deposits(open_ids)
        unsettled = await self.repo.sessions_needing_settlement([s.session_id for s in sessions])
        for info in sessions:
            if (
                info.session_id in with_deposits
                or info.session_id in unsettled
                or (info.native and info.session_id in open_ids and (balance or info.session_id in fallback))
            ):
                touched.setdefault(info.session_id, info)
        assert self.service.settings is not None
        recent = await self.repo.sessions_with_recent_deposits(
            self.chain_id, head - self.service.settings.reorg_depth
        )
        known = {s.session_id: s for s in sessions}
        for session_id in recent - set(touched):
            found = known.get(session_id)
            if found is None:
                try:
                    found = await self.service.get_session_info(session_id)
                except SessionUnknown:
                    continue
            if found is not None:
                touched[session_id] = found

    async def run_pass(self) -> PassReport:
        """One scan + settle pass. Raises (without moving the cursor) if the node or session service fails."""
        w3 = self.service.w3
        assert w3 is not None
        with chain_guard():
            head = await w3.eth.block_number
        blocks = BlockView(w3, head)
        cursor = await self.repo.cursor(self.chain_id)
        if cursor is None:
            start = self.settings.start_block
            cursor = (head - self.settings.rescan_blocks) if start is None else start - 1
        if cursor > head:
            # The chain is shorter than what we scanned (a reset dev chain or a deep reorg): rescan the window.
            cursor = head
        scan_from = max(0, cursor + 1 - self.settings.rescan_blocks)
        scan_to = min(head, cursor + self.settings.max_blocks_per_pass)

        sessions = await self.active_sessions()
        assert self.service.settings is not None
        mode = self.service.settings.mode
        # A live session settles on the live chain only, a test one on the test chain only (contract §6a).
        sessions = [s for s in sessions if s.mode is None or s.mode == mode]
        internal = await self.service.internal_mode()
        traces = internal == "traces"
        by_address: dict[str, SessionInfo] = {s.deposit_address.lower(): s for s in sessions}
        tokens = sorted({s.token for s in sessions if s.token})
        open_blocks = await self.untraced.open_blocks(self.chain_id, limit=1000) if traces else []
        now = datetime.now(UTC)
        waiting = {b.block_number for b in open_blocks if b.next_attempt_at > now}
        scan = BlockScan([], [], frozenset())
        if by_address and scan_to >= scan_from:
            # With the merchants' tokens known, every Transfer log to a watched address is read: money in a
            # merchant's other token is recorded (and quarantined), an unknown contract's is dropped below.
            scan = await scan_range(
                w3,
                scan_from,
                scan_to,
                list(by_address),
                tokens,
                traces=traces,
                skip_traces=waiting,
                any_token=self.service.tokens is not None,
            )
        found = list(scan.transfers)
        fallback: set[str] = set()
        if traces:
            found += await self._retry_untraced(
                open_blocks, waiting, scan, scan_from, scan_to, head, by_address
            )
            await self._record_untraced(scan.untraced, open_blocks, sessions)
            fallback = await self.untraced.fallback_sessions(self.chain_id)

        touched: dict[str, SessionInfo] = {}
        for transfer in found:
            info = by_address.get(transfer.to_address.lower())
            if info is None:
                continue
            # Only the session's own asset counts for it. Money in another asset the merchant's settings know
            # (ETH to a token session, another configured token) is recorded with its asset and quarantined
            # once confirmed; an unknown token contract's transfers are not recorded (record_observed).
            if await self.service.record_observed(info, transfer, "watcher") is not None:
                touched[info.session_id] = info

        if head != self._last_head:
            # Confirmations, balances and reorgs change only with new blocks: settle the rest only then.
            await self._add_sessions_to_settle(
                touched, sessions, head, balance=internal == "balance", fallback=fallback
            )
        settled = 0
        blocked = await self.service.addresses.blocked(list(touched))
        for info in touched.values():
            if info.session_id in blocked:
                continue  # inside the backoff of its last failure
            try:
                await self.service.settle(info, blocks, balance_fallback=info.session_id in fallback)
                settled += 1
            except RetryLater:
                raise  # the session service is unavailable: that is everyone's trouble, not this session's
            except Exception as exc:
                # One session's trouble must not stop the others (or the cursor): recorded against its
                # address, retried after a backoff.
                await self._record_failure(info, exc)
            else:
                await self.service.addresses.clear_failure(info.session_id)

        last = await blocks.block(scan_to)
        await self.repo.set_cursor(self.chain_id, max(scan_to, cursor), last[0] if last else None)
        deepest = max((s.min_confirmations for s in sessions), default=1)
        await self.service.addresses.record_pass(
            self.chain_id,
            head=head,
            confirmed_height=head - deepest + 1,
            internal_transfers=internal,
        )
        self._last_head = head
        self.passes += 1
        return PassReport(head, scan_from, scan_to, len(found), settled, len(scan.untraced))

    async def _retry_untraced(
        self,
        open_blocks: list[UntracedBlockRow],
        waiting: set[int],
        scan: BlockScan,
        scan_from: int,
        scan_to: int,
        head: int,
        by_address: dict[str, SessionInfo],
    ) -> list[ObservedTransfer]:
        """Trace again the open blocks whose backoff is over and that this pass's scan did not cover; mark
        resolved every open block traced now (here or by the scan). Returns the transfers found."""
        w3 = self.service.w3
        assert w3 is not None and self.service.settings is not None
        found: list[ObservedTransfer] = []
        resolved = {b.block_number for b in open_blocks} & scan.traced
        for row in open_blocks:
            number = row.block_number
            if number in waiting or scan_from <= number <= scan_to:
                continue
            if number > head:
                resolved.add(number)  # the chain is shorter now (a reset dev chain): nothing left to trace
                continue
            if not by_address:
                continue
            try:
                found += await trace_block_transfers(w3, number, list(by_address))
            except BlockUntraceable as exc:
                state = await self.untraced.record_failure(
                    self.chain_id,
                    number,
                    block_hash=row.block_hash,
                    error=exc.error,
                    fallback_sessions=(),
                    base_s=self.service.settings.error_backoff_base_s,
                    cap_s=self.service.settings.error_backoff_cap_s,
                )
                log.warning(
                    "a chain block still cannot be traced; retrying after a backoff",
                    extra={"chain_id": self.chain_id, "block_number": number, "failures": state.failures},
                )
            else:
                resolved.add(number)
        if resolved and await self.untraced.resolve(self.chain_id, resolved):
            log.info(
                "untraced chain blocks traced at last",
                extra={"chain_id": self.chain_id, "blocks": sorted(resolved)},
            )
        return found

    async def _record_untraced(
        self, untraced: list[UntracedBlock], open_blocks: list[UntracedBlockRow], sessions: list[SessionInfo]
    ) -> None:
        """Record the blocks this scan could not trace, with the native-coin sessions each one touched."""
        settings = self.service.settings
        assert settings is not None
        known = {b.block_number: b.block_hash for b in open_blocks}
        for block in untraced:
            # Which sessions a block touched is asked once per block (its hash): a retry changes nothing.
            fallback = (
                [] if known.get(block.number) == block.block_hash else await self._touched(block, sessions)
            )
            state = await self.untraced.record_failure(
                self.chain_id,
                block.number,
                block_hash=block.block_hash,
                error=block.error,
                fallback_sessions=fallback,
                base_s=settings.error_backoff_base_s,
                cap_s=settings.error_backoff_cap_s,
            )
            log.log(
                logging.ERROR if state.failures == 1 else logging.WARNING,
                "the RPC node cannot trace a chain block; the watcher moves on and retries it with backoff",
                extra={
                    "chain_id": self.chain_id,
                    "block_number": block.number,
                    "block_hash": block.block_hash,
                    "failures": state.failures,
                    "error": block.error[:300],
                    "balance_fallback_sessions": len(state.fallback_sessions),
                },
            )

    async def _touched(self, block: UntracedBlock, sessions: list[SessionInfo]) -> list[str]:
        """The open native-coin sessions (existing when the block was mined) whose deposit address the block
        touched: it sent a tx in it, or its balance differs across it. Unknown internal transfers can only
        have reached those; a balance that cannot be read counts as touched."""
        w3 = self.service.w3
        assert w3 is not None and self.service.settings is not None
        skew = self.service.settings.creation_skew_s
        touched: list[str] = []
        for info in sessions:
            # Open sessions only: a closed one gets its late money from the ledger once the block is traced.
            if (
                not info.native
                or info.status not in OPEN_STATUSES
                or before_session(info, block.block_timestamp, skew)
            ):
                continue
            address = info.deposit_address.lower()
            if address in block.senders or await self._balance_moved(address, block.number):
                touched.append(info.session_id)
        return touched

    async def _balance_moved(self, address: str, number: int) -> bool:
        w3 = self.service.w3
        assert w3 is not None
        try:
            before = await native_balance_at(w3, address, number - 1) if number > 0 else 0
            return before != await native_balance_at(w3, address, number)
        except ChainUnavailable:
            return True


def by_address_info(sessions: list[SessionInfo], session_id: str) -> SessionInfo | None:
    for info in sessions:
        if info.session_id == session_id:
            return info
    return None
