"""The group form of `read_for_event` and `write_move`: many events' reads in one statement, and many
decided moves in one statement, which is one transaction and one WAL flush for the whole group.

The write keeps every guarantee of the single form, row by row: each move is conditional on the state its
decision saw (status and paid_reference, re-checked on the newest row version under its lock), and a
move whose session changed meanwhile writes nothing and is reported as not applied. A session whose row
another transaction holds locked right now is skipped (SKIP LOCKED) and reported as not applied too: one
busy session must not hold up a whole group, and groups never wait on each other's row locks, so they
cannot deadlock. One statement means all or nothing: if any row breaks a constraint (an event recorded
meanwhile by another replica), nothing of the group is written and the caller applies those events one by
one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from session_service.adapters.session_repository import Move, Record, move_values

_READ_SQL = """
SELECT e.ord, s.*, p.outcome AS prior_outcome, p.quarantine_id AS prior_quarantine_id
  FROM unnest($1::uuid[], $2::text[], $3::text[]) WITH ORDINALITY AS e(session_id, provider, event_id, ord)
  JOIN sessions s ON s.id = e.session_id
  LEFT JOIN processed_events p ON p.provider = e.provider AND p.provider_event_id = e.event_id
"""


@dataclass(frozen=True, slots=True)
class EventKey:
    session_id: uuid.UUID
    provider: str
    provider_event_id: str


async def read_for_events(conn: asyncpg.Connection, keys: Sequence[EventKey]) -> list[Record | None]:
    """For each key, in order: its session with whether the event was seen (as `read_for_event`), or None
    for an unknown session. No lock: `write_moves` re-checks each state under its row lock."""
    rows = await conn.fetch(
        _READ_SQL,
        [k.session_id for k in keys],
        [k.provider for k in keys],
        [k.provider_event_id for k in keys],
    )
    found: list[Record | None] = [None] * len(keys)
    for row in rows:
        found[row["ord"] - 1] = row
    return found


_WRITE_SQL = """
WITH m AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::numeric[], $5::smallint[], $6::text[],
                         $7::text[], $8::text[], $9::bool[], $10::uuid[], $11::text[], $12::text[],
                         $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::uuid[],
                         $19::text[], $20::numeric[], $21::text[], $22::smallint[], $23::numeric[],
                         $24::smallint[], $25::text[])
        AS m(session_id, to_status, paid_reference, received_minor, received_exponent, from_status,
             source_event_id, note, history, merchant_id, actor, action, detail, provider, provider_event_id,
             outcome, provider_reference, quarantine_id, quarantine_reason, amount_minor, amount_currency,
             amount_exponent, surplus_minor, surplus_exponent, expected_paid_reference)
), locked AS (
    SELECT s.id FROM sessions s JOIN m ON m.session_id = s.id
     WHERE s.status = m.from_status AND s.paid_reference IS NOT DISTINCT FROM m.expected_paid_reference
       FOR UPDATE OF s SKIP LOCKED
), go AS MATERIALIZED (
    SELECT m.* FROM m JOIN locked ON locked.id = m.session_id
), moved AS (
    UPDATE sessions s
       SET status = go.to_status,
           paid_at = CASE WHEN go.to_status = 'paid' THEN now() ELSE s.paid_at END,
           closed_at = CASE WHEN go.to_status IN ('paid', 'failed', 'expired') THEN now() ELSE s.closed_at END,
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
    INSERT INTO outbox (session_id, kind) SELECT session_id, 'fulfil' FROM go WHERE to_status = 'paid'
    ON CONFLICT (session_id, kind) DO NOTHING
), audited AS (
    INSERT INTO audit_log (session_id, merchant_id, actor, action, detail)
    SELECT session_id, merchant_id, actor, action, detail::jsonb FROM go WHERE action IS NOT NULL
), processed AS (
    INSERT INTO processed_events (provider, provider_event_id, session_id, outcome, provider_reference,
                                  quarantine_id)
    SELECT provider, provider_event_id, session_id, outcome, provider_reference, quarantine_id
      FROM go WHERE provider IS NOT NULL
), quarantined AS (
    INSERT INTO quarantine (id, merchant_id, session_id, reason, note, provider, provider_event_id,
                            provider_reference, amount_minor, amount_currency, amount_exponent,
                            surplus_minor, surplus_exponent)
    SELECT quarantine_id, merchant_id, session_id, quarantine_reason, note, provider, provider_event_id,
           provider_reference, amount_minor, amount_currency, amount_exponent, surplus_minor, surplus_exponent
      FROM go WHERE quarantine_id IS NOT NULL
)
SELECT ARRAY(SELECT session_id FROM go) AS applied, now() AS at
"""


@dataclass(frozen=True, slots=True)
class WrittenGroup:
    applied: frozenset[uuid.UUID]
    at: datetime


async def write_moves(conn: asyncpg.Connection, moves: Sequence[Move]) -> WrittenGroup:
    """One statement, one implicit transaction, for moves on distinct sessions. Returns the sessions whose
    move was written; the others had changed since their decision or were locked. Raises asyncpg.UniqueViolationError
    (and writes nothing) when one of the events was recorded meanwhile."""
    columns: list[list[object]] = [[] for _ in range(25)]
    for move in moves:
        for column, value in zip(columns, (*move_values(move), move.expected_paid_reference), strict=True):
            column.append(value)
    row = await conn.fetchrow(_WRITE_SQL, *columns)
    assert row is not None
    return WrittenGroup(frozenset(row["applied"]), row["at"])
