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
with ONE session (a balance read its node refuses, a settlement that raises) never stops the pass: it is
recorded against that session's deposit address (`chain_addresses.failures`, `last_error`), the address is
left alone for a backoff (5 s doubling to 5 min), and the others settle as usual (GET /v1/chain/status
shows the failing addresses to their merchant).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import asyncpg
import grpc

from paygate.session.v1 import session_pb2
from paygate_runtime.tasks import wait_event
from webhook_gateway.chain.deposits_repository import DepositsRepository
from webhook_gateway.chain.settlement import SessionInfo
from webhook_gateway.chain.verification import ChainUnavailable, ObservedTransfer, scan_blocks
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
            with contextlib.suppress(Exception):
                await self.pool.release(conn)


class ChainWatcher:
    def __init__(
        self,
        service: Web3Service,
        repo: DepositsRepository,
        pool: asyncpg.Pool,
        chain_id: int,
        settings: WatcherSettings,
    ) -> None:
        self.service = service
        self.repo = repo
        self.chain_id = chain_id
        self.settings = settings
        self.lock = WatcherLock(pool, chain_id)
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
        self, touched: dict[str, SessionInfo], sessions: list[SessionInfo], head: int, *, balance: bool
    ) -> None:
        """Sessions that may have news although no new transfer of theirs was found in this pass:
        - open sessions with deposits: their confirmations grow with every block;
        - open native-coin sessions on a node without traces: internal transfers show only in the balance;
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
                or (balance and info.native and info.session_id in open_ids)
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
        by_address: dict[str, SessionInfo] = {s.deposit_address.lower(): s for s in sessions}
        tokens = sorted({s.token for s in sessions if s.token})
        found: list[ObservedTransfer] = []
        if by_address and scan_to >= scan_from:
            found = await scan_blocks(
                w3, scan_from, scan_to, list(by_address), tokens, traces=internal == "traces"
            )

        touched: dict[str, SessionInfo] = {}
        for transfer in found:
            info = by_address.get(transfer.to_address.lower())
            # Only the session's own asset counts: ETH sent to a token session's address (or another token)
            # is not a payment of that session.
            if info is None or transfer.token != (_checksum(info.token) if info.token else None):
                continue
            if await self.service.record_observed(info, transfer, "watcher") is not None:
                touched[info.session_id] = info

        if head != self._last_head:
            # Confirmations, balances and reorgs change only with new blocks: settle the rest only then.
            await self._add_sessions_to_settle(touched, sessions, head, balance=internal == "balance")
        settled = 0
        blocked = await self.service.addresses.blocked(list(touched))
        for info in touched.values():
            if info.session_id in blocked:
                continue  # inside the backoff of its last failure
            try:
                await self.service.settle(info, blocks)
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
        return PassReport(head, scan_from, scan_to, len(found), settled)


def by_address_info(sessions: list[SessionInfo], session_id: str) -> SessionInfo | None:
    for info in sessions:
        if info.session_id == session_id:
            return info
    return None


def _checksum(address: str) -> str:
    from web3 import AsyncWeb3

    return AsyncWeb3.to_checksum_address(address)
