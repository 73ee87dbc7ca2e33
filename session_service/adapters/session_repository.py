"""asyncpg storage of sessions, their history, processed events, quarantine, alerts, outbox and audit.

Every function takes a connection so that the use case decides the transaction. The hot statements are
plain constant SQL, so asyncpg's per-connection statement cache prepares each once and then only binds.
Writes that belong together (a move, its history row, the processed-event record, a quarantine entry, the
outbox row and the audit row) go out as ONE statement of data-modifying CTEs: one round trip, one
transaction, and nothing half-written if anything in it fails.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from session_service.domain.money import Money
from session_service.domain.payment_settings import AcceptedToken, OnchainSettings, PaymentSettings

Record = asyncpg.Record

_SESSION_WITH_CHILDREN = """
SELECT s.*,
       ARRAY(SELECT h FROM session_history h WHERE h.session_id = s.id ORDER BY h.id) AS history,
       ARRAY(SELECT a FROM session_alerts a WHERE a.session_id = s.id ORDER BY a.at, a.code) AS alerts
  FROM sessions s
"""


# ---------------------------------------------------------------------------------------------- settings
async def fetch_settings(conn: asyncpg.Connection, merchant_id: uuid.UUID) -> Record | None:
    return await conn.fetchrow("SELECT * FROM payment_settings WHERE merchant_id = $1", merchant_id)


def settings_from_row(merchant_id: str, row: Record | None) -> PaymentSettings:
    if row is None:
        return PaymentSettings(merchant_id)
    onchain = None
    if row["onchain_chain_id"] is not None:
        tokens = tuple(
            AcceptedToken(t["address"], t["symbol"], int(t["decimals"]))
            for t in json.loads(row["onchain_tokens"])
        )
        onchain = OnchainSettings(
            int(row["onchain_chain_id"]), row["onchain_xpub"], int(row["onchain_min_confirmations"]), tokens
        )
    return PaymentSettings(merchant_id, row["default_currency"], onchain, int(row["next_derivation_index"]))


async def save_settings(conn: asyncpg.Connection, settings: PaymentSettings) -> Record:
    onchain = settings.onchain
    tokens = json.dumps(
        [{"address": t.address, "symbol": t.symbol, "decimals": t.decimals} for t in onchain.tokens]
        if onchain
        else []
    )
    return await conn.fetchrow(
        """INSERT INTO payment_settings (merchant_id, default_currency, onchain_chain_id, onchain_xpub,
                                         onchain_min_confirmations, onchain_tokens, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, now())
           ON CONFLICT (merchant_id) DO UPDATE
              SET default_currency = EXCLUDED.default_currency,
                  onchain_chain_id = EXCLUDED.onchain_chain_id,
                  onchain_xpub = EXCLUDED.onchain_xpub,
                  onchain_min_confirmations = EXCLUDED.onchain_min_confirmations,
                  onchain_tokens = EXCLUDED.onchain_tokens,
                  updated_at = now()
           RETURNING *""",
        uuid.UUID(settings.merchant_id),
        settings.default_currency,
        onchain.chain_id if onchain else None,
        onchain.xpub if onchain else None,
        onchain.min_confirmations if onchain else None,
        tokens,
    )


async def allocate_derivation_index(conn: asyncpg.Connection, merchant_id: uuid.UUID) -> int:
    """Take the next BIP-44 index; the row lock holds until the caller's transaction ends."""
    index = await conn.fetchval(
        """UPDATE payment_settings SET next_derivation_index = next_derivation_index + 1
            WHERE merchant_id = $1 RETURNING next_derivation_index - 1""",
        merchant_id,
    )
    assert index is not None, "allocate only for merchants with settings"
    return int(index)


# ---------------------------------------------------------------------------------------------- sessions
@dataclass(frozen=True, slots=True)
class NewSession:
    id: uuid.UUID
    merchant_id: uuid.UUID
    mode: str
    amount: Money
    provider: str
    customer_email: str | None
    metadata: dict[str, str]
    description: str
    expires_at: Any
    idempotency_key: str | None
    request_fingerprint: str | None
    chain_id: int | None = None
    deposit_address: str | None = None
    token_address: str | None = None
    min_confirmations: int | None = None
    derivation_index: int | None = None


async def insert_session(conn: asyncpg.Connection, new: NewSession) -> Record | None:
    """Insert; None when the merchant's idempotency key is already taken (the caller reads that one)."""
    row = await conn.fetchrow(
        """INSERT INTO sessions (id, merchant_id, mode, status, amount_minor, currency, exponent, provider,
                                 customer_email, metadata, description, expires_at, idempotency_key,
                                 request_fingerprint, chain_id, deposit_address, token_address,
                                 min_confirmations, derivation_index)
           VALUES ($1, $2, $3, 'created', $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14, $15, $16,
                   $17, $18)
           ON CONFLICT (merchant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
           RETURNING *, '{}'::session_history[] AS history, '{}'::session_alerts[] AS alerts""",
        new.id,
        new.merchant_id,
        new.mode,
        new.amount.amount_minor,
        new.amount.currency,
        new.amount.exponent,
        new.provider,
        new.customer_email,
        json.dumps(new.metadata),
        new.description,
        new.expires_at,
        new.idempotency_key,
        new.request_fingerprint,
        new.chain_id,
        new.deposit_address,
        new.token_address,
        new.min_confirmations,
        new.derivation_index,
    )
    if row is not None:
        await write_audit(
            conn, new.id, new.merchant_id, "merchant", "session_created", {"provider": new.provider}
        )
    return row


async def find_by_idempotency_key(
    conn: asyncpg.Connection, merchant_id: uuid.UUID, key: str
) -> Record | None:
    return await conn.fetchrow(
        _SESSION_WITH_CHILDREN + " WHERE s.merchant_id = $1 AND s.idempotency_key = $2", merchant_id, key
    )


async def get_session(conn: asyncpg.Connection, session_id: uuid.UUID) -> Record | None:
    return await conn.fetchrow(_SESSION_WITH_CHILDREN + " WHERE s.id = $1", session_id)


async def get_session_by_deposit(conn: asyncpg.Connection, chain_id: int, address: str) -> Record | None:
    return await conn.fetchrow(
        _SESSION_WITH_CHILDREN + " WHERE s.chain_id = $1 AND lower(s.deposit_address) = lower($2)",
        chain_id,
        address,
    )


async def list_sessions(
    conn: asyncpg.Connection,
    merchant_id: uuid.UUID,
    *,
    status: str | None,
    mode: str | None,
    limit: int,
    starting_after: uuid.UUID | None,
) -> list[Record]:
    """Newest first; the cursor is the last id of the previous page (keyset on created_at, id)."""
    return await conn.fetch(
        """SELECT s.*, '{}'::session_history[] AS history, '{}'::session_alerts[] AS alerts
             FROM sessions s
            WHERE s.merchant_id = $1
              AND ($2::text IS NULL OR s.status = $2)
              AND ($3::text IS NULL OR s.mode = $3)
              AND ($4::uuid IS NULL OR (s.created_at, s.id) < (
                     SELECT c.created_at, c.id FROM sessions c WHERE c.id = $4 AND c.merchant_id = $1))
            ORDER BY s.created_at DESC, s.id DESC
            LIMIT $5""",
        merchant_id,
        status,
        mode,
        starting_after,
        limit,
    )


async def cursor_exists(
    conn: asyncpg.Connection, table: str, merchant_id: uuid.UUID, item_id: uuid.UUID
) -> bool:
    assert table in ("sessions", "quarantine")
    return bool(
        await conn.fetchval(f"SELECT 1 FROM {table} WHERE id = $1 AND merchant_id = $2", item_id, merchant_id)
    )


async def list_active_deposits(conn: asyncpg.Connection, chain_id: int, closed_within_s: int) -> list[Record]:
    return await conn.fetch(
        """SELECT * FROM sessions
            WHERE provider = 'web3' AND chain_id = $1
              AND (status IN ('created', 'pending')
                   OR ($2 > 0 AND closed_at > now() - make_interval(secs => $2)))
            ORDER BY created_at""",
        chain_id,
        float(closed_within_s),
    )


async def lock_session(conn: asyncpg.Connection, session_id: uuid.UUID) -> Record | None:
    return await conn.fetchrow("SELECT * FROM sessions WHERE id = $1 FOR UPDATE", session_id)


async def set_provider_checkout(
    conn: asyncpg.Connection, session_id: uuid.UUID, provider_session_id: str, url: str
) -> None:
    await conn.execute(
        "UPDATE sessions SET provider_session_id = $2, provider_checkout_url = $3 WHERE id = $1",
        session_id,
        provider_session_id,
        url,
    )


async def insert_alert(
    conn: asyncpg.Connection, session_id: uuid.UUID, code: str, detail: str, reference: str
) -> bool:
    inserted = await conn.fetchval(
        """INSERT INTO session_alerts (session_id, code, reference, detail) VALUES ($1, $2, $3, $4)
           ON CONFLICT DO NOTHING RETURNING true""",
        session_id,
        code,
        reference,
        detail,
    )
    return bool(inserted)


# ---------------------------------------------------------------------------------------------- moves
_MOVE_SQL = """
WITH locked AS (
    -- The row lock and the check in one: the decision was made on (status, paid_reference) as read; if a
    -- concurrent move changed them, this selects nothing and nothing below is written (the caller decides
    -- again). EvalPlanQual re-checks the condition on the newest row version after waiting for the lock.
    SELECT id FROM sessions
     WHERE id = $1::uuid AND status = $25::text AND paid_reference IS NOT DISTINCT FROM $26::text
       FOR UPDATE
), moved AS (
    UPDATE sessions
       SET status = $2::text,
           paid_at = CASE WHEN $2::text = 'paid' THEN now() ELSE paid_at END,
           closed_at = CASE WHEN $2::text IN ('paid', 'failed', 'expired') THEN now() ELSE closed_at END,
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
    INSERT INTO outbox (session_id, kind) SELECT $1::uuid, 'fulfil' WHERE $2::text = 'paid'
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
                            surplus_minor, surplus_exponent)
    SELECT $18::uuid, $10::uuid, $1::uuid, $19::text, $8::text, $14::text, $15::text, $17::text,
           $20::numeric, $21::text, $22::smallint, $23::numeric, $24::smallint
     WHERE $18::uuid IS NOT NULL AND EXISTS (SELECT 1 FROM locked)
)
SELECT EXISTS (SELECT 1 FROM locked) AS applied, now() AS at
"""


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
    quarantine_id: uuid.UUID | None = None
    quarantine_reason: str | None = None
    quarantine_amount: Money | None = None
    surplus: Money | None = None
    # The paid_reference the decision saw (with from_status, the state the write is conditional on).
    expected_paid_reference: str | None = None


def move_values(move: Move) -> tuple[object, ...]:
    """A move's values in the order both move statements take them: $1..$24 here, and the columns of the
    group form in `move_groups`."""
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


async def write_move(conn: asyncpg.Connection, move: Move) -> Record:
    """One round trip, one implicit transaction. Returns (applied, at): applied is False when the session
    is no longer in the state the decision saw. Raises asyncpg.UniqueViolationError when the provider event
    was recorded meanwhile."""
    return await conn.fetchrow(_MOVE_SQL, *move_values(move), move.from_status, move.expected_paid_reference)


# ---------------------------------------------------------------------------------------------- events
async def read_for_event(
    conn: asyncpg.Connection, session_id: uuid.UUID, provider: str, event_id: str
) -> Record | None:
    """Read the session and whether this event was seen, without a lock: `write_move` re-checks the state
    under the row lock. A delivery of the same event that commits after this read is caught by the
    processed-events primary key at write time, and the caller then answers `duplicate`."""
    return await conn.fetchrow(
        """SELECT s.*,
                  (SELECT p.outcome FROM processed_events p
                    WHERE p.provider = $2 AND p.provider_event_id = $3) AS prior_outcome,
                  (SELECT p.quarantine_id FROM processed_events p
                    WHERE p.provider = $2 AND p.provider_event_id = $3) AS prior_quarantine_id
             FROM sessions s WHERE s.id = $1""",
        session_id,
        provider,
        event_id,
    )


async def processed_event(conn: asyncpg.Connection, provider: str, event_id: str) -> Record | None:
    return await conn.fetchrow(
        "SELECT * FROM processed_events WHERE provider = $1 AND provider_event_id = $2", provider, event_id
    )


async def find_session_by_reference(
    conn: asyncpg.Connection, provider: str, reference: str
) -> uuid.UUID | None:
    """The session a refund or dispute is about: the one that payment paid, else any that recorded it."""
    return await conn.fetchval(
        """SELECT id FROM (
               SELECT id, 0 AS rank FROM sessions WHERE provider = $1 AND paid_reference = $2
               UNION ALL
               SELECT session_id, 1 FROM processed_events WHERE provider = $1 AND provider_reference = $2
           ) found ORDER BY rank LIMIT 1""",
        provider,
        reference,
    )


# ---------------------------------------------------------------------------------------------- quarantine
async def list_quarantine(
    conn: asyncpg.Connection, merchant_id: uuid.UUID, status: str | None, limit: int, after: uuid.UUID | None
) -> list[Record]:
    return await conn.fetch(
        """SELECT q.*, s.amount_minor AS expected_minor, s.currency AS expected_currency,
                  s.exponent AS expected_exponent
             FROM quarantine q JOIN sessions s ON s.id = q.session_id
            WHERE q.merchant_id = $1 AND ($2::text IS NULL OR q.status = $2)
              AND ($3::uuid IS NULL OR (q.created_at, q.id) < (
                     SELECT c.created_at, c.id FROM quarantine c WHERE c.id = $3 AND c.merchant_id = $1))
            ORDER BY q.created_at DESC, q.id DESC LIMIT $4""",
        merchant_id,
        status,
        after,
        limit,
    )


async def get_quarantine(
    conn: asyncpg.Connection, quarantine_id: uuid.UUID, *, lock: bool = False
) -> Record | None:
    return await conn.fetchrow(
        """SELECT q.*, s.amount_minor AS expected_minor, s.currency AS expected_currency,
                  s.exponent AS expected_exponent
             FROM quarantine q JOIN sessions s ON s.id = q.session_id WHERE q.id = $1"""
        + (" FOR UPDATE OF q" if lock else ""),
        quarantine_id,
    )


async def resolve_quarantine(
    conn: asyncpg.Connection, quarantine_id: uuid.UUID, status: str, note: str
) -> None:
    await conn.execute(
        "UPDATE quarantine SET status = $2, resolution_note = $3, resolved_at = now() WHERE id = $1",
        quarantine_id,
        status,
        note,
    )


# ---------------------------------------------------------------------------------------------- audit
async def write_audit(
    conn: asyncpg.Connection,
    session_id: uuid.UUID | None,
    merchant_id: uuid.UUID | None,
    actor: str,
    action: str,
    detail: dict[str, Any],
) -> None:
    await conn.execute(
        """INSERT INTO audit_log (session_id, merchant_id, actor, action, detail)
           VALUES ($1, $2, $3, $4, $5::jsonb)""",
        session_id,
        merchant_id,
        actor,
        action,
        json.dumps(detail),
    )


# ---------------------------------------------------------------------------------------------- sweeper
SWEEPER_LOCK_KEY = 7243101


async def expire_due(conn: asyncpg.Connection, batch: int) -> list[Record]:
    """Expire up to `batch` due `created` sessions in one statement (history and audit included).

    SKIP LOCKED: a session an event is moving right now is left for the next pass, never waited on.
    """
    return await conn.fetch(
        """WITH due AS (
               SELECT id FROM sessions WHERE status = 'created' AND expires_at <= now()
                ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED
           ), moved AS (
               UPDATE sessions s SET status = 'expired', closed_at = now()
                 FROM due WHERE s.id = due.id
             RETURNING s.id, s.merchant_id
           ), history AS (
               INSERT INTO session_history (session_id, from_status, to_status, source_event_id, note)
               SELECT id, 'created', 'expired', 'sweeper:expire', 'expired' FROM moved
           ), audited AS (
               INSERT INTO audit_log (session_id, merchant_id, actor, action, detail)
               SELECT id, merchant_id, 'sweeper', 'session_expired', '{"from": "created"}'::jsonb FROM moved
           )
           SELECT id, merchant_id FROM moved""",
        batch,
    )


# ---------------------------------------------------------------------------------------------- outbox
@dataclass(frozen=True, slots=True)
class ClaimedRow:
    id: int
    kind: str
    attempts: int
    # The session's columns as the claim read them (plus the claim's own `outbox_*` columns).
    session: Record

    @property
    def session_id(self) -> uuid.UUID:
        return self.session["id"]


async def claim_outbox(conn: asyncpg.Connection, limit: int, lease_s: float) -> list[ClaimedRow]:
    """Lease up to `limit` due rows (autocommit): SKIP LOCKED lets replicas share the queue, and the lease
    (locked_until) keeps a row from being taken twice while its calls run with no transaction open. Each row
    comes with its session, read in the same statement, so a worker starts without another round trip."""
    rows = await conn.fetch(
        """WITH ready AS (
               SELECT id FROM outbox
                WHERE status = 'pending' AND next_attempt_at <= now()
                  AND (locked_until IS NULL OR locked_until < now())
                ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
           )
           UPDATE outbox o SET locked_until = now() + make_interval(secs => $2), attempts = o.attempts + 1
             FROM ready, sessions s
            WHERE o.id = ready.id AND s.id = o.session_id
         RETURNING o.id AS outbox_id, o.kind AS outbox_kind, o.attempts AS outbox_attempts, s.*""",
        limit,
        lease_s,
    )
    return [ClaimedRow(row["outbox_id"], row["outbox_kind"], row["outbox_attempts"], row) for row in rows]


async def record_fulfilment(
    conn: asyncpg.Connection,
    outbox_id: int,
    session_id: uuid.UUID,
    merchant_id: uuid.UUID,
    *,
    invoice_id: str | None,
    invoice_number: str | None,
    api_key_id: str | None,
    access_token_id: str | None,
    steps: Sequence[tuple[str, dict[str, Any]]],
    complete: bool,
    send_mail: bool,
) -> bool:
    """One statement (one round trip, one transaction) for what one fulfilment attempt learned: store the
    ids it got on the session, audit each step, and, when `complete`, mark the row done and the session
    fulfilled and queue the mail. Returns whether it completed the row: False when not `complete`, or when
    another worker already completed it (its lease had run out), in which case nothing is written twice.

    The session is updated by ONE UPDATE (a row may change only once per statement), and the audit rows
    are ONE INSERT in step order, with `fulfilment_done` last and only if this statement completed the row.
    """
    actions = [action for action, _ in steps]
    details = [json.dumps(detail) for _, detail in steps]
    actions.append("fulfilment_done")
    details.append("{}")
    done = await conn.fetchval(
        """WITH done AS (
               UPDATE outbox SET status = 'done', done_at = now(), locked_until = NULL, last_error = NULL
                WHERE id = $1 AND status = 'pending' AND $8::bool RETURNING id
           ), updated AS (
               UPDATE sessions
                  SET invoice_id = COALESCE(invoice_id, $4),
                      invoice_number = COALESCE(invoice_number, $5),
                      api_key_id = COALESCE(api_key_id, $6),
                      access_token_id = COALESCE(access_token_id, $7),
                      fulfilment_status = CASE WHEN EXISTS (SELECT 1 FROM done) THEN 'done'
                                               ELSE fulfilment_status END
                -- Touch the row only with something to store: a step ($10 holds the steps and then
                -- fulfilment_done) or the completion.
                WHERE id = $2 AND (cardinality($10::text[]) > 1 OR EXISTS (SELECT 1 FROM done))
           ), mail AS (
               INSERT INTO outbox (session_id, kind) SELECT $2, 'email' WHERE $9 AND EXISTS (SELECT 1 FROM done)
               ON CONFLICT (session_id, kind) DO NOTHING
           ), audited AS (
               INSERT INTO audit_log (session_id, merchant_id, actor, action, detail)
               SELECT $2, $3, 'dispatcher', a.action, a.detail::jsonb
                 FROM unnest($10::text[], $11::text[]) WITH ORDINALITY AS a(action, detail, ord)
                WHERE a.action <> 'fulfilment_done' OR EXISTS (SELECT 1 FROM done)
                ORDER BY a.ord
           )
           SELECT EXISTS (SELECT 1 FROM done)""",
        outbox_id,
        session_id,
        merchant_id,
        invoice_id,
        invoice_number,
        api_key_id,
        access_token_id,
        complete,
        send_mail,
        actions,
        details,
    )
    return bool(done)


async def finish_outbox(
    conn: asyncpg.Connection, outbox_id: int, status: str, note: str | None = None
) -> None:
    await conn.execute(
        """UPDATE outbox SET status = $2, done_at = now(), locked_until = NULL, last_error = $3
            WHERE id = $1 AND status = 'pending'""",
        outbox_id,
        status,
        note,
    )


async def retry_outbox(conn: asyncpg.Connection, outbox_id: int, delay_s: float, error: str) -> None:
    await conn.execute(
        """UPDATE outbox SET locked_until = NULL, next_attempt_at = now() + make_interval(secs => $2),
                             last_error = $3
            WHERE id = $1 AND status = 'pending'""",
        outbox_id,
        delay_s,
        error[:500],
    )


async def release_leases(conn: asyncpg.Connection, outbox_ids: Sequence[int]) -> None:
    """On a clean stop, hand in-flight rows back at once instead of waiting for their lease to run out."""
    await conn.execute(
        "UPDATE outbox SET locked_until = NULL WHERE id = ANY($1::bigint[]) AND status = 'pending'",
        list(outbox_ids),
    )


async def next_due_in(conn: asyncpg.Connection) -> float | None:
    """Seconds until the earliest pending row is due (0 when one is due now), None when the queue is empty."""
    # No clamping in SQL: GREATEST(0, NULL) is 0, which would report an empty queue as "due now" and make an
    # idle dispatcher poll a hundred times a second.
    value = await conn.fetchval(
        """SELECT EXTRACT(EPOCH FROM
                      MIN(GREATEST(next_attempt_at, COALESCE(locked_until, next_attempt_at))) - now())::float8
             FROM outbox WHERE status = 'pending'"""
    )
    return None if value is None else max(0.0, float(value))
