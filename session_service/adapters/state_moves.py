"""THE one writer of session state moves (issue 15 item 5).

Every path that changes a session's status goes through this module: provider events (one at a time and in
groups), the expiry sweeper, the merchant's ExpireSession, the audited quarantine override (expired -> paid)
and refunds (paid -> refunded). Before anything is sent to the database each move is checked against the
state machine (`states.require_move`, including the provider-only moves; the override against `OVERRIDES`,
never against `TRANSITIONS`), so a caller that decided wrongly gets FAILED_PRECONDITION `invalid_transition`
and nothing is written.

The write itself is ONE statement of data-modifying CTEs: the conditional row lock, the move, its history
row, the audit row, and for provider events the processed-event record, any quarantine entry and the
fulfilment outbox row. It comes in two forms built from the same values (`move_values`):
- `write_move`: one move, conditional on the state its decision saw;
- `write_moves`: many moves on distinct sessions in one statement (group commit and the sweeper), each row
  still conditional on its own decision's state, skipping rows another transaction holds locked.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from paygate_runtime import tracing
from paygate_runtime.errors import FailedPrecondition
from paygate_runtime.money import Money
from session_service.domain.states import SessionStatus, can_override, require_move

Record: TypeAlias = asyncpg.Record  # asyncpg is untyped: Any to mypy


@dataclass(frozen=True, slots=True)
class Move:
    """Everything one decision writes. Fields left None write nothing."""

    session_id: uuid.UUID
    merchant_id: uuid.UUID
    from_status: str
    to_status: str | None
    source_event_id: str
    note: str
    history: bool
    actor: str
    action: str | None
    detail: dict[str, Any]
    paid_reference: str | None = None
    received: Money | None = None
    # Provider event bookkeeping (ApplyPaymentEvent only).
    provider: str | None = None
    provider_event_id: str | None = None
    outcome: str | None = None
    provider_reference: str | None = None
    # With a reason, the id of the entry this move opens; without one, the entry that already holds the
    # event's payment (`already_quarantined`): recorded with the processed event, nothing is opened.
    quarantine_id: uuid.UUID | None = None
    quarantine_reason: str | None = None
    quarantine_amount: Money | None = None
    surplus: Money | None = None
    # The paid_reference the decision saw (with from_status, the state the write is conditional on).
    expected_paid_reference: str | None = None
    # A card session's rail, bound by this move; and the provider the decision saw (None: not checked). The
    # provider is also what the state machine's provider-only moves are checked against.
    bind_provider: str | None = None
    expected_provider: str | None = None
    # The mode of the quarantine entry (the event's own mode when known, else the session's).
    quarantine_mode: str | None = None
    # The entry holds one provider payment's money: at most one such entry per (session, provider,
    # provider_reference), which the quarantine_one_per_payment index enforces.
    quarantine_holds_payment: bool = False
    # True only for the audited quarantine override: checked against OVERRIDES instead of TRANSITIONS.
    override: bool = False
    # The W3C traceparent stored with the fulfilment outbox row, so the dispatcher continues the trace of the
    # operation that made the session paid. By default the current span's (None with tracing off).
    traceparent: str | None = field(default_factory=tracing.current_traceparent)


def check_move(move: Move) -> None:
    """Refuse (FailedPrecondition `invalid_transition`) a move the state machine does not allow. A move with
    no target status (an event recorded without moving the session) changes no status and always passes."""
    if move.to_status is None:
        return
    source, target = SessionStatus(move.from_status), SessionStatus(move.to_status)
    if move.override:
        if not can_override(source, target):
            raise FailedPrecondition(
                "invalid_transition", f"no override moves a {source} session to {target}", field="status"
            )
        return
    require_move(source, target, move.expected_provider)


def move_values(move: Move) -> tuple[object, ...]:
    """A move's values in the order both statements take them: $1..$24 of the single form (then the
    conditions and `binding_values`), and the first 24 columns of the group form."""
    received, amount, surplus = move.received, move.quarantine_amount, move.surplus
    return (
        move.session_id,
        move.to_status,
        move.paid_reference,
        received.amount_minor if received else None,
        received.exponent if received else None,
        move.from_status,
        move.source_event_id,
        move.note,
        move.history,
        move.merchant_id,
        move.actor,
        move.action,
        json.dumps(move.detail),
        move.provider,
        move.provider_event_id,
        move.outcome,
        move.provider_reference,
        move.quarantine_id,
        move.quarantine_reason,
        amount.amount_minor if amount else None,
        amount.currency if amount else None,
        amount.exponent if amount else None,
        surplus.amount_minor if surplus else None,
        surplus.exponent if surplus else None,
    )


def binding_values(move: Move) -> tuple[object, ...]:
    """$27..$31: the rail to bind, the provider the decision saw, the quarantine entry's mode, the outbox
    row's traceparent and whether the entry holds a payment."""
    return (
        move.bind_provider,
        move.expected_provider,
        move.quarantine_mode,
        move.traceparent,
        move.quarantine_holds_payment,
    )


# Statuses that close a session's payment (closed_at is set when a session reaches one; `refunded` comes after
# `paid`, which set it already).
_CLOSES = "('paid', 'failed', 'expired')"

_MOVE_SQL = f"""
WITH locked AS (
    -- The row lock and the check in one: the decision was made on (status, paid_reference) as read; if a
    -- concurrent move changed them, this selects nothing and nothing below is written (the caller decides
    -- again). EvalPlanQual re-checks the condition on the newest row version after waiting for the lock.
    SELECT id FROM sessions
     WHERE id = $1::uuid AND status = $25::text AND paid_reference IS NOT DISTINCT FROM $26::text
       -- and on the provider it saw: two card rails racing for one unbound session bind it once.
       AND ($28::text IS NULL OR provider = $28::text)
       FOR UPDATE
), bound AS (
    UPDATE sessions SET provider = $27::text
     WHERE id IN (SELECT id FROM locked) AND $27::text IS NOT NULL AND $2::text IS NULL
), moved AS (
    UPDATE sessions
       SET status = $2::text,
           provider = COALESCE($27::text, provider),
           paid_at = CASE WHEN $2::text = 'paid' THEN now() ELSE paid_at END,
           closed_at = CASE WHEN $2::text IN {_CLOSES} THEN now() ELSE closed_at END,
           paid_reference = COALESCE($3::text, paid_reference),
           received_minor = COALESCE($4::numeric, received_minor),
           received_exponent = COALESCE($5::smallint, received_exponent),
           fulfilment_status = CASE WHEN $2::text = 'paid' THEN 'pending' ELSE fulfilment_status END
     WHERE id IN (SELECT id FROM locked) AND $2::text IS NOT NULL
 RETURNING id
), history AS (
    INSERT INTO session_history (session_id, from_status, to_status, source_event_id, note)
    SELECT $1::uuid, $6::text, COALESCE($2::text, $6::text), $7::text, $8::text
     WHERE $9::bool AND EXISTS (SELECT 1 FROM locked)
), outboxed AS (
    INSERT INTO outbox (session_id, kind, traceparent)
    SELECT $1::uuid, 'fulfil', $30::text WHERE $2::text = 'paid'
       AND EXISTS (SELECT 1 FROM locked)
    ON CONFLICT (session_id, kind) DO NOTHING
), audited AS (
    INSERT INTO audit_log (session_id, merchant_id, actor, action, detail)
    SELECT $1::uuid, $10::uuid, $11::text, $12::text, $13::jsonb
     WHERE $12::text IS NOT NULL AND EXISTS (SELECT 1 FROM locked)
), processed AS (
    INSERT INTO processed_events (provider, provider_event_id, session_id, outcome, provider_reference,
                                  quarantine_id)
    SELECT $14::text, $15::text, $1::uuid, $16::text, $17::text, $18::uuid
     WHERE $14::text IS NOT NULL AND EXISTS (SELECT 1 FROM locked)
), quarantined AS (
    INSERT INTO quarantine (id, merchant_id, session_id, reason, note, provider, provider_event_id,
                            provider_reference, amount_minor, amount_currency, amount_exponent,
                            surplus_minor, surplus_exponent, mode, holds_payment)
    SELECT $18::uuid, $10::uuid, $1::uuid, $19::text, $8::text, $14::text, $15::text, $17::text,
           $20::numeric, $21::text, $22::smallint, $23::numeric, $24::smallint, $29::text, $31::bool
     WHERE $19::text IS NOT NULL AND EXISTS (SELECT 1 FROM locked)
)
SELECT EXISTS (SELECT 1 FROM locked) AS applied, now() AS at
"""


async def write_move(conn: asyncpg.Connection, move: Move) -> Record:
    """Check, then write one move in one round trip (its own transaction, or the caller's). Returns (applied,
    at): applied is False when the session is no longer in the state the decision saw. Raises
    FailedPrecondition `invalid_transition` for a move the state machine refuses (nothing written), and
    asyncpg.UniqueViolationError when the provider event was recorded meanwhile."""
    check_move(move)
    return await conn.fetchrow(
        _MOVE_SQL, *move_values(move), move.from_status, move.expected_paid_reference, *binding_values(move)
    )


_GROUP_SQL = f"""
WITH m AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::numeric[], $5::smallint[], $6::text[],
                         $7::text[], $8::text[], $9::bool[], $10::uuid[], $11::text[], $12::text[],
                         $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::uuid[],
                         $19::text[], $20::numeric[], $21::text[], $22::smallint[], $23::numeric[],
                         $24::smallint[], $25::text[], $26::text[], $27::text[], $28::text[], $29::text[],
                         $30::bool[])
        AS m(session_id, to_status, paid_reference, received_minor, received_exponent, from_status,
             source_event_id, note, history, merchant_id, actor, action, detail, provider, provider_event_id,
             outcome, provider_reference, quarantine_id, quarantine_reason, amount_minor, amount_currency,
             amount_exponent, surplus_minor, surplus_exponent, expected_paid_reference, bind_provider,
             expected_provider, quarantine_mode, traceparent, quarantine_holds_payment)
), locked AS (
    SELECT s.id FROM sessions s JOIN m ON m.session_id = s.id
     WHERE s.status = m.from_status AND s.paid_reference IS NOT DISTINCT FROM m.expected_paid_reference
       AND (m.expected_provider IS NULL OR s.provider = m.expected_provider)
       FOR UPDATE OF s SKIP LOCKED
), go AS MATERIALIZED (
    SELECT m.* FROM m JOIN locked ON locked.id = m.session_id
), bound AS (
    -- A card session bound by an event that records without moving it (an attempt).
    UPDATE sessions s SET provider = go.bind_provider
      FROM go WHERE s.id = go.session_id AND go.bind_provider IS NOT NULL AND go.to_status IS NULL
), moved AS (
    UPDATE sessions s
       SET status = go.to_status,
           provider = COALESCE(go.bind_provider, s.provider),
           paid_at = CASE WHEN go.to_status = 'paid' THEN now() ELSE s.paid_at END,
           closed_at = CASE WHEN go.to_status IN {_CLOSES} THEN now() ELSE s.closed_at END,
           paid_reference = COALESCE(go.paid_reference, s.paid_reference),
           received_minor = COALESCE(go.received_minor, s.received_minor),
           received_exponent = COALESCE(go.received_exponent, s.received_exponent),
           fulfilment_status = CASE WHEN go.to_status = 'paid' THEN 'pending' ELSE s.fulfilment_status END
      FROM go
     WHERE s.id = go.session_id AND go.to_status IS NOT NULL
), history AS (
    INSERT INTO session_history (session_id, from_status, to_status, source_event_id, note)
    SELECT session_id, from_status, COALESCE(to_status, from_status), source_event_id, note
      FROM go WHERE history
), outboxed AS (
    INSERT INTO outbox (session_id, kind, traceparent)
    SELECT session_id, 'fulfil', traceparent FROM go WHERE to_status = 'paid'
    ON CONFLICT (session_id, kind) DO NOTHING
), audited AS (
    -- Each audit row takes its merchant's hash-chain head row lock (the BEFORE INSERT trigger of
    -- 0080_audit_hash_chain.sql). A group spans merchants: inserting in merchant order makes every group take
    -- those locks in the same order, so two groups (two replicas) can never deadlock on them.
    INSERT INTO audit_log (session_id, merchant_id, actor, action, detail)
    SELECT session_id, merchant_id, actor, action, detail::jsonb FROM go WHERE action IS NOT NULL
     ORDER BY merchant_id, session_id
), processed AS (
    INSERT INTO processed_events (provider, provider_event_id, session_id, outcome, provider_reference,
                                  quarantine_id)
    SELECT provider, provider_event_id, session_id, outcome, provider_reference, quarantine_id
      FROM go WHERE provider IS NOT NULL
), quarantined AS (
    INSERT INTO quarantine (id, merchant_id, session_id, reason, note, provider, provider_event_id,
                            provider_reference, amount_minor, amount_currency, amount_exponent,
                            surplus_minor, surplus_exponent, mode, holds_payment)
    SELECT quarantine_id, merchant_id, session_id, quarantine_reason, note, provider, provider_event_id,
           provider_reference, amount_minor, amount_currency, amount_exponent, surplus_minor, surplus_exponent,
           quarantine_mode, quarantine_holds_payment
      FROM go WHERE quarantine_reason IS NOT NULL
)
SELECT ARRAY(SELECT session_id FROM go) AS applied, now() AS at
"""

_GROUP_COLUMNS = 30


@dataclass(frozen=True, slots=True)
class WrittenGroup:
    applied: frozenset[uuid.UUID]
    at: datetime


async def write_moves(conn: asyncpg.Connection, moves: Sequence[Move]) -> WrittenGroup:
    """Check every move, then write them (on distinct sessions) in one statement. Returns the sessions whose
    move was written; the others had changed since their decision or were locked. Raises FailedPrecondition
    `invalid_transition` before writing anything when one move is illegal, and asyncpg.UniqueViolationError
    (nothing written) when one of the events was recorded meanwhile."""
    columns: list[list[object]] = [[] for _ in range(_GROUP_COLUMNS)]
    for move in moves:
        check_move(move)
        values = (*move_values(move), move.expected_paid_reference, *binding_values(move))
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    row = await conn.fetchrow(_GROUP_SQL, *columns)
    assert row is not None
    return WrittenGroup(frozenset(row["applied"]), row["at"])


# ---------------------------------------------------------------------------------------------- sweeps
_DUE_SQL = """
SELECT id, merchant_id, provider FROM sessions
 WHERE status = $1 AND ($2::text IS NULL OR provider = $2)
   -- The column alone on one side, so the partial indexes on expires_at serve the range.
   AND expires_at <= now() - make_interval(secs => $3)
 ORDER BY expires_at LIMIT $4 FOR UPDATE SKIP LOCKED
"""


async def expire_due(
    conn: asyncpg.Connection,
    *,
    from_status: SessionStatus,
    batch: int,
    provider: str | None = None,
    grace_s: float = 0,
    source_event_id: str,
    note: str,
    detail: dict[str, Any],
) -> list[uuid.UUID]:
    """The sweeper's form: expire up to `batch` sessions in `from_status` (of `provider` when given) whose
    `expires_at + grace_s` has passed, through `write_moves`. Call inside the sweeper's transaction: the due
    rows are locked by the read (SKIP LOCKED: a session an event is moving right now waits for the next pass)
    and written by the group statement."""
    # Checked once for the batch before any read, so an illegal sweep fails loudly even with nothing due.
    require_move(from_status, SessionStatus.EXPIRED, provider)
    due = await conn.fetch(_DUE_SQL, from_status.value, provider, float(grace_s), batch)
    if not due:
        return []
    moves = [
        Move(
            session_id=row["id"],
            merchant_id=row["merchant_id"],
            from_status=from_status.value,
            to_status=SessionStatus.EXPIRED.value,
            source_event_id=source_event_id,
            note=note,
            history=True,
            actor="sweeper",
            action="session_expired",
            detail=detail,
            expected_provider=row["provider"],
        )
        for row in due
    ]
    written = await write_moves(conn, moves)
    return [move.session_id for move in moves if move.session_id in written.applied]
