"""The webhook inbox in the gateway schema: verified provider events, their status and retry schedule.

Every write is a single statement (autocommit), so a 2xx is only answered after the row is durable and no
connection is held while a service is called. Claims are leases: `next_attempt_at` is pushed forward by the
claimer, so a crashed gateway's work becomes due again by itself and another replica picks it up.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import asyncpg

from webhook_gateway.adapters.group_writer import GroupWriter

RECEIVED: Final = "received"
APPLIED: Final = "applied"
DUPLICATE: Final = "duplicate"
IGNORED: Final = "ignored"
QUARANTINED: Final = "quarantined"
FAILED: Final = "failed"
STATUSES: Final[frozenset[str]] = frozenset({RECEIVED, APPLIED, DUPLICATE, IGNORED, QUARANTINED, FAILED})
UNKNOWN_SESSION: Final = "unknown_session"
# Every provider the inbox accepts (the CHECK on inbox_events.provider, migration 0002): the relay claims
# without a provider filter when it handles them all, and the backlog gauges are labelled with them.
INBOX_PROVIDERS: Final[frozenset[str]] = frozenset({"stripe", "onecom", "web3"})

_COLUMNS: Final = """id, provider, event_id, event_type, raw_body, received_at, status, attempts, next_attempt_at,
    last_error, outcome, session_id, provider_reference, merchant_id, mode, quarantine_id, updated_at, source,
    traceparent, normalized"""


@dataclass(frozen=True, slots=True)
class InboxEvent:
    id: str
    provider: str
    event_id: str
    event_type: str
    raw_body: bytes
    received_at: datetime
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    outcome: str | None
    session_id: str | None
    provider_reference: str | None
    merchant_id: str | None
    mode: str | None
    quarantine_id: str | None
    updated_at: datetime
    # "webhook", or "reconcile" for an event built from the provider's API by reconciliation (contract §11).
    source: str = "webhook"
    # The W3C traceparent of the request that stored it (tracing on), continued when it is applied.
    traceparent: str | None = None
    # What the receiving handler read from the body (providers.normalized_json), applied as is by the relay;
    # None for rows stored without it (older rows, reconciliation).
    normalized: str | None = None

    @property
    def is_final(self) -> bool:
        """Final events are never applied again; an unknown session's quarantine may still be retried."""
        if self.status in (RECEIVED, FAILED):
            return False
        return not (self.status == QUARANTINED and self.outcome == UNKNOWN_SESSION)


# `not InboxEvent.is_final`, as SQL over a row of inbox_events: an event still waiting to be applied (a replay
# may claim it; the dashboard's health card counts it).
_WAITING_SQL: Final = (
    f"(status IN ('{RECEIVED}', '{FAILED}') OR (status = '{QUARANTINED}' AND outcome = '{UNKNOWN_SESSION}'))"
)


@dataclass(frozen=True, slots=True)
class Stored:
    event: InboxEvent | None  # the new row; None for a redelivery
    inserted: bool  # False: this (provider, event_id) was already in the inbox


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A verified event to store. `claim`: the caller applies it at once and leases it for
    `first_attempt_in_s` (attempts = 1); otherwise it is due for the relay after that delay."""

    provider: str
    event_id: str
    event_type: str
    raw_body: bytes
    status: str
    outcome: str | None
    session_id: str | None
    provider_reference: str | None
    first_attempt_in_s: float
    claim: bool
    # The event's own mode when the provider said it (Stripe's livemode) or the secret that verified it did
    # (One.com, web3); None until the session's mode is learned. It is what the relay passes on again.
    mode: str | None = None
    # paygate_runtime.tracing.current_traceparent() of the storing request; None with tracing off.
    traceparent: str | None = None
    # providers.normalized_json.storable_normalized() of the event, stored once beside the raw body.
    normalized: str | None = None


@dataclass(frozen=True, slots=True)
class Finish:
    """The final status (or `failed`) of an applied event, as `InboxRepository.finish` records it."""

    inbox_id: str
    status: str
    outcome: str | None
    merchant_id: str | None = None
    mode: str | None = None
    quarantine_id: str | None = None
    last_error: str | None = None
    # The session the apply matched the event to (a dispute names only its charge); recorded only where the
    # event named none itself.
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookHealth:
    """A merchant's inbox events of one mode received since a moment, counted by status in the database."""

    received: int
    applied: int
    failed: int
    waiting: int
    stale_waiting: int  # waiting (not final) and received before the caller's `stale_before`
    last_received_at: datetime | None  # the newest event of the mode, however old


def _event(row: asyncpg.Record) -> InboxEvent:
    return InboxEvent(
        id=str(row["id"]),
        provider=row["provider"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        raw_body=bytes(row["raw_body"]),
        received_at=row["received_at"],
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        outcome=row["outcome"],
        session_id=str(row["session_id"]) if row["session_id"] is not None else None,
        provider_reference=row["provider_reference"],
        merchant_id=str(row["merchant_id"]) if row["merchant_id"] is not None else None,
        mode=row["mode"],
        quarantine_id=row["quarantine_id"],
        updated_at=row["updated_at"],
        source=row["source"],
        traceparent=row["traceparent"],
        normalized=row["normalized"],
    )


def _of_providers(providers: Sequence[str], parameter: str) -> str:
    """The provider condition of a query over the due index. A relay that handles every provider (the shipped
    gateway) has none: `provider = ANY(...)` offered the planner the (provider, event_id) index as well, and
    with statistics taken on an empty inbox it scanned every due row and sorted them (5-10 ms a claim with
    9,000 due, every 0.1 s of a burst) instead of reading the due index in order and stopping at the limit.
    The parameter is still sent, so both forms take the same arguments."""
    if INBOX_PROVIDERS.issubset(providers):
        return f"{parameter}::text[] IS NOT NULL"
    return f"provider = ANY({parameter}::text[])"


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


def _session_uuid(value: str | None) -> uuid.UUID | None:
    """A session id learned from a reply: recorded only if it is one (never fails a batch of finishes)."""
    try:
        return _uuid_or_none(value)
    except ValueError:
        return None


class InboxRepository:
    def __init__(self, pool: asyncpg.Pool | asyncpg.Connection) -> None:
        self.pool = pool

    async def store_many(self, items: Sequence[NewEvent]) -> list[Stored]:
        """Insert verified events in one statement (one commit); each is stored once.

        A redelivery (already stored, or twice in `items`) comes back with inserted=False and without its
        row: the caller only answers `duplicate: true`. Only what the caller does not know is returned, so
        the raw bodies do not travel back over the wire.

        Rows go in in (provider, event_id) order: a redelivery can sit in two batches written at once, and
        batches that took the same unique-index entries in different orders would deadlock (one fails whole).
        """
        ordered = sorted(items, key=lambda i: (i.provider, i.event_id))
        rows = await self.pool.fetch(
            """INSERT INTO inbox_events (provider, event_id, event_type, raw_body, status, outcome, session_id,
                                         provider_reference, attempts, next_attempt_at, mode, traceparent,
                                         normalized)
               SELECT p, e, t, r, s, o, sid, ref, a,
                      CASE WHEN s = 'received' THEN now() + make_interval(secs => d) END, m, tp, n
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::text[],
                             $7::uuid[], $8::text[], $9::int[], $10::float8[], $11::text[], $12::text[],
                             $13::jsonb[])
                      AS u(p, e, t, r, s, o, sid, ref, a, d, m, tp, n)
               ON CONFLICT (provider, event_id) DO NOTHING
               RETURNING id, provider, event_id, received_at, attempts, next_attempt_at, updated_at""",
            [i.provider for i in ordered],
            [i.event_id for i in ordered],
            [i.event_type for i in ordered],
            [i.raw_body for i in ordered],
            [i.status for i in ordered],
            [i.outcome for i in ordered],
            [_uuid_or_none(i.session_id) for i in ordered],
            [i.provider_reference for i in ordered],
            [1 if i.claim and i.status == RECEIVED else 0 for i in ordered],
            [i.first_attempt_in_s for i in ordered],
            [i.mode for i in ordered],
            [i.traceparent for i in ordered],
            [i.normalized for i in ordered],
        )
        inserted = {(row["provider"], row["event_id"]): row for row in rows}
        results = []
        for item in items:
            row = inserted.pop((item.provider, item.event_id), None)
            if row is None:
                results.append(Stored(None, inserted=False))
                continue
            event = InboxEvent(
                id=str(row["id"]),
                provider=item.provider,
                event_id=item.event_id,
                event_type=item.event_type,
                raw_body=item.raw_body,
                received_at=row["received_at"],
                status=item.status,
                attempts=row["attempts"],
                next_attempt_at=row["next_attempt_at"],
                last_error=None,
                outcome=item.outcome,
                session_id=item.session_id,
                provider_reference=item.provider_reference,
                merchant_id=None,
                mode=item.mode,
                quarantine_id=None,
                updated_at=row["updated_at"],
                traceparent=item.traceparent,
                normalized=item.normalized,
            )
            results.append(Stored(event, inserted=True))
        return results

    async def get(self, inbox_id: str) -> InboxEvent | None:
        try:
            key = uuid.UUID(inbox_id)
        except ValueError:
            return None
        row = await self.pool.fetchrow(f"SELECT {_COLUMNS} FROM inbox_events WHERE id = $1", key)
        return _event(row) if row is not None else None

    async def get_by_event_id(self, provider: str, event_id: str) -> InboxEvent | None:
        row = await self.pool.fetchrow(
            f"SELECT {_COLUMNS} FROM inbox_events WHERE provider = $1 AND event_id = $2", provider, event_id
        )
        return _event(row) if row is not None else None

    async def claim_due(
        self, limit: int, lease_s: float, providers: list[str], *, overdue_s: float = 0.0
    ) -> list[InboxEvent]:
        """Lease up to `limit` events of `providers` that have been due for at least `overdue_s`, oldest
        first; rows another gateway is claiming are skipped."""
        rows = await self.pool.fetch(
            f"""WITH due AS (
                    SELECT id FROM inbox_events
                     WHERE status = 'received' AND next_attempt_at <= now() - make_interval(secs => $4)
                       AND {_of_providers(providers, "$3")}
                     ORDER BY next_attempt_at
                     LIMIT $1
                     FOR UPDATE SKIP LOCKED)
                UPDATE inbox_events AS e
                   SET next_attempt_at = now() + make_interval(secs => $2),
                       attempts = e.attempts + 1,
                       updated_at = now()
                  FROM due
                 WHERE e.id = due.id
             RETURNING {", ".join("e." + c.strip() for c in _COLUMNS.split(","))}""",
            limit,
            lease_s,
            providers,
            overdue_s,
        )
        return [_event(row) for row in rows]

    async def longest_due_wait_s(self, providers: list[str]) -> float:
        """How long the longest-waiting due event of `providers` has been due (leased ones are not); 0 if none."""
        waited = await self.pool.fetchval(
            f"""SELECT extract(epoch FROM now() - min(next_attempt_at))::float8 FROM inbox_events
                 WHERE status = 'received' AND next_attempt_at <= now() AND {_of_providers(providers, "$1")}""",
            providers,
        )
        return float(waited or 0.0)

    async def claim_one(self, inbox_id: str, lease_s: float) -> InboxEvent | None:
        """Lease one event that has no final outcome (for a replay); None if it is final or leased elsewhere."""
        row = await self.pool.fetchrow(
            f"""WITH target AS (
                    SELECT id FROM inbox_events
                     WHERE id = $1 AND {_WAITING_SQL}
                     FOR UPDATE SKIP LOCKED)
                UPDATE inbox_events AS e
                   SET status = 'received',
                       next_attempt_at = now() + make_interval(secs => $2),
                       attempts = e.attempts + 1,
                       updated_at = now()
                  FROM target
                 WHERE e.id = target.id
             RETURNING {", ".join("e." + c.strip() for c in _COLUMNS.split(","))}""",
            uuid.UUID(inbox_id),
            lease_s,
        )
        return _event(row) if row is not None else None

    async def finish(
        self,
        inbox_id: str,
        *,
        status: str,
        outcome: str | None,
        merchant_id: str | None = None,
        mode: str | None = None,
        quarantine_id: str | None = None,
        last_error: str | None = None,
        session_id: str | None = None,
    ) -> None:
        """Record a final status (or `failed`); only a `received` row moves, so a late writer loses."""
        await self.finish_many(
            [Finish(inbox_id, status, outcome, merchant_id, mode, quarantine_id, last_error, session_id)]
        )

    async def finish_many(self, items: Sequence[Finish]) -> list[None]:
        """`finish` for a batch, in one statement (one commit). As one after the other: the first verdict for
        an event wins (an UPDATE ... FROM that joins a row twice would pick one at random)."""
        firsts = list({item.inbox_id: item for item in reversed(items)}.values())
        await self.pool.execute(
            """UPDATE inbox_events AS e
                  SET status = f.status, outcome = f.outcome,
                      -- The event's own mode, when it was known on receipt, is never replaced by its
                      -- session's: a live event that named a test session stays in the live world.
                      merchant_id = COALESCE(f.merchant_id, e.merchant_id), mode = COALESCE(e.mode, f.mode),
                      quarantine_id = COALESCE(f.quarantine_id, e.quarantine_id), last_error = f.last_error,
                      -- The session the apply matched (a dispute names only its charge); a session the
                      -- event named on arrival is never replaced.
                      session_id = COALESCE(e.session_id, f.session_id),
                      next_attempt_at = NULL, updated_at = now()
                 FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::text[],
                             $7::text[], $8::uuid[])
                      AS f(id, status, outcome, merchant_id, mode, quarantine_id, last_error, session_id)
                WHERE e.id = f.id AND e.status = 'received'""",
            [uuid.UUID(i.inbox_id) for i in firsts],
            [i.status for i in firsts],
            [i.outcome for i in firsts],
            [_uuid_or_none(i.merchant_id) for i in firsts],
            [i.mode for i in firsts],
            [i.quarantine_id for i in firsts],
            [i.last_error for i in firsts],
            [_session_uuid(i.session_id) for i in firsts],
        )
        return [None] * len(items)

    async def retry_later(self, inbox_id: str, *, delay_s: float, error: str) -> None:
        await self.pool.execute(
            """UPDATE inbox_events
                  SET next_attempt_at = now() + make_interval(secs => $2), last_error = $3, updated_at = now()
                WHERE id = $1 AND status = 'received'""",
            uuid.UUID(inbox_id),
            delay_s,
            error,
        )

    async def set_merchant(self, inbox_id: str, merchant_id: str, mode: str | None) -> None:
        await self.pool.execute(
            """UPDATE inbox_events SET merchant_id = $2, mode = COALESCE(mode, $3), updated_at = now()
                WHERE id = $1 AND merchant_id IS NULL""",
            uuid.UUID(inbox_id),
            uuid.UUID(merchant_id),
            mode,
        )

    async def list_for_merchant(
        self,
        merchant_id: str,
        *,
        limit: int,
        starting_after: str | None = None,
        status: str | None = None,
        mode: str | None = None,
    ) -> tuple[list[InboxEvent], bool]:
        """The merchant's events of `mode`, newest first; `starting_after` is the last id of the previous page.
        An event whose mode is not known yet is in neither mode's list (test and live never mix)."""
        cursor = await self._cursor(starting_after)
        rows = await self.pool.fetch(
            f"""SELECT {_COLUMNS} FROM inbox_events
                 WHERE merchant_id = $1
                   AND ($2::text IS NULL OR status = $2)
                   AND ($3::text IS NULL OR mode = $3)
                   AND ($4::timestamptz IS NULL OR (received_at, id) < ($4, $5::uuid))
                 ORDER BY received_at DESC, id DESC
                 LIMIT $6""",
            uuid.UUID(merchant_id),
            status,
            mode,
            cursor[0] if cursor else None,
            cursor[1] if cursor else None,
            limit + 1,
        )
        events = [_event(row) for row in rows]
        return events[:limit], len(events) > limit

    async def list_for_session(
        self, merchant_id: str, session_id: str, *, mode: str, limit: int
    ) -> list[InboxEvent]:
        """A session's events of `mode`, oldest first: the merchant's events that name it or that the apply
        matched to it. Read by (merchant_id, session_id) on the index of migration 0980."""
        try:
            session = uuid.UUID(session_id)
        except ValueError:
            return []
        rows = await self.pool.fetch(
            f"""SELECT {_COLUMNS} FROM inbox_events
                 WHERE merchant_id = $1 AND session_id = $2 AND mode = $3
                 ORDER BY received_at, id
                 LIMIT $4""",
            uuid.UUID(merchant_id),
            session,
            mode,
            limit,
        )
        return [_event(row) for row in rows]

    async def find_for_merchant(
        self, merchant_id: str, keys: Sequence[tuple[str, str]], *, mode: str
    ) -> list[InboxEvent]:
        """The merchant's events of `mode` among (provider, event id) pairs, read on their unique key."""
        if not keys:
            return []
        rows = await self.pool.fetch(
            f"""SELECT {_COLUMNS} FROM inbox_events
                 WHERE (provider, event_id) IN (SELECT * FROM unnest($2::text[], $3::text[]))
                   AND merchant_id = $1 AND mode = $4""",
            uuid.UUID(merchant_id),
            [provider for provider, _ in keys],
            [event_id for _, event_id in keys],
            mode,
        )
        return [_event(row) for row in rows]

    async def health_since(
        self, merchant_id: str, *, mode: str, since: datetime, stale_before: datetime
    ) -> WebhookHealth:
        """The merchant's events of `mode` received since `since`, counted by status in one aggregate over
        the merchant index (merchant_id, received_at); with the newest event's time, however old."""
        row = await self.pool.fetchrow(
            f"""SELECT count(*) AS received,
                       count(*) FILTER (WHERE status IN ('applied', 'duplicate')) AS applied,
                       count(*) FILTER (WHERE status = 'failed') AS failed,
                       count(*) FILTER (WHERE waiting) AS waiting,
                       count(*) FILTER (WHERE waiting AND received_at < $4) AS stale_waiting,
                       (SELECT max(received_at) FROM inbox_events
                         WHERE merchant_id = $1 AND mode = $2) AS last_received_at
                  FROM (SELECT status, received_at, {_WAITING_SQL} AS waiting FROM inbox_events
                         WHERE merchant_id = $1 AND mode = $2 AND received_at >= $3) AS recent""",
            uuid.UUID(merchant_id),
            mode,
            since,
            stale_before,
        )
        return WebhookHealth(
            received=row["received"],
            applied=row["applied"],
            failed=row["failed"],
            waiting=row["waiting"],
            stale_waiting=row["stale_waiting"],
            last_received_at=row["last_received_at"],
        )

    async def list_unmatched(self, *, limit: int) -> list[InboxEvent]:
        """Events that name a session nobody knows (yet): no merchant learned, retried or quarantined."""
        rows = await self.pool.fetch(
            f"""SELECT {_COLUMNS} FROM inbox_events
                 WHERE merchant_id IS NULL
                   AND (outcome = 'unknown_session' OR (status = 'received' AND last_error LIKE 'unknown_session%'))
                 ORDER BY received_at DESC, id DESC
                 LIMIT $1""",
            limit,
        )
        return [_event(row) for row in rows]

    async def list_recent(self, *, limit: int, status: str | None = None) -> list[InboxEvent]:
        rows = await self.pool.fetch(
            f"""SELECT {_COLUMNS} FROM inbox_events
                 WHERE ($2::text IS NULL OR status = $2)
                 ORDER BY received_at DESC, id DESC
                 LIMIT $1""",
            limit,
            status,
        )
        return [_event(row) for row in rows]

    async def _cursor(self, starting_after: str | None) -> tuple[datetime, uuid.UUID] | None:
        if not starting_after:
            return None
        event = await self.get(starting_after)
        if event is None:
            return None
        return event.received_at, uuid.UUID(event.id)


class InboxWriter(GroupWriter[NewEvent, Stored]):
    """Group commit for webhook replies: events arriving together share one INSERT and one commit."""

    def __init__(self, repo: InboxRepository, *, max_batch: int = 256, max_inflight: int = 4) -> None:
        super().__init__(repo.store_many, max_batch=max_batch, max_inflight=max_inflight)

    async def store(self, item: NewEvent) -> Stored:
        return await self.submit(item)
