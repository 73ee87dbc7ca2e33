"""In-memory stand-ins for the web3 unit tests: the deposits ledger and the session service.

The fake ledger keeps DepositsRepository's contract (one session per transfer key, re-pointing on a new
block, first claim wins); the fake session service applies stage events with the session service's rules
that matter here (created -> pending -> paid, duplicates by event id, money on a closed session quarantined).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from webhook_gateway.chain.deposits_repository import (
    Confirmation,
    DepositRow,
    Recorded,
    RecordOutcome,
    TransferKey,
)
from webhook_gateway.chain.verification import ObservedTransfer


class FakeLedger:
    def __init__(self) -> None:
        self.rows: dict[TransferKey, DepositRow] = {}
        self.confirmations: dict[str, Confirmation] = {}
        self.cursors: dict[int, int] = {}

    async def record(self, transfer: ObservedTransfer, session_id: str, source: str) -> Recorded:
        key = (transfer.chain_id, transfer.tx_hash.lower(), transfer.log_index)
        existing = self.rows.get(key)
        if existing is None:
            self.rows[key] = DepositRow(
                chain_id=transfer.chain_id,
                tx_hash=transfer.tx_hash.lower(),
                log_index=transfer.log_index,
                session_id=session_id,
                deposit_address=transfer.to_address,
                token=transfer.token,
                from_address=transfer.from_address,
                amount_minor=transfer.amount_minor,
                block_number=transfer.block_number,
                block_hash=transfer.block_hash,
                block_timestamp=transfer.block_timestamp,
                canonical=True,
                source=source,
                claimed=False,
                reported_as=None,
            )
            return Recorded(RecordOutcome.INSERTED, session_id)
        if existing.session_id != session_id:
            return Recorded(RecordOutcome.OTHER_SESSION, existing.session_id)
        if existing.block_hash != transfer.block_hash or not existing.canonical:
            self.rows[key] = replace(
                existing,
                block_number=transfer.block_number,
                block_hash=transfer.block_hash,
                block_timestamp=transfer.block_timestamp,
                canonical=True,
            )
            return Recorded(RecordOutcome.MOVED, session_id)
        return Recorded(RecordOutcome.UNCHANGED, session_id)

    async def owner_of(self, chain_id: int, tx_hash: str) -> list[DepositRow]:
        return [r for r in self.rows.values() if r.chain_id == chain_id and r.tx_hash == tx_hash.lower()]

    async def for_session(self, session_id: str) -> list[DepositRow]:
        rows = [r for r in self.rows.values() if r.session_id == session_id]
        return sorted(rows, key=lambda r: (r.block_number, r.log_index))

    async def sessions_with_deposits(self, session_ids: Iterable[str]) -> set[str]:
        wanted = set(session_ids)
        return {r.session_id for r in self.rows.values() if r.session_id in wanted}

    async def sessions_needing_settlement(self, session_ids: Iterable[str]) -> set[str]:
        wanted = set(session_ids)
        found = set()
        for r in self.rows.values():
            claim = self.confirmations.get(r.session_id)
            in_balance = r.token is None and claim is not None and r.block_number <= claim.confirmed_height
            if r.session_id in wanted and not r.claimed and r.reported_as is None and not in_balance:
                found.add(r.session_id)
        return found

    async def sessions_with_recent_deposits(self, chain_id: int, since_block: int) -> set[str]:
        return {
            r.session_id
            for r in self.rows.values()
            if r.chain_id == chain_id and r.block_number >= since_block
        }

    async def set_canonical(self, keys: Iterable[TransferKey], canonical: bool) -> None:
        for key in keys:
            self.rows[key] = replace(self.rows[key], canonical=canonical)

    async def mark_reported(self, key: TransferKey, reported_as: str) -> None:
        if self.rows[key].reported_as is None:
            self.rows[key] = replace(self.rows[key], reported_as=reported_as)

    async def claim_confirmation(
        self, session_id: str, *, included: Iterable[TransferKey], **facts: Any
    ) -> Confirmation:
        if session_id not in self.confirmations:
            self.confirmations[session_id] = Confirmation(
                session_id=session_id, applied_outcome=None, **facts
            )
            for key in included:
                self.rows[key] = replace(self.rows[key], claimed=True)
        return self.confirmations[session_id]

    async def confirmation(self, session_id: str) -> Confirmation | None:
        return self.confirmations.get(session_id)

    async def confirmation_applied(self, session_id: str, outcome: str) -> None:
        self.confirmations[session_id] = replace(self.confirmations[session_id], applied_outcome=outcome)

    async def cursor(self, chain_id: int) -> int | None:
        return self.cursors.get(chain_id)

    async def set_cursor(self, chain_id: int, last_block: int, last_block_hash: str | None) -> None:
        self.cursors[chain_id] = last_block


class FakeRpcError(grpc.aio.AioRpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=code.name)


@dataclass
class FakeSession:
    session: session_pb2.Session
    applied: list[session_pb2.ApplyPaymentEventRequest] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    quarantined: list[str] = field(default_factory=list)


class FakeSessionService:
    """Just enough of SessionService for the gateway's chain side."""

    def __init__(self) -> None:
        self.sessions: dict[str, FakeSession] = {}
        self.unavailable = False
        self.alerts: list[session_pb2.RaiseSessionAlertRequest] = []

    def add_web3_session(
        self,
        *,
        chain_id: int,
        deposit_address: str,
        amount_minor: int,
        currency: str = "ETH",
        exponent: int = 18,
        token: str | None = None,
        min_confirmations: int = 1,
        expires_at: int | None = None,
        status: int = session_pb2.SESSION_STATUS_CREATED,
    ) -> str:
        session_id = str(uuid.uuid4())
        message = session_pb2.Session(
            id=session_id,
            merchant_id=str(uuid.uuid4()),
            mode=common_pb2.MODE_TEST,
            status=status,
            provider="web3",
            amount=common_pb2.Money(amount_minor=str(amount_minor), currency=currency, exponent=exponent),
            payment=session_pb2.Web3Payment(
                chain_id=chain_id,
                deposit_address=deposit_address,
                token=token or "",
                min_confirmations=min_confirmations,
            ),
        )
        if expires_at is not None:
            message.expires_at.CopyFrom(Timestamp(seconds=expires_at))
        self.sessions[session_id] = FakeSession(message)
        return session_id

    def status_of(self, session_id: str) -> int:
        return self.sessions[session_id].session.status

    def _check(self) -> None:
        if self.unavailable:
            raise FakeRpcError(grpc.StatusCode.UNAVAILABLE)

    def _get(self, session_id: str) -> FakeSession:
        if session_id not in self.sessions:
            raise FakeRpcError(grpc.StatusCode.NOT_FOUND)
        return self.sessions[session_id]

    async def GetSession(
        self, request: session_pb2.GetSessionRequest, timeout: float = 0
    ) -> session_pb2.Session:
        self._check()
        return self._get(request.session_id).session

    async def GetSessionByDepositAddress(
        self, request: session_pb2.GetSessionByDepositAddressRequest, timeout: float = 0
    ) -> session_pb2.Session:
        self._check()
        for entry in self.sessions.values():
            if entry.session.payment.deposit_address.lower() == request.deposit_address.lower():
                return entry.session
        raise FakeRpcError(grpc.StatusCode.NOT_FOUND)

    async def ListActiveDeposits(
        self, request: session_pb2.ListActiveDepositsRequest, timeout: float = 0
    ) -> session_pb2.ListActiveDepositsResponse:
        self._check()
        return session_pb2.ListActiveDepositsResponse(
            deposits=[
                session_pb2.ActiveDeposit(
                    session_id=s.session.id,
                    merchant_id=s.session.merchant_id,
                    payment=s.session.payment,
                    amount=s.session.amount,
                    status=s.session.status,
                    expires_at=s.session.expires_at,
                )
                for s in self.sessions.values()
                if s.session.payment.chain_id == request.chain_id
            ]
        )

    async def ExpireSession(
        self, request: session_pb2.ExpireSessionRequest, timeout: float = 0
    ) -> session_pb2.Session:
        self._check()
        entry = self._get(request.session_id)
        if entry.session.status == session_pb2.SESSION_STATUS_CREATED:
            entry.session.status = session_pb2.SESSION_STATUS_EXPIRED
        return entry.session

    async def RaiseSessionAlert(
        self, request: session_pb2.RaiseSessionAlertRequest, timeout: float = 0
    ) -> session_pb2.Session:
        self._check()
        self.alerts.append(request)
        return self._get(request.session_id).session

    async def ApplyPaymentEvent(
        self, request: session_pb2.ApplyPaymentEventRequest, timeout: float = 0
    ) -> session_pb2.ApplyPaymentEventResponse:
        self._check()
        entry = self._get(request.session_id)
        session = entry.session
        if request.provider_event_id in entry.outcomes:
            return session_pb2.ApplyPaymentEventResponse(
                outcome=session_pb2.APPLY_OUTCOME_DUPLICATE,
                first_outcome=entry.outcomes[request.provider_event_id],
                session=session,
            )
        entry.applied.append(request)
        closed = session.status in (
            session_pb2.SESSION_STATUS_PAID,
            session_pb2.SESSION_STATUS_EXPIRED,
            session_pb2.SESSION_STATUS_FAILED,
        )
        if request.kind == session_pb2.EVENT_KIND_PENDING:
            outcome = (
                session_pb2.APPLY_OUTCOME_APPLIED
                if not closed
                else session_pb2.APPLY_OUTCOME_IGNORED_TERMINAL
            )
            if session.status == session_pb2.SESSION_STATUS_CREATED:
                session.status = session_pb2.SESSION_STATUS_PENDING
        elif closed:
            outcome = session_pb2.APPLY_OUTCOME_PAYMENT_ON_CLOSED_SESSION
            entry.quarantined.append(request.provider_event_id)
        elif int(request.amount.amount_minor) < int(session.amount.amount_minor):
            outcome = session_pb2.APPLY_OUTCOME_AMOUNT_MISMATCH
            entry.quarantined.append(request.provider_event_id)
        else:
            over = int(request.amount.amount_minor) > int(session.amount.amount_minor)
            outcome = session_pb2.APPLY_OUTCOME_OVERPAID if over else session_pb2.APPLY_OUTCOME_APPLIED
            session.status = session_pb2.SESSION_STATUS_PAID
            session.amount_received.CopyFrom(request.amount)
        entry.outcomes[request.provider_event_id] = outcome
        return session_pb2.ApplyPaymentEventResponse(outcome=outcome, session=session)


class FakeAddresses:
    """In-memory AddressesRepository: per-address start block and failures."""

    def __init__(self) -> None:
        self.states: dict[str, Any] = {}
        self.passes: list[dict[str, Any]] = []

    async def ensure(self, session_id: str, **fields: Any) -> Any:
        from webhook_gateway.chain.deposits_repository import AddressState

        if session_id not in self.states:
            self.states[session_id] = AddressState(
                session_id=session_id,
                start_block=None,
                start_block_hash=None,
                failures=0,
                last_error=None,
                last_error_at=None,
                next_attempt_at=None,
                **fields,
            )
        return self.states[session_id]

    async def set_start(self, session_id: str, start_block: int, start_block_hash: str | None) -> None:
        self.states[session_id] = replace(
            self.states[session_id], start_block=start_block, start_block_hash=start_block_hash
        )

    async def blocked(self, session_ids: Iterable[str]) -> set[str]:
        return {s for s in session_ids if s in self.states and self.states[s].next_attempt_at is not None}

    async def record_failure(self, session_id: str, error: str, base_s: float, cap_s: float) -> Any:
        state = self.states[session_id]
        self.states[session_id] = replace(
            state, failures=state.failures + 1, last_error=error, next_attempt_at="later"
        )
        return self.states[session_id]

    async def clear_failure(self, session_id: str) -> None:
        if session_id in self.states:
            self.states[session_id] = replace(self.states[session_id], failures=0, next_attempt_at=None)

    async def record_pass(self, chain_id: int, **fields: Any) -> None:
        self.passes.append({"chain_id": chain_id, **fields})
