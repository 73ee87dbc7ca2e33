"""The group form of `read_for_event` and `write_move`: many events' reads in one statement, and many
decided moves in one statement, which is one transaction and one WAL flush for the whole group.

The write keeps every guarantee of the single form, row by row: each move is conditional on the state its
decision saw (status and paid_reference, re-checked on the newest row version under its lock), and a
move whose session changed meanwhile writes nothing and is reported as not applied. A session whose row
another transaction holds locked right now is skipped (SKIP LOCKED) and reported as not applied too: one
busy session must not hold up a whole group, and groups never wait on each other's row locks, so they
cannot deadlock. One statement means all or nothing: if any row breaks a constraint (an event recorded
meanwhile by another replica, or a payment whose money another event quarantined meanwhile), nothing of the
group is written and the caller applies those events one by one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from session_service.adapters import state_moves
from session_service.adapters.session_repository import QUARANTINED_PAYMENTS_SQL, Record

_READ_SQL = f"""
SELECT e.ord, s.*, p.outcome AS prior_outcome, p.quarantine_id AS prior_quarantine_id,
       {QUARANTINED_PAYMENTS_SQL}
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


# The group write is the one state-move writer's batched form (it checks every move before writing).
WrittenGroup = state_moves.WrittenGroup
write_moves = state_moves.write_moves
