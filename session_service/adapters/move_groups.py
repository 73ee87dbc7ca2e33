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

# Each event finds its session and its prior outcome by primary key, whatever the tables' statistics say. As
# plain joins, PostgreSQL planned hash joins that read `sessions` and `processed_events` whole whenever its
# statistics were older than the tables (a fresh deployment's first burst, and each burst until the next
# analyze): in two bursts of 9,000, 343 scans read 1.7 million rows. A LATERAL subquery that references the
# event is joined as a nested loop, one index probe per event; OFFSET 0 keeps PostgreSQL from flattening it
# back into a plain join (tests/integration/session/test_event_group_reads_scale.py).
_READ_SQL = f"""
SELECT e.ord, s.*, p.outcome AS prior_outcome, p.quarantine_id AS prior_quarantine_id,
       {QUARANTINED_PAYMENTS_SQL}
  FROM unnest($1::uuid[], $2::text[], $3::text[]) WITH ORDINALITY AS e(session_id, provider, event_id, ord)
  JOIN LATERAL (SELECT * FROM sessions WHERE id = e.session_id OFFSET 0) s ON true
  LEFT JOIN LATERAL (SELECT outcome, quarantine_id FROM processed_events
                      WHERE provider = e.provider AND provider_event_id = e.event_id OFFSET 0) p ON true
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
