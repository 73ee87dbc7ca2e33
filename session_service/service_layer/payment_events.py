"""ApplyPaymentEvent: one normalised provider event, applied exactly once under the session's row lock.

This is the one-event form. The RPC goes through `event_groups.GroupedEventApplier`, which applies events
that arrive together as a group with the same decision and the same conditional write per row, and falls
back to this function for whatever a group cannot settle.

Two round trips: read the session and whether the event id was seen, let the pure `decide()` choose, then
write everything the decision implies in ONE statement, which is its own transaction: it takes the row lock
(SELECT ... FOR UPDATE), checks the state is still the one decided on, and only then moves the session and
inserts the history row, the processed-event record, any quarantine entry, the fulfilment outbox row and
the audit row. If another event moved the session in between, nothing is written and we decide again: the
decision is always taken on the state the write commits against, as under a lock held across the decision,
without a BEGIN/COMMIT pair and an idle transaction around Python code. Only final outcomes are recorded;
an unknown session raises NOT_FOUND and records nothing, so the gateway's retry can still apply the event
once the session exists.

A quarantine entry changes no session column, so two events of one payment (a webhook and reconciliation)
can both decide, on their reads, to quarantine its money. The database keeps one entry per payment (the
`quarantine_one_per_payment` index): the second write fails as a whole and its event is decided again, on
the committed entry, as `already_quarantined`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from paygate_runtime import tracing
from paygate_runtime.errors import InvalidArgument, NotFound, Unavailable
from paygate_runtime.money import Money
from session_service.adapters import session_repository as repo
from session_service.domain.modes import Mode
from session_service.domain.payment_events import (
    ApplyOutcome,
    Decision,
    EventKind,
    PaymentEvent,
    SessionSnapshot,
    decide,
    payment_key,
)
from session_service.domain.payment_settings import PROVIDERS
from session_service.domain.states import SessionStatus

_MAX_ID = 255
# Each retry follows a move by another event; once paid, a session's state no longer changes.
_MAX_ATTEMPTS = 10


@dataclass(frozen=True, slots=True)
class EventCommand:
    session_id: str
    provider: str
    provider_event_id: str
    kind: EventKind
    amount: Money | None
    provider_reference: str
    occurred_at: datetime
    mode: Mode | None
    provider_event_type: str = ""
    # The trace of the RPC that brought the event (captured where the command is made, since a group's
    # moves are written by whichever caller's task runs the group); stored with the fulfilment outbox row.
    traceparent: str | None = field(default_factory=tracing.current_traceparent)


@dataclass(frozen=True, slots=True)
class Applied:
    outcome: ApplyOutcome
    first_outcome: ApplyOutcome | None
    # The session after the event (history is not re-read on this hot path).
    session: dict[str, Any]
    quarantine_id: uuid.UUID | None


def snapshot_of(row: Any) -> SessionSnapshot:
    return SessionSnapshot(
        status=SessionStatus(row["status"]),
        mode=Mode(row["mode"]),
        amount=Money(int(row["amount_minor"]), row["currency"], row["exponent"]),
        paid_reference=row["paid_reference"],
        expires_at=row["expires_at"],
        closed_at=row["closed_at"],
        provider=row["provider"],
        quarantined_payments=frozenset(_quarantined_payments(row)),
    )


def _quarantined_payments(row: Any) -> dict[tuple[str, str], uuid.UUID]:
    """(provider, provider_reference) -> entry id of the payments this session holds in quarantine, from the
    `quarantined_payments` column of an event read (absent from a plain row: then none are needed)."""
    if "quarantined_payments" not in row:
        return {}
    return {(provider, reference): entry for provider, reference, entry in row["quarantined_payments"] or ()}


def validate_command(command: EventCommand) -> None:
    if command.provider not in PROVIDERS:
        raise InvalidArgument("invalid_provider", "provider must be stripe, onecom or web3", field="provider")
    if not command.provider_event_id or len(command.provider_event_id) > _MAX_ID:
        raise InvalidArgument(
            "invalid_provider_event_id",
            "provider_event_id is required (at most 255 chars)",
            field="provider_event_id",
        )
    if len(command.provider_reference) > _MAX_ID:
        raise InvalidArgument(
            "invalid_provider_reference", "provider_reference is too long", field="provider_reference"
        )
    if not command.session_id and not command.provider_reference:
        raise InvalidArgument(
            "missing_session_id", "an event needs a session_id or a provider_reference", field="session_id"
        )


def payment_event_of(command: EventCommand) -> PaymentEvent:
    return PaymentEvent(
        kind=command.kind,
        provider_reference=command.provider_reference or None,
        occurred_at=command.occurred_at,
        amount=command.amount,
        mode=command.mode,
        provider=command.provider,
    )


async def apply_payment_event(pool: asyncpg.Pool, command: EventCommand) -> Applied:
    validate_command(command)
    event = payment_event_of(command)
    async with pool.acquire() as conn:
        for _ in range(_MAX_ATTEMPTS):
            try:
                applied = await _attempt(conn, command, event)
            except asyncpg.UniqueViolationError as error:
                if repo.is_payment_quarantined_race(error):
                    # Another event of the same payment quarantined its money between our read and our
                    # write: decide again, on the entry it committed (`already_quarantined`).
                    continue
                # The same event committed between our read and our write: it is a duplicate after all.
                return await _duplicate(conn, command)
            if applied is not None:
                return applied
    raise Unavailable("session_busy", "the session kept changing under this event; retry")


async def _attempt(conn: asyncpg.Connection, command: EventCommand, event: PaymentEvent) -> Applied | None:
    """Read, decide, then write conditionally on the state the decision saw; None when that state changed
    before the write took the row lock (the caller decides again on the new state)."""
    session_id = await _resolve_session_id(conn, command)
    row = await repo.read_for_event(conn, session_id, command.provider, command.provider_event_id)
    if row is None:
        raise NotFound("session_not_found", "no such session")
    planned = plan(row, command, event)
    if isinstance(planned, Applied):
        return planned
    written = await repo.write_move(conn, planned.move())
    if not written["applied"]:
        return None
    return planned.applied_at(written["at"])


@dataclass(frozen=True, slots=True)
class PlannedMove:
    """What one event writes, decided on its session's row as read. The write is conditional on that row's
    state; once it has committed, `applied_at` gives the caller's answer without reading the row back."""

    row: Any
    command: EventCommand
    decision: Decision
    quarantine_id: uuid.UUID | None

    def move(self) -> repo.Move:
        return _move_for(self.row, self.command, self.decision, self.quarantine_id)

    def applied_at(self, committed_at: datetime) -> Applied:
        after = _after(self.row, self.decision, self.command, committed_at)
        return Applied(self.decision.outcome, None, after, self.quarantine_id)


def plan(row: Any, command: EventCommand, event: PaymentEvent) -> Applied | PlannedMove:
    """For a session row read with the event's `prior_*` columns: the answer to a redelivery (its first
    outcome; nothing to write), or the move the pure decision makes. Shared by the one-event and the group
    form, so both answer and write alike."""
    if row["prior_outcome"] is not None:
        return Applied(
            ApplyOutcome.DUPLICATE, ApplyOutcome(row["prior_outcome"]), dict(row), row["prior_quarantine_id"]
        )
    decision = decide(snapshot_of(row), event)
    return PlannedMove(row, command, decision, _quarantine_id(row, event, decision))


def _quarantine_id(row: Any, event: PaymentEvent, decision: Decision) -> uuid.UUID | None:
    """A new entry's id; for `already_quarantined` the id of the entry that holds the payment (recorded with the
    event and answered, so that a redelivery names it too); else None."""
    if decision.quarantine is not None:
        return uuid.uuid4()
    if decision.outcome is ApplyOutcome.ALREADY_QUARANTINED:
        key = payment_key(event)
        assert key is not None
        return _quarantined_payments(row)[key]
    return None


async def _resolve_session_id(conn: asyncpg.Connection, command: EventCommand) -> uuid.UUID:
    if command.session_id:
        try:
            return uuid.UUID(command.session_id)
        except ValueError:
            raise NotFound("session_not_found", "no such session") from None
    found = await repo.find_session_by_reference(conn, command.provider, command.provider_reference)
    if found is None:
        raise NotFound("session_not_found", "no session is known for this provider reference")
    return found


def _move_for(
    row: Any, command: EventCommand, decision: Decision, quarantine_id: uuid.UUID | None
) -> repo.Move:
    new_status = decision.new_status.value if decision.new_status else None
    if new_status is not None:
        action: str | None = f"session_{new_status}"
    elif decision.quarantine is not None:
        action = "event_quarantined"
    elif decision.history:
        action = decision.note.value
    else:
        action = None
    detail: dict[str, Any] = {
        "event": f"{command.provider}:{command.provider_event_id}",
        "outcome": decision.outcome.value,
        "note": decision.note.value,
    }
    if command.provider_event_type:
        detail["type"] = command.provider_event_type
    if decision.bind_provider:
        detail["bound_to"] = decision.bind_provider
    if command.amount is not None:
        detail["amount"] = command.amount.display()
    if decision.quarantine is not None and command.mode and command.mode.value != row["mode"]:
        # The entry lives in the event's mode (mode_mismatch): its audit entry is listed there, not in the
        # session's world (paygate_runtime.audit_listing reads this before the session's mode).
        detail["mode"] = command.mode.value
    return repo.Move(
        session_id=row["id"],
        merchant_id=row["merchant_id"],
        from_status=row["status"],
        to_status=new_status,
        source_event_id=f"{command.provider}:{command.provider_event_id}",
        note=decision.note.value,
        history=decision.history,
        actor=f"provider:{command.provider}",
        action=action,
        detail=detail,
        paid_reference=decision.paid_reference,
        received=command.amount if decision.new_status is SessionStatus.PAID else None,
        provider=command.provider,
        provider_event_id=command.provider_event_id,
        outcome=decision.outcome.value,
        provider_reference=command.provider_reference or None,
        quarantine_id=quarantine_id,
        quarantine_reason=decision.quarantine.value if decision.quarantine else None,
        quarantine_amount=command.amount if decision.quarantine else None,
        surplus=decision.surplus,
        expected_paid_reference=row["paid_reference"],
        bind_provider=decision.bind_provider,
        # The decision saw this provider; a racing event of the other card rail that bound the session
        # first makes this write select nothing, and the event is decided again (provider_mismatch).
        expected_provider=row["provider"],
        quarantine_mode=(command.mode.value if command.mode else row["mode"])
        if decision.quarantine
        else None,
        quarantine_holds_payment=decision.holds_payment,
        traceparent=command.traceparent,
    )


def _after(row: Any, decision: Decision, command: EventCommand, committed_at: datetime) -> dict[str, Any]:
    """The row as the write left it, without reading it back."""
    after = dict(row)
    if decision.bind_provider is not None:
        after["provider"] = decision.bind_provider
    if decision.new_status is not None:
        after["status"] = decision.new_status.value
        if decision.new_status is not SessionStatus.PENDING:
            after["closed_at"] = committed_at
        if decision.new_status is SessionStatus.PAID:
            assert command.amount is not None
            after["paid_at"] = committed_at
            after["paid_reference"] = decision.paid_reference
            after["received_minor"] = command.amount.amount_minor
            after["received_exponent"] = command.amount.exponent
            after["fulfilment_status"] = "pending"
    return after


async def _duplicate(conn: asyncpg.Connection, command: EventCommand) -> Applied:
    prior = await repo.processed_event(conn, command.provider, command.provider_event_id)
    assert prior is not None, "a unique violation means the event was recorded"
    row = await repo.get_session(conn, prior["session_id"])
    assert row is not None
    return Applied(ApplyOutcome.DUPLICATE, ApplyOutcome(prior["outcome"]), dict(row), prior["quarantine_id"])
