"""asyncpg storage of merchant events, webhook endpoints, deliveries (the queue) and attempts (the log).

Events and their first deliveries are written by triggers (migration 0050) in the transaction of the change
they report; this module reads them, manages endpoints, and runs the delivery queue: claims are leased with
`FOR UPDATE SKIP LOCKED` (replicas share the queue) and fair per endpoint (each endpoint gets at most its
share of slots, counting the leases every replica has committed), so one slow or dead endpoint never takes the
slots another endpoint's deliveries need. One process's claims run one at a time, so it never holds more
than the cap for an endpoint; two replicas claiming at the same instant may each take a full share (the cap
is per endpoint per replica at worst).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

Record: TypeAlias = asyncpg.Record  # asyncpg is untyped: Any to mypy

# The end of each previous secret still signing, latest first (migration 0220's rows, and the columns a previous
# release may have written during a rolling update); empty once every one has ended. The first is the endpoint's
# `previous_secret_expires_at`. Queries that select it name the table `webhook_endpoints` without an alias (the
# expression refers to it).
_PREVIOUS_SECRETS_ENDS = """ARRAY(
        SELECT p.expires_at FROM webhook_endpoint_previous_secrets p
         WHERE p.endpoint_id = webhook_endpoints.id AND p.expires_at > now()
        UNION ALL
        SELECT webhook_endpoints.previous_secret_expires_at
         WHERE webhook_endpoints.previous_secret_expires_at > now()
           AND (webhook_endpoints.previous_secret_sealed IS NOT NULL
                OR webhook_endpoints.previous_secret IS NOT NULL)
        ORDER BY 1 DESC)"""

_ENDPOINT_COLUMNS = f"""id, merchant_id, mode, url, events, description, status,
    {_PREVIOUS_SECRETS_ENDS} AS previous_secrets_expire_at,
    failing_since, disabled_reason, disabled_at, created_at, updated_at"""


# ---------------------------------------------------------------------------------------------- endpoints
async def insert_endpoint(
    conn: asyncpg.Connection,
    endpoint_id: uuid.UUID,
    merchant_id: uuid.UUID,
    mode: str,
    url: str,
    events: list[str],
    description: str,
    secret_sealed: bytes,
    *,
    idempotency_key: str | None = None,
    request_fingerprint: str | None = None,
) -> Record | None:
    """The new endpoint; None when an endpoint of this merchant and mode already holds `idempotency_key`
    (the caller then reads that one: `endpoint_by_idempotency_key`)."""
    return await conn.fetchrow(
        f"""INSERT INTO webhook_endpoints (id, merchant_id, mode, url, events, description, secret_sealed,
                                           idempotency_key, request_fingerprint)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (merchant_id, mode, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
            RETURNING {_ENDPOINT_COLUMNS}""",
        endpoint_id,
        merchant_id,
        mode,
        url,
        events,
        description,
        secret_sealed,
        idempotency_key,
        request_fingerprint,
    )


async def endpoint_by_idempotency_key(
    conn: asyncpg.Connection, merchant_id: uuid.UUID, mode: str, idempotency_key: str
) -> Record | None:
    """The endpoint an earlier create with this key made (deleted ones too: the key stays used), with the
    fingerprint of that request's body."""
    return await conn.fetchrow(
        f"""SELECT {_ENDPOINT_COLUMNS}, request_fingerprint FROM webhook_endpoints
             WHERE merchant_id = $1 AND mode = $2 AND idempotency_key = $3""",
        merchant_id,
        mode,
        idempotency_key,
    )


async def get_endpoint(
    conn: asyncpg.Connection,
    merchant_id: uuid.UUID,
    mode: str,
    endpoint_id: uuid.UUID,
    *,
    lock: bool = False,
    deleted: bool = False,
) -> Record | None:
    """THE one place a caller's endpoint is loaded: only in its merchant AND mode; deleted ones are gone,
    except with `deleted` (reading a deleted endpoint's delivery log, which stays)."""
    return await conn.fetchrow(
        f"""SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints
             WHERE id = $1 AND merchant_id = $2 AND mode = $3 AND ($4 OR status <> 'deleted')"""
        # NO KEY UPDATE: a payment's statement fanning an event out to this endpoint takes KEY SHARE on it
        # (the deliveries' foreign key); a merchant's edit must not make that statement wait.
        + (" FOR NO KEY UPDATE" if lock else ""),
        endpoint_id,
        merchant_id,
        mode,
        deleted,
    )


async def list_endpoints(
    conn: asyncpg.Connection, merchant_id: uuid.UUID, mode: str, limit: int, after: uuid.UUID | None
) -> list[Record]:
    return await conn.fetch(
        f"""SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints
             WHERE merchant_id = $1 AND mode = $2 AND status <> 'deleted'
               AND ($4::uuid IS NULL OR (created_at, id) < (
                      SELECT c.created_at, c.id FROM webhook_endpoints c
                       WHERE c.id = $4 AND c.merchant_id = $1 AND c.mode = $2))
             ORDER BY created_at DESC, id DESC LIMIT $3""",
        merchant_id,
        mode,
        limit,
        after,
    )


async def endpoint_in_list(
    conn: asyncpg.Connection, merchant_id: uuid.UUID, mode: str, endpoint_id: uuid.UUID
) -> bool:
    """The endpoint is one of this merchant and mode's (a cursor of list_endpoints). A deleted one still
    counts: it was on the page the cursor came from, and list_endpoints places it as well as any other."""
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM webhook_endpoints WHERE id = $1 AND merchant_id = $2 AND mode = $3",
            endpoint_id,
            merchant_id,
            mode,
        )
    )


async def update_endpoint(
    conn: asyncpg.Connection,
    endpoint_id: uuid.UUID,
    *,
    url: str | None,
    events: list[str] | None,
    description: str | None,
    status: str | None,
) -> Record:
    """A merchant re-enabling an endpoint starts it afresh: the failure clock and paygate's reason go."""
    return await conn.fetchrow(
        f"""UPDATE webhook_endpoints
               SET url = COALESCE($2, url),
                   events = COALESCE($3, events),
                   description = COALESCE($4, description),
                   status = COALESCE($5, status),
                   failing_since = CASE WHEN $5 = 'enabled' THEN NULL ELSE failing_since END,
                   disabled_reason = CASE WHEN $5 IS NOT NULL THEN NULL ELSE disabled_reason END,
                   disabled_at = CASE WHEN $5 = 'disabled' AND status <> 'disabled' THEN now()
                                      WHEN $5 = 'enabled' THEN NULL ELSE disabled_at END,
                   updated_at = now()
             WHERE id = $1 RETURNING {_ENDPOINT_COLUMNS}""",
        endpoint_id,
        url,
        events,
        description,
        status,
    )


async def delete_endpoint(conn: asyncpg.Connection, endpoint_id: uuid.UUID) -> Record:
    """Soft: the delivery log keeps naming it. Its pending deliveries are cancelled in the same statement, and
    every secret it had (current and previous) is dropped."""
    await conn.execute("DELETE FROM webhook_endpoint_previous_secrets WHERE endpoint_id = $1", endpoint_id)
    return await conn.fetchrow(
        f"""WITH cancelled AS (
                UPDATE webhook_deliveries SET status = 'cancelled', locked_until = NULL
                 WHERE endpoint_id = $1 AND status = 'pending'
            )
            UPDATE webhook_endpoints SET status = 'deleted', secret = NULL, previous_secret = NULL,
                                         secret_sealed = NULL, previous_secret_sealed = NULL,
                                         updated_at = now()
             WHERE id = $1 RETURNING {_ENDPOINT_COLUMNS}""",
        endpoint_id,
    )


async def secrets_of(conn: asyncpg.Connection, endpoint_id: uuid.UUID) -> Record:
    """The endpoint's secret columns (a roll's input): current and legacy previous, sealed or plain."""
    return await conn.fetchrow(
        """SELECT secret, secret_sealed, previous_secret, previous_secret_sealed, previous_secret_expires_at
             FROM webhook_endpoints WHERE id = $1""",
        endpoint_id,
    )


@dataclass(frozen=True, slots=True)
class Rolled:
    row: Record
    # When the secret this roll replaced stops signing (None: at once).
    replaced_expires_at: datetime | None
    # Previous secrets still signing after the roll, and how many the roll ended (the cap, or `expires_in` 0).
    signing: int
    ended: int


async def roll_secret(
    conn: asyncpg.Connection,
    endpoint_id: uuid.UUID,
    new_secret_sealed: bytes,
    overlap_s: float,
    *,
    replaced_sealed: bytes | None,
    legacy: tuple[bytes, datetime] | None,
    keep: int,
) -> Rolled:
    """The new secret becomes current. With `overlap_s` > 0 the replaced one (`replaced_sealed`) signs for
    `overlap_s` more seconds beside every previous secret still before its own end, of which at most `keep`
    are kept (the oldest retired ends first); `legacy` (a previous secret in the old columns, sealed, and its
    end) moves among them. With 0 every previous secret ends at once (a leaked secret). In the caller's
    transaction, with the endpoint locked."""
    replaced_end: datetime | None = None
    before = int(
        await conn.fetchval(
            """SELECT count(*) FROM webhook_endpoint_previous_secrets
                WHERE endpoint_id = $1 AND expires_at > now()""",
            endpoint_id,
        )
    ) + (1 if legacy is not None else 0)
    if overlap_s > 0:
        if legacy is not None:
            await conn.execute(
                """INSERT INTO webhook_endpoint_previous_secrets (endpoint_id, secret_sealed, expires_at)
                   SELECT $1::uuid, $2::bytea, $3::timestamptz WHERE $3::timestamptz > now()""",
                endpoint_id,
                legacy[0],
                legacy[1],
            )
        if replaced_sealed is not None:
            replaced_end = await conn.fetchval(
                """INSERT INTO webhook_endpoint_previous_secrets (endpoint_id, secret_sealed, expires_at)
                   VALUES ($1, $2, now() + make_interval(secs => $3::float8)) RETURNING expires_at""",
                endpoint_id,
                replaced_sealed,
                overlap_s,
            )
        await conn.execute(
            """DELETE FROM webhook_endpoint_previous_secrets
                WHERE endpoint_id = $1
                  AND (expires_at <= now()
                       OR seq NOT IN (SELECT seq FROM webhook_endpoint_previous_secrets
                                       WHERE endpoint_id = $1 AND expires_at > now()
                                       ORDER BY seq DESC LIMIT $2))""",
            endpoint_id,
            keep,
        )
    else:
        await conn.execute(
            "DELETE FROM webhook_endpoint_previous_secrets WHERE endpoint_id = $1", endpoint_id
        )
    row = await conn.fetchrow(
        f"""UPDATE webhook_endpoints
               SET secret = NULL, secret_sealed = $2, previous_secret = NULL, previous_secret_sealed = NULL,
                   previous_secret_expires_at = NULL, updated_at = now()
             WHERE id = $1 RETURNING {_ENDPOINT_COLUMNS}""",
        endpoint_id,
        new_secret_sealed,
    )
    signing = int(
        await conn.fetchval(
            """SELECT count(*) FROM webhook_endpoint_previous_secrets WHERE endpoint_id = $1""", endpoint_id
        )
    )
    added = 1 if replaced_end is not None else 0
    return Rolled(row, replaced_end, signing, max(0, before + added - signing))


async def plain_secret_rows(conn: asyncpg.Connection, limit: int) -> list[Record]:
    """Endpoints still holding a plain secret (written before migration 0100, or by a previous release)."""
    return await conn.fetch(
        """SELECT id, secret, previous_secret FROM webhook_endpoints
            WHERE secret IS NOT NULL OR previous_secret IS NOT NULL
            ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
        limit,
    )


async def store_sealed_secrets(
    conn: asyncpg.Connection,
    endpoint_id: uuid.UUID,
    secret_sealed: bytes | None,
    previous_sealed: bytes | None,
) -> None:
    """Replace a row's plain secrets with their sealed forms (a column without a plain secret is kept)."""
    await conn.execute(
        """UPDATE webhook_endpoints
              SET secret_sealed = COALESCE($2, secret_sealed), secret = NULL,
                  previous_secret_sealed = COALESCE($3, previous_secret_sealed), previous_secret = NULL
            WHERE id = $1""",
        endpoint_id,
        secret_sealed,
        previous_sealed,
    )


# ---------------------------------------------------------------------------------------------- events
_EVENT_COLUMNS = "seq, id, merchant_id, mode, type, object_kind, object_id, snapshot, object, created_at"


async def list_events(
    conn: asyncpg.Connection,
    merchant_id: uuid.UUID,
    mode: str,
    event_type: str | None,
    limit: int,
    after: str | None,
) -> list[Record]:
    return await conn.fetch(
        f"""SELECT {_EVENT_COLUMNS} FROM merchant_events
             WHERE merchant_id = $1 AND mode = $2 AND ($3::text IS NULL OR type = $3)
               AND ($5::text IS NULL OR seq < (SELECT c.seq FROM merchant_events c
                                                WHERE c.id = $5 AND c.merchant_id = $1 AND c.mode = $2))
             ORDER BY seq DESC LIMIT $4""",
        merchant_id,
        mode,
        event_type,
        limit,
        after,
    )


async def get_event(
    conn: asyncpg.Connection, merchant_id: uuid.UUID, mode: str, event_id: str
) -> Record | None:
    return await conn.fetchrow(
        f"SELECT {_EVENT_COLUMNS} FROM merchant_events WHERE id = $1 AND merchant_id = $2 AND mode = $3",
        event_id,
        merchant_id,
        mode,
    )


async def event_exists(conn: asyncpg.Connection, merchant_id: uuid.UUID, mode: str, event_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM merchant_events WHERE id = $1 AND merchant_id = $2 AND mode = $3",
            event_id,
            merchant_id,
            mode,
        )
    )


async def store_object(conn: asyncpg.Connection, event_id: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Keep the first rendering of an object read from elsewhere, so every attempt sends the same body; a
    concurrent first rendering loses and takes the stored one."""
    stored = await conn.fetchval(
        """WITH set AS (
               UPDATE merchant_events SET object = $2::jsonb WHERE id = $1 AND object IS NULL RETURNING object
           )
           SELECT COALESCE((SELECT object FROM set), (SELECT object FROM merchant_events WHERE id = $1))""",
        event_id,
        json.dumps(obj),
    )
    return json.loads(stored) if isinstance(stored, str) else stored


async def record_event(
    conn: asyncpg.Connection,
    merchant_id: uuid.UUID,
    mode: str,
    event_type: str,
    object_id: str,
    obj: dict[str, Any],
    source_key: str,
) -> Record:
    """An event another service committed: fan out as the triggers do, once per source_key."""
    async with conn.transaction():
        existing = await conn.fetchrow(
            f"SELECT {_EVENT_COLUMNS} FROM merchant_events WHERE source_key = $1", source_key
        )
        if existing is not None:
            return existing
        event_id = await conn.fetchval(
            "SELECT emit_merchant_event($1, $2, $3, 'json', $4, $5::jsonb)",
            merchant_id,
            mode,
            event_type,
            object_id,
            json.dumps(obj),
        )
        return await conn.fetchrow(
            f"""UPDATE merchant_events SET source_key = $2, object = snapshot WHERE id = $1
                RETURNING {_EVENT_COLUMNS}""",
            event_id,
            source_key,
        )


# ---------------------------------------------------------------------------------------------- deliveries
async def redeliver(conn: asyncpg.Connection, event_id: str, endpoint_id: uuid.UUID) -> Record:
    """Due now, in a new retry window; a delivery that exists (delivered, failed, or waiting out a backoff)
    is re-armed, else one is made (an endpoint created after the event, or not subscribed to its type)."""
    row = await conn.fetchrow(
        """INSERT INTO webhook_deliveries (event_id, endpoint_id) VALUES ($1, $2)
           ON CONFLICT (event_id, endpoint_id) DO UPDATE
              SET status = 'pending', next_attempt_at = now(), window_start = now()
           RETURNING id, next_attempt_at""",
        event_id,
        endpoint_id,
    )
    await conn.execute("SELECT pg_notify('merchant_webhooks', '')")
    return row


async def list_attempts(
    conn: asyncpg.Connection,
    merchant_id: uuid.UUID,
    mode: str,
    endpoint_id: uuid.UUID | None,
    event_id: str | None,
    limit: int,
    after: int | None,
) -> list[Record]:
    return await conn.fetch(
        """SELECT * FROM webhook_delivery_attempts
            WHERE merchant_id = $1 AND mode = $2
              AND ($3::uuid IS NULL OR endpoint_id = $3) AND ($4::text IS NULL OR event_id = $4)
              AND ($6::bigint IS NULL OR id < $6)
            ORDER BY id DESC LIMIT $5""",
        merchant_id,
        mode,
        endpoint_id,
        event_id,
        limit,
        after,
    )


async def attempt_exists(
    conn: asyncpg.Connection, merchant_id: uuid.UUID, mode: str, attempt_id: int
) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM webhook_delivery_attempts WHERE id = $1 AND merchant_id = $2 AND mode = $3",
            attempt_id,
            merchant_id,
            mode,
        )
    )


_CLAIM_SQL = """
WITH candidates AS (
    SELECT d.id
      FROM webhook_endpoints e
     CROSS JOIN LATERAL (
        SELECT d.id FROM webhook_deliveries d
         WHERE d.endpoint_id = e.id AND d.status = 'pending' AND d.next_attempt_at <= now()
           AND (d.locked_until IS NULL OR d.locked_until < now())
         ORDER BY d.next_attempt_at
         -- This endpoint's share: what is left of its cap after what any replica holds leased right now.
         LIMIT GREATEST(0, $2 - (SELECT count(*) FROM webhook_deliveries x
                                  WHERE x.endpoint_id = e.id AND x.status = 'pending'
                                    AND x.locked_until >= now()))
         FOR UPDATE OF d SKIP LOCKED
     ) d
     WHERE e.status = 'enabled'
       AND EXISTS (SELECT 1 FROM webhook_deliveries p
                    WHERE p.endpoint_id = e.id AND p.status = 'pending' AND p.next_attempt_at <= now())
     LIMIT $1
), relaxed AS (
    -- A lease needs no durable commit: lost in a database crash, it only makes the delivery claimable again
    -- (and at-least-once is the promise); the attempt's log row is written durably. Skipping the WAL flush
    -- wait here halves the flushes a delivery waits for.
    SELECT set_config('synchronous_commit', 'off', true)
)
UPDATE webhook_deliveries d
   SET locked_until = now() + make_interval(secs => $3), attempts = d.attempts + 1
  FROM candidates c, merchant_events ev, webhook_endpoints e, relaxed
 WHERE d.id = c.id AND ev.id = d.event_id AND e.id = d.endpoint_id
RETURNING d.id AS delivery_id, d.attempts, d.window_start, d.endpoint_id, e.url, e.mode AS endpoint_mode,
          e.secret, e.previous_secret, e.secret_sealed, e.previous_secret_sealed, e.previous_secret_expires_at,
          -- Every previous secret still before its end (migration 0220), newest first, with its end.
          ARRAY(SELECT p.secret_sealed FROM webhook_endpoint_previous_secrets p
                 WHERE p.endpoint_id = e.id AND p.expires_at > now() ORDER BY p.seq DESC) AS previous_secrets_sealed,
          ARRAY(SELECT p.expires_at FROM webhook_endpoint_previous_secrets p
                 WHERE p.endpoint_id = e.id AND p.expires_at > now() ORDER BY p.seq DESC)
              AS previous_secrets_expire_at,
          ev.id AS event_id, ev.type, ev.merchant_id, ev.mode, ev.object_kind, ev.object_id, ev.snapshot,
          ev.object, ev.created_at
"""


async def claim_deliveries(
    conn: asyncpg.Connection, limit: int, per_endpoint: int, lease_s: float
) -> list[Record]:
    """Lease up to `limit` due deliveries, at most `per_endpoint` in flight per endpoint across replicas."""
    return await conn.fetch(_CLAIM_SQL, limit, per_endpoint, lease_s)


_RECORD_SQL = """
WITH r AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::uuid[], $4::text[], $5::int[], $6::text[], $7::int[],
                         $8::text[], $9::bool[], $10::float8[], $12::timestamptz[])
        AS r(delivery_id, event_type, merchant_id, mode, status_code, error, latency_ms, response_body,
             delivered, retry_in, window_start)
), attempt AS (
    INSERT INTO webhook_delivery_attempts (delivery_id, endpoint_id, event_id, event_type, merchant_id, mode,
                                           attempt, status_code, error, latency_ms, response_body, delivered,
                                           next_attempt_at)
    SELECT d.id, d.endpoint_id, d.event_id, r.event_type, r.merchant_id, r.mode, d.attempts, r.status_code,
           r.error, r.latency_ms, r.response_body, r.delivered,
           CASE WHEN r.retry_in IS NULL THEN NULL ELSE now() + make_interval(secs => r.retry_in) END
      FROM r JOIN webhook_deliveries d ON d.id = r.delivery_id
    RETURNING endpoint_id, delivered
), moved AS (
    -- A delivery re-armed by a redelivery while this attempt was in flight (a new window_start) keeps its
    -- state: pending and due, so the redelivery is sent; only the lease of the finished attempt ends.
    UPDATE webhook_deliveries d
       SET status = CASE WHEN r.window_start IS NOT NULL AND d.window_start <> r.window_start THEN d.status
                         WHEN r.delivered THEN 'delivered' WHEN r.retry_in IS NULL THEN 'failed'
                         ELSE 'pending' END,
           next_attempt_at = CASE WHEN r.window_start IS NOT NULL AND d.window_start <> r.window_start
                                       THEN d.next_attempt_at
                                  WHEN r.retry_in IS NULL THEN d.next_attempt_at
                                  ELSE now() + make_interval(secs => r.retry_in) END,
           locked_until = NULL
      FROM r
     WHERE d.id = r.delivery_id AND d.status = 'pending'
), outcome AS (
    SELECT endpoint_id, bool_or(delivered) AS ok FROM attempt GROUP BY endpoint_id
), endpoint AS (
    UPDATE webhook_endpoints e
       SET failing_since = CASE WHEN o.ok THEN NULL ELSE COALESCE(e.failing_since, now()) END,
           status = CASE WHEN NOT o.ok AND e.status = 'enabled'
                              AND e.failing_since <= now() - make_interval(secs => $11)
                         THEN 'disabled' ELSE e.status END,
           disabled_reason = CASE WHEN NOT o.ok AND e.status = 'enabled'
                                       AND e.failing_since <= now() - make_interval(secs => $11)
                                  THEN 'failing_for_5_days' ELSE e.disabled_reason END,
           disabled_at = CASE WHEN NOT o.ok AND e.status = 'enabled'
                                   AND e.failing_since <= now() - make_interval(secs => $11)
                              THEN now() ELSE e.disabled_at END
      FROM outcome o
     WHERE e.id = o.endpoint_id
       -- Touch the endpoint only when something changes (a success while failing, a first failure, the
       -- five days up): a healthy endpoint's row is not rewritten per delivery.
       AND ((o.ok AND e.failing_since IS NOT NULL) OR (NOT o.ok AND e.failing_since IS NULL)
            OR (NOT o.ok AND e.status = 'enabled' AND e.failing_since <= now() - make_interval(secs => $11)))
    RETURNING e.id, e.merchant_id, e.mode, e.status, e.url
), notice AS (
    INSERT INTO webhook_notices (merchant_id, mode, endpoint_id, kind, detail)
    SELECT merchant_id, mode, id, 'webhook_endpoint.disabled',
           jsonb_build_object('reason', 'failing_for_5_days', 'url', url)
      FROM endpoint WHERE status = 'disabled'
    RETURNING id
)
SELECT ARRAY(SELECT id FROM notice) AS notices
"""


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    delivery_id: int
    event_type: str
    merchant_id: uuid.UUID
    mode: str
    status_code: int | None
    error: str | None
    latency_ms: int
    response_body: str | None
    delivered: bool
    # Seconds until the next attempt; None: no retry (delivered, or the retry window is over).
    retry_in_s: float | None
    # The delivery's window_start as claimed: a redelivery meanwhile starts a new window, and this outcome
    # then no longer decides the delivery's state (None: decide regardless).
    window_start: datetime | None = None


async def record_attempts(
    conn: asyncpg.Connection, records: Sequence[AttemptRecord], disable_after_s: float
) -> list[int]:
    """One statement for a group of finished attempts (one commit, one WAL flush): their log rows, each
    delivery's next state, and each endpoint's failure clock (and, five days into failing, its disabling with
    a notice). Each delivery appears at most once in a group. Returns the ids of notices it recorded."""
    columns: list[list[Any]] = [[] for _ in range(11)]
    for rec in records:
        values = (
            rec.delivery_id,
            rec.event_type,
            rec.merchant_id,
            rec.mode,
            rec.status_code,
            rec.error,
            rec.latency_ms,
            rec.response_body,
            rec.delivered,
            rec.retry_in_s,
            rec.window_start,
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    notices = await conn.fetchval(_RECORD_SQL, *columns[:10], disable_after_s, columns[10])
    return list(notices or ())


async def release_leases(conn: asyncpg.Connection, delivery_ids: Sequence[int]) -> None:
    """On a clean stop: hand the in-flight deliveries back (their attempt counts stay: they may have been
    sent)."""
    await conn.execute(
        "UPDATE webhook_deliveries SET locked_until = NULL WHERE id = ANY($1::bigint[]) AND status = 'pending'",
        list(delivery_ids),
    )


async def next_due_in(conn: asyncpg.Connection) -> float | None:
    value = await conn.fetchval(
        """SELECT EXTRACT(EPOCH FROM MIN(GREATEST(d.next_attempt_at, COALESCE(d.locked_until, d.next_attempt_at)))
                                  - now())::float8
             FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
            WHERE d.status = 'pending' AND e.status = 'enabled'"""
    )
    return None if value is None else max(0.0, float(value))


async def claim_notices(conn: asyncpg.Connection, limit: int = 20) -> list[Record]:
    """Take pending notices for mailing (replicas skip each other's); a crash while mailing leaves one
    'sending', i.e. mailed at most once."""
    return await conn.fetch(
        """UPDATE webhook_notices SET mail_status = 'sending'
            WHERE id IN (SELECT id FROM webhook_notices WHERE mail_status = 'pending'
                          ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING *""",
        limit,
    )


async def finish_notice(conn: asyncpg.Connection, notice_id: int, status: str) -> None:
    await conn.execute("UPDATE webhook_notices SET mail_status = $2 WHERE id = $1", notice_id, status[:200])


# ---------------------------------------------------------------------------------------------- retention
@dataclass(frozen=True, slots=True)
class PrunedBatch:
    deliveries: int
    attempts: int
    events: int


async def prune_batch(conn: asyncpg.Connection, days: int, batch: int) -> PrunedBatch:
    """One batch of `prune_merchant_events` (migration 0130): finished deliveries older than `days` with
    their attempts, then events older than that which no delivery names."""
    row = await conn.fetchrow("SELECT * FROM prune_merchant_events($1, $2)", days, batch)
    return PrunedBatch(int(row["deliveries"]), int(row["attempts"]), int(row["events"]))
