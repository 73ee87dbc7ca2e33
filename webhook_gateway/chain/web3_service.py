"""The one verification path for on-chain payments, shared by the web3 webhook and the chain watcher.

Both end in `Web3Service.settle(session)`: re-check that every recorded deposit's block is still canonical,
fold the ledger (settlement.plan_settlement) and send the session service what follows. The webhook adds
only a front step, `handle_hint`: it trusts nothing in the notifier's body but the tx hash, reads that tx
back from the node, and records the transfers it really made to the session's deposit address.

Failure handling: an RPC node that is down (ChainUnavailable) or a session service that is unavailable
raises `RetryLater`, so a webhook stays in the inbox and is retried with backoff, and the watcher keeps
its cursor and tries the same blocks again. Nothing is lost either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Final, TypeVar

import aiohttp
import grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hexbytes import HexBytes
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import BlockNotFound, ProviderConnectionError, TransactionNotFound, Web3RPCError

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2, session_pb2_grpc
from paygate_runtime.grpc_errors import error_code, is_transient
from paygate_runtime.proto_convert import mode_enum, timestamp_of_epoch
from webhook_gateway.adapters.inbox_repository import APPLIED, IGNORED, InboxEvent
from webhook_gateway.chain.assets import NATIVE, Asset, MerchantTokens
from webhook_gateway.chain.deposits_repository import (
    AddressesRepository,
    AddressState,
    DepositRow,
    DepositsRepository,
    RecordOutcome,
)
from webhook_gateway.chain.ledger import Stage, stage_event_id
from webhook_gateway.chain.settlement import (
    MoneyEvent,
    NativeBalances,
    SessionInfo,
    SettlementPlan,
    before_session,
    confirmed_height_of,
    plan_settlement,
    same_token,
)
from webhook_gateway.chain.verification import (
    TRANSFER_TOPIC,
    ChainUnavailable,
    ObservedTransfer,
    inspect_transaction,
    native_balance_at,
    node_offers_traces,
    normalize_tx_hash,
)
from webhook_gateway.providers.standard_webhooks import Web3Hint, parse_web3_hint
from webhook_gateway.service_layer.payment_events import InboxVerdict, mode_name, outcome_name
from webhook_gateway.service_layer.relay import RetryLater, SessionUnknown, envelope_of

log = logging.getLogger(__name__)

PROVIDER: Final = "web3"
_STATUS_NAMES: Final[dict[int, str]] = {
    session_pb2.SESSION_STATUS_CREATED: "created",
    session_pb2.SESSION_STATUS_PENDING: "pending",
    session_pb2.SESSION_STATUS_PAID: "paid",
    session_pb2.SESSION_STATUS_FAILED: "failed",
    session_pb2.SESSION_STATUS_EXPIRED: "expired",
    session_pb2.SESSION_STATUS_REFUNDED: "refunded",
}
# Plans are re-made after the session moved (seen -> confirmed -> late money on the now-closed session).
_MAX_PLAN_ROUNDS: Final = 4


ReplyT = TypeVar("ReplyT", bound=Message)


@dataclass(frozen=True)
class ChainSettings:
    chain_id: int
    rpc_url: str
    rpc_timeout_s: float = 10.0
    # How long an unknown (not yet propagated, or invented) tx hash is retried before it is ignored.
    tx_wait_s: float = 600.0
    # Deposits mined within this many blocks of the head are re-checked for reorgs on every pass.
    reorg_depth: int = 64
    apply_deadline_s: float = 5.0
    # The mode whose sessions this chain settles (contract §6a: a live session settles on the live chain only).
    mode: str = "test"
    # How contract-internal ETH transfers are found: "traces" (trace_block), "balance" (balance difference
    # from the session's start block; needs historical state), "off" (top-level transfers only), or "auto"
    # (traces when the node offers them, else balance).
    internal_transfers: str = "auto"
    # Blocks stamped up to this many seconds before a session's creation still count for it.
    creation_skew_s: int = 12
    # Backoff of an address whose reads fail: base * 2^(failures - 1), at most the cap.
    error_backoff_base_s: float = 5.0
    error_backoff_cap_s: float = 300.0


INTERNAL_TRANSFER_MODES: Final = frozenset({"auto", "traces", "balance", "off"})


def connect_web3(rpc_url: str, timeout_s: float) -> AsyncWeb3:
    """An AsyncWeb3 over JSON-RPC with a hard timeout and no hidden retries: our callers own retrying."""
    return AsyncWeb3(
        AsyncHTTPProvider(
            rpc_url,
            request_kwargs={"timeout": aiohttp.ClientTimeout(total=timeout_s)},
            exception_retry_configuration=None,
        )
    )


def _status_name(status: int) -> str:
    return _STATUS_NAMES.get(status, "unknown")


def session_info(session: session_pb2.Session) -> SessionInfo | None:
    """The settlement facts of a Session message; None when it is not a web3 session."""
    if session.provider != PROVIDER or not session.HasField("payment") or not session.payment.deposit_address:
        return None
    return SessionInfo(
        session_id=session.id,
        merchant_id=session.merchant_id,
        mode=mode_name(session.mode),
        status=_status_name(session.status),
        amount_minor=int(session.amount.amount_minor),
        currency=session.amount.currency,
        exponent=session.amount.exponent,
        chain_id=session.payment.chain_id,
        deposit_address=session.payment.deposit_address,
        token=session.payment.token or None,
        min_confirmations=max(1, session.payment.min_confirmations),
        expires_at=_unix_or_none(session.expires_at) if session.HasField("expires_at") else None,
        created_at=_unix_float_or_none(session.created_at) if session.HasField("created_at") else None,
    )


def active_deposit_info(deposit: session_pb2.ActiveDeposit) -> SessionInfo:
    return SessionInfo(
        session_id=deposit.session_id,
        merchant_id=deposit.merchant_id,
        mode=mode_name(deposit.mode) if deposit.mode else None,
        status=_status_name(deposit.status),
        amount_minor=int(deposit.amount.amount_minor),
        currency=deposit.amount.currency,
        exponent=deposit.amount.exponent,
        chain_id=deposit.payment.chain_id,
        deposit_address=deposit.payment.deposit_address,
        token=deposit.payment.token or None,
        min_confirmations=max(1, deposit.payment.min_confirmations),
        expires_at=_unix_or_none(deposit.expires_at) if deposit.HasField("expires_at") else None,
        created_at=_unix_float_or_none(deposit.created_at) if deposit.HasField("created_at") else None,
    )


@contextlib.contextmanager
def chain_guard() -> Iterator[None]:
    """Node failures outside verification.py's own guard become ChainUnavailable too."""
    try:
        yield
    except ChainUnavailable:
        raise
    except (aiohttp.ClientError, OSError, TimeoutError, ProviderConnectionError, Web3RPCError) as exc:
        raise ChainUnavailable(f"RPC node failed: {exc}") from exc


class BlockView:
    """Per-pass cache of canonical block hashes and timestamps (a pass must not ask the node twice)."""

    def __init__(self, w3: AsyncWeb3, head: int) -> None:
        self.w3 = w3
        self.head = head
        self._blocks: dict[int, tuple[str, int] | None] = {}

    async def block(self, number: int) -> tuple[str, int] | None:
        """(hash, timestamp) of the canonical block `number`, or None above the head."""
        if number < 0 or number > self.head:
            return None
        if number not in self._blocks:
            with chain_guard():
                try:
                    block = await self.w3.eth.get_block(number)
                except BlockNotFound:
                    self._blocks[number] = None
                else:
                    self._blocks[number] = (HexBytes(block["hash"]).to_0x_hex(), int(block["timestamp"]))
        return self._blocks[number]

    async def last_block_at_or_before(self, timestamp: int, upper: int) -> int:
        """The highest block <= `upper` stamped at or before `timestamp` (-1 if none): binary search.

        A block at or below the head that the node does not return (a node that prunes old blocks) is not
        "later than `timestamp`": taking it so walked the search down to -1, and a session's start block of -1
        counts every wei the address ever held as the session's (a whole-suite test run caught a session paid
        that way). Such a block raises BlockNotServed, recorded against the session's address and retried."""
        low, high, found = 0, min(upper, self.head), -1
        while low <= high:
            middle = (low + high) // 2
            block = await self.block(middle)
            if block is None:
                raise BlockNotServed(middle)
            if block[1] <= timestamp:
                found, low = middle, middle + 1
            else:
                high = middle - 1
        return found


class BlockNotServed(ChainUnavailable):
    """The node does not return a block at or below its head (pruned): a fact the settlement needs is missing,
    which is this session's trouble (recorded against its address and retried), not a reason to guess."""

    def __init__(self, number: int) -> None:
        super().__init__(f"BlockNotServed: the node does not return block {number} (pruned?)")
        self.number = number


@dataclass
class SettleResult:
    session_id: str
    status: str
    confirmed_total: int = 0
    applied: list[str] = field(default_factory=list)  # "<event id>=<outcome>"
    alerts: list[str] = field(default_factory=list)


class Web3Service:
    def __init__(
        self,
        w3: AsyncWeb3 | None,
        session: session_pb2_grpc.SessionServiceStub,
        repo: DepositsRepository,
        settings: ChainSettings | None,
        *,
        clock: Callable[[], float] = time.time,
        addresses: AddressesRepository | None = None,
        tokens: MerchantTokens | None = None,
    ) -> None:
        self.w3 = w3
        # The merchants' configured tokens: money in one of them (or in ETH) that is not the session's own
        # asset is recorded and quarantined. None: only ETH and each session's own asset are known.
        self.tokens = tokens
        self.session = session
        self.repo = repo
        self.addresses = addresses if addresses is not None else AddressesRepository(repo.pool)
        self.settings = settings
        self.clock = clock
        # The resolved way internal transfers are found ("traces", "balance" or "off"); "auto" is resolved
        # on first use by asking the node.
        self._internal: str | None = None
        # Weak: a session's lock lives only while someone holds or waits for it.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        # expires_at -> (last block at or before it, its hash): found by binary search, kept while canonical.
        self._expiry_blocks: dict[int, tuple[int, str]] = {}

    async def close(self) -> None:
        """Close the node connection (web3 caches an HTTP session per provider)."""
        if self.w3 is not None:
            with contextlib.suppress(Exception):
                await self.w3.provider.disconnect()

    @property
    def configured(self) -> bool:
        return self.w3 is not None and self.settings is not None

    # ----- the webhook's front step ------------------------------------------------------------------------

    async def handle_inbox_event(self, event: InboxEvent) -> InboxVerdict:
        """The EventProcessor handler for stored `web3` events (registered by routes_web3)."""
        hint = parse_web3_hint(envelope_of(event))
        if hint.ignored:
            return InboxVerdict(status=IGNORED, outcome=hint.ignore_reason or "ignored")
        try:
            return await self.handle_hint(hint, received_at=event.received_at)
        except ChainUnavailable as exc:
            # Kept in the inbox and retried with backoff: a node outage loses nothing.
            raise RetryLater(f"chain_unavailable: {exc}") from None

    async def handle_hint(
        self, hint: Web3Hint, *, received_at: datetime, session: session_pb2.Session | None = None
    ) -> InboxVerdict:
        """Check a notifier's `transaction.detected` against the chain; record and settle what it paid.

        Raises RetryLater (node down, session service unavailable, tx not yet visible) or SessionUnknown.
        """
        assert hint.session_id is not None and hint.tx_hash is not None and hint.chain_id is not None
        if not self.configured:
            raise RetryLater("chain_not_configured: no PAYGATE_CHAIN_RPC_URL; the event is kept")
        assert self.w3 is not None and self.settings is not None
        if session is None:
            session = await self._get_session(hint.session_id)
        info = session_info(session)
        owner = {"merchant_id": session.merchant_id or None, "mode": mode_name(session.mode)}
        if info is None:
            return InboxVerdict(status=IGNORED, outcome="not_a_web3_session", **owner)
        if hint.chain_id != info.chain_id:
            return InboxVerdict(status=IGNORED, outcome="wrong_chain_id", **owner)
        if info.chain_id != self.settings.chain_id:
            return InboxVerdict(status=IGNORED, outcome="unsupported_chain", **owner)
        inspection = await inspect_transaction(
            self.w3,
            hint.tx_hash,
            expected_chain_id=info.chain_id,
            deposit_address=info.deposit_address,
            token=info.token,
            token_decimals=info.exponent if info.token else None,
        )
        problem = inspection.problem
        if problem in ("tx_not_found", "tx_not_mined"):
            waited = (datetime.now(UTC) - received_at).total_seconds()
            if waited < self.settings.tx_wait_s:
                raise RetryLater(f"{problem}: {hint.tx_hash} is not on the chain yet")
            return InboxVerdict(status=IGNORED, outcome=problem, **owner)
        wrong_asset = False
        if problem == "no_transfer_to_deposit_address":
            # Not in the session's asset: in another asset paygate knows for the merchant (ETH, its tokens)?
            other = await self._other_asset_transfers(info, hint.tx_hash)
            if not other:
                if await self._pays_another_session(hint.tx_hash, info):
                    return InboxVerdict(status=IGNORED, outcome="session_mismatch", **owner)
                return InboxVerdict(status=IGNORED, outcome=problem, **owner)
            transfers, wrong_asset = other, True
        elif problem is not None:
            return InboxVerdict(status=IGNORED, outcome=problem, **owner)
        else:
            own = Asset(info.currency, info.exponent)
            transfers = [_with_asset(t, own) for t in inspection.observed_transfers()]

        observed = [
            t for t in transfers if not before_session(info, t.block_timestamp, self.settings.creation_skew_s)
        ]
        if not observed:
            # An old transfer announced as new: money the address held before this session is not its money.
            return InboxVerdict(status=IGNORED, outcome="transfer_before_session", **owner)
        outcomes = [
            (await self.repo.record(transfer, info.session_id, "webhook")).outcome for transfer in observed
        ]
        if all(o is RecordOutcome.OTHER_SESSION for o in outcomes):
            return InboxVerdict(status=IGNORED, outcome="transfer_counted_for_other_session", **owner)
        result = await self.settle(info)
        if wrong_asset:
            # Recorded as a deposit of the asset that arrived; quarantined (currency mismatch) once confirmed.
            return InboxVerdict(status=APPLIED, outcome="wrong_asset_deposit", **owner)
        return InboxVerdict(status=APPLIED, outcome=f"deposit_{result.status}", **owner)

    async def asset_of(self, info: SessionInfo, token: str | None) -> Asset | None:
        """The asset of money in `token` (None: the native coin) sent to `info`'s deposit address: the
        session's own, ETH, or one of its merchant's configured tokens; None for a contract paygate does not
        know for the merchant (anyone can emit Transfer events)."""
        if same_token(token, info.token):
            return Asset(info.currency, info.exponent)
        if token is None:
            return NATIVE
        if self.tokens is None:
            return None
        return (await self.tokens.tokens(info.merchant_id, info.chain_id)).get(token.lower())

    async def _other_asset_transfers(self, info: SessionInfo, tx_hash: str) -> list[ObservedTransfer]:
        """What a mined, successful tx paid `info`'s deposit address in the assets the merchant knows besides
        the session's own (each labelled with its asset)."""
        assert self.w3 is not None
        candidates: dict[str | None, Asset] = {}
        if info.token is not None:
            candidates[None] = NATIVE
        if self.tokens is not None:
            for address, asset in (await self.tokens.tokens(info.merchant_id, info.chain_id)).items():
                if not same_token(address, info.token):
                    candidates[address] = asset
        found: list[ObservedTransfer] = []
        for token, asset in candidates.items():
            found += await self._transfers_in(info, tx_hash, token, asset)
        return found

    async def _transfers_in(
        self, info: SessionInfo, tx_hash: str, token: str | None, asset: Asset
    ) -> list[ObservedTransfer]:
        """What a mined, successful tx paid `info`'s deposit address in one asset (`token`, None: the native
        coin), each transfer labelled with that asset."""
        assert self.w3 is not None
        inspection = await inspect_transaction(
            self.w3,
            tx_hash,
            expected_chain_id=info.chain_id,
            deposit_address=info.deposit_address,
            token=token,
            token_decimals=asset.exponent if token is not None else None,
        )
        return [_with_asset(t, asset) for t in inspection.observed_transfers()]

    async def _pays_another_session(self, tx_hash: str, info: SessionInfo) -> bool:
        """Whether the tx credits a deposit address of some other session (the notifier named the wrong one)."""
        if any(row.session_id != info.session_id for row in await self.repo.owner_of(info.chain_id, tx_hash)):
            return True
        assert self.w3 is not None
        checked = normalize_tx_hash(tx_hash)
        with chain_guard():
            try:
                tx = await self.w3.eth.get_transaction(checked)
                receipt = await self.w3.eth.get_transaction_receipt(checked)
            except TransactionNotFound:
                return False
        recipients = {tx["to"]} if tx.get("to") else set()
        for entry in receipt["logs"]:
            topics = [HexBytes(t) for t in entry["topics"]]
            if len(topics) == 3 and topics[0] == HexBytes(TRANSFER_TOPIC):
                recipients.add(AsyncWeb3.to_checksum_address(topics[2][-20:]))
        for address in recipients:
            try:
                other = await self.session.GetSessionByDepositAddress(
                    session_pb2.GetSessionByDepositAddressRequest(
                        chain_id=info.chain_id, deposit_address=address
                    ),
                    timeout=self._deadline,
                )
            except grpc.aio.AioRpcError as error:
                if is_transient(error):
                    raise RetryLater(f"session service: {error.code().name}") from None
                continue
            if other.id and other.id != info.session_id:
                return True
        return False

    # ----- the shared path ---------------------------------------------------------------------------------

    async def record_observed(
        self, info: SessionInfo, transfer: ObservedTransfer, source: str
    ) -> RecordOutcome | None:
        """Record a transfer for `info`'s session, labelled with its asset; None (nothing recorded) for money
        from before the session or in an asset paygate does not know for the merchant (`asset_of`). Money in
        another known asset is recorded too: it never counts, and is quarantined once confirmed."""
        assert self.settings is not None
        if before_session(info, transfer.block_timestamp, self.settings.creation_skew_s):
            return None
        asset = await self.asset_of(info, transfer.token)
        if asset is None:
            return None
        return (await self.repo.record(_with_asset(transfer, asset), info.session_id, source)).outcome

    async def internal_mode(self) -> str:
        """How contract-internal ETH transfers are found on this node: "traces", "balance" or "off"."""
        if self._internal is None:
            assert self.w3 is not None and self.settings is not None
            wanted = self.settings.internal_transfers
            if wanted == "auto":
                wanted = "traces" if await node_offers_traces(self.w3) else "balance"
                log.info(
                    "chain internal transfers", extra={"mode": wanted, "chain_id": self.settings.chain_id}
                )
            self._internal = wanted
        return self._internal

    async def address_state(self, info: SessionInfo, blocks: BlockView) -> AddressState:
        """The session's watched-address row, with its start block (the last block stamped before the session
        was created, less the skew) found once and recorded with the address."""
        assert self.settings is not None
        state = await self.addresses.ensure(
            info.session_id,
            chain_id=info.chain_id,
            merchant_id=info.merchant_id,
            deposit_address=info.deposit_address,
            session_created_at=info.created_at or 0.0,
        )
        if state.start_block is None and info.created_at is not None:
            before = int(info.created_at) - self.settings.creation_skew_s - 1
            start = await blocks.last_block_at_or_before(before, blocks.head)
            block = await blocks.block(start) if start >= 0 else None
            await self.addresses.set_start(info.session_id, start, block[0] if block else None)
            state = replace(state, start_block=start, start_block_hash=block[0] if block else None)
        return state

    async def settle(
        self, info: SessionInfo, blocks: BlockView | None = None, *, balance_fallback: bool = False
    ) -> SettleResult:
        """Bring one session up to date with the chain. Serialised per session within this process; across
        replicas the claim row and the per-stage event ids keep the effect single.

        `balance_fallback`: a block that touched this native-coin session's address could not be traced, so
        its internal transfers are unknown; the balance difference counts too (as on a node without traces)."""
        lock = self._locks.get(info.session_id)
        if lock is None:
            lock = self._locks[info.session_id] = asyncio.Lock()
        async with lock:
            return await self._settle(info, blocks, balance_fallback)

    async def _settle(
        self, info: SessionInfo, blocks: BlockView | None, balance_fallback: bool
    ) -> SettleResult:
        assert self.w3 is not None
        if blocks is None:
            with chain_guard():
                blocks = BlockView(self.w3, await self.w3.eth.block_number)
        await self._recheck_canonical(info, blocks)
        result = SettleResult(info.session_id, info.status)
        state = await self.address_state(info, blocks)
        # Read once: the chain does not move under one settlement, only the session does.
        balances = None
        if info.native and (balance_fallback or await self.internal_mode() == "balance"):
            balances = await self._native_balances(info, blocks, state.start_block)
        for _ in range(_MAX_PLAN_ROUNDS):
            rows = await self.repo.for_session(info.session_id)
            plan = plan_settlement(
                info,
                rows,
                head=blocks.head,
                confirmation=await self.repo.confirmation(info.session_id),
                balances=balances,
            )
            result.confirmed_total = plan.confirmed_total
            moved_to = await self._execute(info, plan, result)
            if moved_to is None or moved_to == info.status:
                break
            info = replace(info, status=moved_to)
        result.status = info.status
        return result

    async def _execute(self, info: SessionInfo, plan: SettlementPlan, result: SettleResult) -> str | None:
        """Carry out a plan; returns the session's new status when an event moved it (then plan again)."""
        status: str | None = None
        if plan.expire_first:
            expired = await self._call(
                "ExpireSession",
                # The chain watcher acts for itself, as the expiry sweeper does: never as the merchant.
                session_pb2.ExpireSessionRequest(
                    session_id=info.session_id, merchant_id=info.merchant_id, actor="chain_watcher"
                ),
                session_pb2.Session,
            )
            if expired is not None:
                return _status_name(expired.status)
        if plan.seen is not None:
            reply = await self._apply(
                info,
                plan.seen.event_id,
                session_pb2.EVENT_KIND_PENDING,
                plan.seen.provider_reference,
                plan.seen.occurred_at,
                None,
                "chain.deposit.seen",
            )
            status = self._note(result, plan.seen.event_id, reply) or status
        if plan.claim is not None:
            await self.repo.claim_confirmation(
                info.session_id,
                chain_id=info.chain_id,
                amount_minor=plan.claim.amount_minor,
                confirmed_height=plan.claim.confirmed_height,
                provider_reference=plan.claim.provider_reference,
                occurred_at=plan.claim.occurred_at,
                included=plan.claim.included,
            )
        if plan.send_confirmed:
            # Always send what the stored claim says: another replica may have claimed first.
            claim = await self.repo.confirmation(info.session_id)
            assert claim is not None
            event_id = stage_event_id(info.session_id, Stage.CONFIRMED)
            reply = await self._apply(
                info,
                event_id,
                session_pb2.EVENT_KIND_SUCCEEDED,
                claim.provider_reference,
                claim.occurred_at,
                claim.amount_minor,
                "chain.deposit.confirmed",
            )
            if reply is not None:
                await self.repo.confirmation_applied(info.session_id, outcome_name(_first(reply)))
            status = self._note(result, event_id, reply) or status
        for money in (*plan.extra, *plan.late, *plan.wrong_asset):
            status = await self._send_money(info, money, result) or status
        for alert in plan.alerts:
            raised = await self._call(
                "RaiseSessionAlert",
                session_pb2.RaiseSessionAlertRequest(
                    session_id=info.session_id,
                    code=alert.code,
                    detail=alert.detail,
                    reference=alert.reference,
                    amount=common_pb2.Money(
                        amount_minor=str(alert.amount_minor), currency=info.currency, exponent=info.exponent
                    )
                    if alert.amount_minor is not None
                    else None,
                ),
                session_pb2.Session,
            )
            if raised is not None:
                result.alerts.append(f"{alert.code}:{alert.reference}")
                log.warning(
                    "reorg removed money from a paid session",
                    extra={"session_id": info.session_id, "tx_hash": alert.reference},
                )
        return status

    async def _send_money(self, info: SessionInfo, money: MoneyEvent, result: SettleResult) -> str | None:
        reply = await self._apply(
            info,
            money.event_id,
            session_pb2.EVENT_KIND_SUCCEEDED,
            money.provider_reference,
            money.occurred_at,
            money.amount_minor,
            f"chain.deposit.{money.reported_as}",
            asset=Asset(money.currency, money.exponent)
            if money.currency is not None and money.exponent is not None
            else None,
        )
        if reply is None:
            return None
        await self.repo.mark_reported(money.key, money.reported_as)
        return self._note(result, money.event_id, reply)

    def _note(
        self, result: SettleResult, event_id: str, reply: session_pb2.ApplyPaymentEventResponse | None
    ) -> str | None:
        if reply is None:
            return None
        result.applied.append(f"{event_id}={outcome_name(reply.outcome)}")
        return _status_name(reply.session.status) if reply.HasField("session") else None

    @property
    def _settings(self) -> ChainSettings:
        """The chain's settings; only a configured service (one with a chain) settles anything."""
        if self.settings is None:
            raise RetryLater("chain_not_configured: no PAYGATE_CHAIN_RPC_URL")
        return self.settings

    @property
    def _deadline(self) -> float:
        return self.settings.apply_deadline_s if self.settings else 5.0

    async def _apply(
        self,
        info: SessionInfo,
        event_id: str,
        kind: session_pb2.EventKind,
        reference: str,
        occurred_at: int,
        amount_minor: int | None,
        event_type: str,
        *,
        asset: Asset | None = None,
    ) -> session_pb2.ApplyPaymentEventResponse | None:
        """One payment event; its amount is in the session's currency unless `asset` says otherwise (money
        in another asset, which the session service quarantines as a currency mismatch)."""
        request = session_pb2.ApplyPaymentEventRequest(
            session_id=info.session_id,
            provider=PROVIDER,
            provider_event_id=event_id,
            kind=kind,
            provider_reference=reference,
            occurred_at=timestamp_of_epoch(occurred_at or int(self.clock())),
            provider_event_type=event_type,
            # Money seen on this chain belongs to this chain's mode: the session service quarantines it as
            # mode_mismatch if the session is of the other mode (contract §6a), so nothing else decides it.
            mode=mode_enum(self._settings.mode),
        )
        if amount_minor is not None:
            money = asset or Asset(info.currency, info.exponent)
            request.amount.CopyFrom(
                common_pb2.Money(
                    amount_minor=str(amount_minor), currency=money.currency, exponent=money.exponent
                )
            )
        return await self._call("ApplyPaymentEvent", request, session_pb2.ApplyPaymentEventResponse)

    async def _call(self, method: str, request: Message, reply_type: type[ReplyT]) -> ReplyT | None:
        """One session-service call; transient failures raise RetryLater, refusals are logged and skipped.
        The generated stub is untyped (grpcio-tools writes no .pyi for it): the reply's type is checked."""
        try:
            reply = await getattr(self.session, method)(request, timeout=self._deadline)
        except grpc.aio.AioRpcError as error:
            if is_transient(error):
                raise RetryLater(f"session service {method}: {error.code().name}") from None
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise SessionUnknown(f"{method}: {error_code(error) or 'not_found'}") from None
            log.error(
                "session service refused a web3 call",
                extra={"method": method, "code": error_code(error) or error.code().name},
            )
            return None
        if not isinstance(reply, reply_type):
            raise TypeError(f"session service {method} answered a {type(reply).__name__}")
        return reply

    async def _get_session(self, session_id: str) -> session_pb2.Session:
        try:
            return await self.session.GetSession(
                session_pb2.GetSessionRequest(session_id=session_id), timeout=self._deadline
            )
        except grpc.aio.AioRpcError as error:
            if is_transient(error):
                raise RetryLater(f"session service GetSession: {error.code().name}") from None
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                raise SessionUnknown(error_code(error) or "session_not_found") from None
            raise

    async def get_session_info(self, session_id: str) -> SessionInfo | None:
        return session_info(await self._get_session(session_id))

    # ----- chain reads -------------------------------------------------------------------------------------

    async def _recheck_canonical(self, info: SessionInfo, blocks: BlockView) -> None:
        """Every recorded deposit inside the reorg window: is its block still on the chain? If not, where
        (if anywhere) was its tx mined now? Non-canonical deposits stop counting; re-mined ones move."""
        assert self.w3 is not None and self.settings is not None
        window_start = blocks.head - self.settings.reorg_depth
        rows = [r for r in await self.repo.for_session(info.session_id) if r.block_number >= window_start]
        by_tx: dict[str, list[DepositRow]] = {}
        for row in rows:
            by_tx.setdefault(row.tx_hash, []).append(row)
        for tx_hash, tx_rows in by_tx.items():
            intact = True
            for row in tx_rows:
                block = await blocks.block(row.block_number)
                if block is None or block[0] != row.block_hash:
                    intact = False
                    break
            if intact:
                await self.repo.set_canonical([r.key for r in tx_rows if not r.canonical], True)
                continue
            observed: list[ObservedTransfer] = []
            # Each asset the tx's rows are in (the session's own, or another one recorded as wrong-asset money).
            for token in sorted({row.token for row in tx_rows}, key=lambda t: t or ""):
                asset = _recorded_asset(info, [r for r in tx_rows if r.token == token])
                observed += await self._transfers_in(info, tx_hash, token, asset)
            still = set()
            for transfer in observed:
                recorded = await self.repo.record(transfer, info.session_id, tx_rows[0].source)
                if recorded.outcome is not RecordOutcome.OTHER_SESSION:
                    still.add((transfer.chain_id, transfer.tx_hash, transfer.log_index))
            gone = [r.key for r in tx_rows if r.key not in still]
            if gone:
                log.info(
                    "deposit left the canonical chain",
                    extra={"session_id": info.session_id, "tx_hash": tx_hash},
                )
                await self.repo.set_canonical(gone, False)

    async def _native_balances(
        self, info: SessionInfo, blocks: BlockView, start_block: int | None
    ) -> NativeBalances:
        """On-time balances of a native-coin deposit address, less what it held at the session's start block
        (see settlement.NativeBalances). Reading the start block needs the node to keep that block's state:
        a pruned node refuses, which is recorded against this address (the watcher goes on for the others)."""
        assert self.w3 is not None
        height = confirmed_height_of(blocks.head, info.min_confirmations)
        confirmed_block = await self._on_time_block(info, blocks, height)
        seen_block = await self._on_time_block(info, blocks, blocks.head)
        baseline = 0
        if start_block is not None and start_block >= 0:
            baseline = await native_balance_at(self.w3, info.deposit_address, start_block)
        confirmed = (
            await native_balance_at(self.w3, info.deposit_address, confirmed_block)
            if confirmed_block > (start_block if start_block is not None else -1)
            else baseline
        )
        seen = (
            await native_balance_at(self.w3, info.deposit_address, seen_block)
            if seen_block > (start_block if start_block is not None else -1)
            else baseline
        )
        confirmed, seen = max(0, confirmed - baseline), max(0, seen - baseline)
        stamp = await blocks.block(confirmed_block) if confirmed_block >= 0 else None
        return NativeBalances(
            confirmed=confirmed,
            seen=seen,
            confirmed_block=confirmed_block,
            confirmed_block_timestamp=stamp[1] if stamp else 0,
        )

    async def _on_time_block(self, info: SessionInfo, blocks: BlockView, number: int) -> int:
        if number < 0:
            return -1
        block = await blocks.block(number)
        if block is None:
            return -1
        if info.expires_at is None or block[1] <= info.expires_at:
            return number
        cached = self._expiry_blocks.get(info.expires_at)
        if cached is not None and cached[0] <= number:
            still = await blocks.block(cached[0])
            if still is not None and still[0] == cached[1]:
                return cached[0]
        found = await blocks.last_block_at_or_before(info.expires_at, number)
        if found >= 0:
            found_block = await blocks.block(found)
            if found_block is not None:
                if len(self._expiry_blocks) > 10_000:
                    self._expiry_blocks.clear()
                self._expiry_blocks[info.expires_at] = (found, found_block[0])
        return found


def _recorded_asset(info: SessionInfo, rows: list[DepositRow]) -> Asset:
    """The asset recorded with rows of one token (a row recorded before assets were stored is in the
    session's own asset)."""
    for row in rows:
        if row.currency is not None and row.exponent is not None:
            return Asset(row.currency, row.exponent)
    if rows and rows[0].token is None:
        return NATIVE if info.token is not None else Asset(info.currency, info.exponent)
    return Asset(info.currency, info.exponent)


def _with_asset(transfer: ObservedTransfer, asset: Asset) -> ObservedTransfer:
    return replace(transfer, currency=asset.currency, exponent=asset.exponent)


def _unix_float_or_none(stamp: Timestamp) -> float | None:
    return stamp.seconds + stamp.nanos / 1e9 if stamp.seconds else None


def _unix_or_none(stamp: Timestamp) -> int | None:
    # An empty Timestamp (the epoch) means "not set", never an expiry in 1970 that would make all money late.
    return stamp.seconds or None


def _first(reply: session_pb2.ApplyPaymentEventResponse) -> int:
    if reply.outcome == session_pb2.APPLY_OUTCOME_DUPLICATE and reply.first_outcome:
        return reply.first_outcome
    return reply.outcome


class Web3Router:
    """The `web3` inbox handler when each mode has its own chain (contract §6a): a hint is checked on the
    chain of its session's mode, so a live session is only ever settled from the live chain."""

    def __init__(self, services: dict[str, Web3Service], fallback: Web3Service) -> None:
        self.services = services
        self.fallback = fallback

    async def handle_inbox_event(self, event: InboxEvent) -> InboxVerdict:
        hint = parse_web3_hint(envelope_of(event))
        if hint.ignored:
            return InboxVerdict(status=IGNORED, outcome=hint.ignore_reason or "ignored")
        assert hint.session_id is not None
        session = await self.fallback._get_session(hint.session_id)
        session_mode = mode_name(session.mode) or "test"
        if event.mode is not None and event.mode != session_mode:
            # The hint was verified with the other mode's secret (contract §6a: that secret gives the event its
            # mode). A hint carries no money, only a tx hash, so there is nothing to quarantine: it is recorded
            # and never checked against either chain. Real money on the session's own chain is still found by
            # that chain's watcher.
            return InboxVerdict(
                status=IGNORED,
                outcome="mode_mismatch",
                merchant_id=session.merchant_id or None,
                mode=event.mode,
            )
        service = self.services.get(session_mode)
        if service is None:
            raise RetryLater(f"chain_not_configured: no chain for {mode_name(session.mode)} sessions; kept")
        try:
            return await service.handle_hint(hint, received_at=event.received_at, session=session)
        except ChainUnavailable as exc:
            raise RetryLater(f"chain_unavailable: {exc}") from None
