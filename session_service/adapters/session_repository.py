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
from typing import Any, TypeAlias

import asyncpg

from paygate_runtime.money import Money
from session_service.adapters import state_moves
from session_service.domain.payment_settings import AcceptedToken, OnchainSettings, PaymentSettings
from session_service.domain.session_filters import SessionListFilter
from session_service.domain.states import SessionStatus

Record: TypeAlias = asyncpg.Record  # asyncpg is untyped: Any to mypy

_SESSION_WITH_CHILDREN = """
SELECT s.*,
       ARRAY(SELECT h FROM session_history h WHERE h.session_id = s.id ORDER BY h.id) AS history,
       ARRAY(SELECT a FROM session_alerts a WHERE a.session_id = s.id ORDER BY a.at, a.code) AS alerts,
       ARRAY(SELECT r FROM refunds r WHERE r.session_id = s.id ORDER BY r.created_at, r.id) AS refunds
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
    scopes: list[str] | None = None
    customer: dict[str, Any] | None = None  # session_service.domain.customer.Customer.to_json()
    actor: str = "merchant"  # the `session_created` audit row's actor


async def insert_session(conn: asyncpg.Connection, new: NewSession) -> Record | None:
    """Insert the session and its `session_created` audit entry in one statement, so one commit holds both
    (a failure between two statements left a session the audit trail never saw); None when the merchant's
    idempotency key is already taken (the caller reads that one, and nothing is audited)."""
    row = await conn.fetchrow(
        """WITH s AS (
               INSERT INTO sessions (id, merchant_id, mode, status, amount_minor, currency, exponent, provider,
                                     customer_email, metadata, description, expires_at, idempotency_key,
                                     request_fingerprint, chain_id, deposit_address, token_address,
                                     min_confirmations, derivation_index, scopes, customer)
               VALUES ($1, $2, $3, 'created', $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14, $15,
                       $16, $17, $18, coalesce($19::text[], '{*}'), $20::jsonb)
               ON CONFLICT (merchant_id, mode, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
               RETURNING *
           ), audited AS (
               INSERT INTO audit_log (session_id, merchant_id, actor, action, detail)
               SELECT id, merchant_id, $22::text, 'session_created', $21::jsonb FROM s
           )
           SELECT s.*, '{}'::session_history[] AS history, '{}'::session_alerts[] AS alerts FROM s""",
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
        new.scopes,
        json.dumps(new.customer) if new.customer is not None else None,
        json.dumps({"provider": new.provider}),
        new.actor,
    )
    return row


async def find_by_idempotency_key(
    conn: asyncpg.Connection, merchant_id: uuid.UUID, mode: str, key: str
) -> Record | None:
    """An Idempotency-Key belongs to (merchant, mode): the same key in the other mode is another request."""
    return await conn.fetchrow(
        _SESSION_WITH_CHILDREN + " WHERE s.merchant_id = $1 AND s.mode = $2 AND s.idempotency_key = $3",
        merchant_id,
        mode,
        key,
    )


async def get_session(conn: asyncpg.Connection, session_id: uuid.UUID) -> Record | None:
    """Unscoped: for internal callers only (events, the sweeper, the chain watcher). A merchant's request
    loads through `load_for_caller`."""
    return await conn.fetchrow(_SESSION_WITH_CHILDREN + " WHERE s.id = $1", session_id)


async def load_for_caller(
    conn: asyncpg.Connection,
    merchant_id: uuid.UUID,
    mode: str | None,
    session_id: uuid.UUID,
    *,
    lock: bool = False,
) -> Record | None:
    """THE one place a caller's session is loaded: it is found only in the caller's merchant AND mode, so a
    session of another merchant or of the other mode is simply not there (NOT_FOUND, alike). `mode` None is
    for internal callers that act for no key (the chain watcher); every merchant request sets it. With
    `lock`, the plain row under FOR UPDATE (inside the caller's transaction)."""
    if lock:
        return await conn.fetchrow(
            """SELECT * FROM sessions
                WHERE id = $1 AND merchant_id = $2 AND ($3::text IS NULL OR mode = $3) FOR UPDATE""",
            session_id,
            merchant_id,
            mode,
        )
    return await conn.fetchrow(
        _SESSION_WITH_CHILDREN
        + " WHERE s.id = $1 AND s.merchant_id = $2 AND ($3::text IS NULL OR s.mode = $3)",
        session_id,
        merchant_id,
        mode,
    )


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
    filters: SessionListFilter | None = None,
) -> list[Record]:
    """Newest first; the cursor is the last id of the previous page (keyset on created_at, id). `filters`
    (already checked) narrow the list in the same statement, inside the (merchant, mode) scope; the email
    compares lower-cased, which the sessions_merchant_email index serves."""
    f = filters or SessionListFilter()
    return await conn.fetch(
        """SELECT s.*, '{}'::session_history[] AS history, '{}'::session_alerts[] AS alerts
             FROM sessions s
            WHERE s.merchant_id = $1
              AND ($2::text IS NULL OR s.status = $2)
              AND ($3::text IS NULL OR s.mode = $3)
              AND ($4::uuid IS NULL OR (s.created_at, s.id) < (
                     SELECT c.created_at, c.id FROM sessions c WHERE c.id = $4 AND c.merchant_id = $1))
              AND ($6::text IS NULL OR s.provider = $6)
              AND ($7::text IS NULL OR lower(s.customer_email) = $7)
              AND ($8::timestamptz IS NULL OR s.created_at >= $8)
              AND ($9::timestamptz IS NULL OR s.created_at < $9)
              AND ($10::text IS NULL OR s.amount_minor >= $10::text::numeric)
              AND ($11::text IS NULL OR s.amount_minor <= $11::text::numeric)
              AND ($12::text IS NULL OR upper(s.currency) = $12)
            ORDER BY s.created_at DESC, s.id DESC
            LIMIT $5""",
        merchant_id,
        status,
        mode,
        starting_after,
        limit,
        f.provider or None,
        f.customer_email or None,
        f.created_from,
        f.created_to,
        f.amount_min_minor or None,
        f.amount_max_minor or None,
        f.currency or None,
    )


async def cursor_exists(
    conn: asyncpg.Connection, table: str, merchant_id: uuid.UUID, mode: str | None, item_id: uuid.UUID
) -> bool:
    assert table in ("sessions", "quarantine")
    return bool(
        await conn.fetchval(
            f"SELECT 1 FROM {table} WHERE id = $1 AND merchant_id = $2 AND ($3::text IS NULL OR mode = $3)",
            item_id,
            merchant_id,
            mode,
        )
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
# A move is written by the one state-move writer only (adapters/state_moves.py), which checks it against the
# state machine first; these names stay here for the callers that import them from the repository.
Move = state_moves.Move
move_values = state_moves.move_values
binding_values = state_moves.binding_values
write_move = state_moves.write_move


# ---------------------------------------------------------------------------------------------- events
# The payments whose money a session holds in quarantine, as (provider, provider_reference, entry id) records:
# what `decide` needs to answer `already_quarantined` (read through quarantine_one_per_payment).
QUARANTINED_PAYMENTS_SQL = """ARRAY(SELECT ROW(q.provider, q.provider_reference, q.id) FROM quarantine q
                   WHERE q.session_id = s.id AND q.holds_payment) AS quarantined_payments"""
# The unique index that keeps one entry per provider payment (migration 0160).
ONE_ENTRY_PER_PAYMENT = "quarantine_one_per_payment"


async def read_for_event(
    conn: asyncpg.Connection, session_id: uuid.UUID, provider: str, event_id: str
) -> Record | None:
    """Read the session, the payments it holds in quarantine and whether this event was seen, without a lock:
    `write_move` re-checks the state under the row lock. A delivery of the same event that commits after this
    read is caught by the processed-events primary key at write time, and the caller then answers
    `duplicate`; another event of the same payment that quarantines it meanwhile, by the one-entry-per-payment
    index (`is_payment_quarantined_race`), and the caller decides again."""
    return await conn.fetchrow(
        f"""SELECT s.*,
                  (SELECT p.outcome FROM processed_events p
                    WHERE p.provider = $2 AND p.provider_event_id = $3) AS prior_outcome,
                  (SELECT p.quarantine_id FROM processed_events p
                    WHERE p.provider = $2 AND p.provider_event_id = $3) AS prior_quarantine_id,
                  {QUARANTINED_PAYMENTS_SQL}
             FROM sessions s WHERE s.id = $1""",
        session_id,
        provider,
        event_id,
    )


def is_payment_quarantined_race(error: asyncpg.UniqueViolationError) -> bool:
    """True when a write failed because another event of the same payment opened its entry first."""
    return getattr(error, "constraint_name", None) == ONE_ENTRY_PER_PAYMENT


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
    conn: asyncpg.Connection,
    merchant_id: uuid.UUID,
    mode: str | None,
    status: str | None,
    limit: int,
    after: uuid.UUID | None,
    *,
    session_id: uuid.UUID | None = None,
) -> list[Record]:
    # One session's entries are read by their own index (migration 0230), in a statement of their own: a
    # "$6 IS NULL OR q.session_id = $6" filter would leave a cached generic plan on the merchant's index.
    by_session = "AND q.session_id = $6" if session_id is not None else ""
    return await conn.fetch(
        f"""SELECT q.*, s.amount_minor AS expected_minor, s.currency AS expected_currency,
                  s.exponent AS expected_exponent
             FROM quarantine q JOIN sessions s ON s.id = q.session_id
            WHERE q.merchant_id = $1 AND ($2::text IS NULL OR q.status = $2)
              AND ($5::text IS NULL OR q.mode = $5) {by_session}
              AND ($3::uuid IS NULL OR (q.created_at, q.id) < (
                     SELECT c.created_at, c.id FROM quarantine c WHERE c.id = $3 AND c.merchant_id = $1))
            ORDER BY q.created_at DESC, q.id DESC LIMIT $4""",
        merchant_id,
        status,
        after,
        limit,
        mode,
        *((session_id,) if session_id is not None else ()),
    )


async def load_quarantine_for_caller(
    conn: asyncpg.Connection,
    merchant_id: uuid.UUID,
    mode: str | None,
    quarantine_id: uuid.UUID,
    *,
    lock: bool = False,
) -> Record | None:
    """THE one place a caller's quarantine entry is loaded: only in the caller's merchant and mode."""
    return await conn.fetchrow(
        """SELECT q.*, s.amount_minor AS expected_minor, s.currency AS expected_currency,
                  s.exponent AS expected_exponent
             FROM quarantine q JOIN sessions s ON s.id = q.session_id
            WHERE q.id = $1 AND q.merchant_id = $2 AND ($3::text IS NULL OR q.mode = $3)"""
        + (" FOR UPDATE OF q" if lock else ""),
        quarantine_id,
        merchant_id,
        mode,
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


async def expire_due(conn: asyncpg.Connection, batch: int) -> list[uuid.UUID]:
    """Expire up to `batch` due `created` sessions (history and audit included), through the one writer.

    SKIP LOCKED: a session an event is moving right now is left for the next pass, never waited on.
    """
    return await state_moves.expire_due(
        conn,
        from_status=SessionStatus.CREATED,
        batch=batch,
        source_event_id="sweeper:expire",
        note="expired",
        detail={"from": "created"},
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
        # claim_outbox_rows (migration 0140) leases the oldest ready rows, read in order from the ready index
        # whatever the statistics say: planned inline, a stale estimate scanned and sorted every ready row.
        """SELECT c.outbox_id, c.outbox_kind, c.outbox_attempts, c.outbox_traceparent, (c.session).*
             FROM claim_outbox_rows($1, $2) AS c""",
        limit,
        lease_s,
    )
    return [ClaimedRow(row["outbox_id"], row["outbox_kind"], row["outbox_attempts"], row) for row in rows]


@dataclass(frozen=True, slots=True)
class FulfilmentRecord:
    """What one fulfilment attempt learned for one `fulfil` row: the ids it got (None: not got now, or
    already stored), its steps to audit in order, whether it is `complete` (then the row is marked done, the
    session fulfilled and, with `send_mail`, the mail queued), the `invoice.issued` event's object, and the
    trace the mail continues."""

    outbox_id: int
    session_id: uuid.UUID
    merchant_id: uuid.UUID
    invoice_id: str | None
    invoice_number: str | None
    api_key_id: str | None
    access_token_id: str | None
    steps: Sequence[tuple[str, dict[str, Any]]]
    complete: bool
    send_mail: bool
    invoice_object: str | None = None
    traceparent: str | None = None


async def record_fulfilments(conn: asyncpg.Connection, records: Sequence[FulfilmentRecord]) -> set[int]:
    """What the fulfilment attempts of a dispatcher pass learned, in ONE statement (one round trip, one
    commit: issue 16, where a statement per row was the largest cost left of a batched pass): store the ids
    on each session, audit each step, and for each `complete` row mark it done and the session fulfilled
    and queue the mail. Returns the outbox ids it completed: not a row that is not `complete`, nor one
    another worker already completed (its lease had run out), for which nothing is written twice.

    Each session is updated by ONE UPDATE (a row may change only once per statement), and the audit rows
    are ONE INSERT, in step order per row, with `fulfilment_done` last and only where this statement
    completed the row. The statement is all or nothing: when it fails, nothing of it was written, and the
    caller records the rows one at a time, so that a row that cannot be recorded goes back alone."""
    if not records:
        return set()
    step_ids: list[int] = []
    step_actions: list[str] = []
    step_details: list[str] = []
    for record in records:
        for action, detail in record.steps:
            step_ids.append(record.outbox_id)
            step_actions.append(action)
            step_details.append(json.dumps(detail))
        if record.complete:
            step_ids.append(record.outbox_id)
            step_actions.append("fulfilment_done")
            step_details.append("{}")
    row = await conn.fetchrow(
        """WITH locked AS MATERIALIZED (
               -- The sessions' row locks first, as a move (state_moves) takes them: the audit rows below
               -- take the merchant's hash-chain head, and PostgreSQL runs the CTEs the main query does not
               -- read after it, last one first, so without this the chain head came before the rows and a
               -- group of events holding a row and waiting for the head deadlocked with the pass.
               SELECT id FROM sessions WHERE id = ANY($2::uuid[]) ORDER BY id FOR UPDATE
           ), r AS (
               SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                                    $7::text[], $8::bool[], $9::bool[], $10::text[], $11::text[])
                   AS r(outbox_id, session_id, merchant_id, invoice_id, invoice_number, api_key_id,
                        access_token_id, complete, send_mail, traceparent, invoice_object)
           ), step AS (
               SELECT * FROM unnest($12::bigint[], $13::text[], $14::text[]) WITH ORDINALITY
                   AS step(outbox_id, action, detail, ord)
           ), done AS (
               UPDATE outbox o SET status = 'done', done_at = now(), locked_until = NULL, last_error = NULL
                 FROM r
                WHERE o.id = r.outbox_id AND o.status = 'pending' AND r.complete
               RETURNING o.id
           ), updated AS (
               UPDATE sessions s
                  SET invoice_id = COALESCE(s.invoice_id, r.invoice_id),
                      invoice_number = COALESCE(s.invoice_number, r.invoice_number),
                      api_key_id = COALESCE(s.api_key_id, r.api_key_id),
                      access_token_id = COALESCE(s.access_token_id, r.access_token_id),
                      fulfilment_status = CASE WHEN r.outbox_id IN (SELECT id FROM done) THEN 'done'
                                               ELSE s.fulfilment_status END
                 FROM r
                -- Touch a row only with something to store: a step or the completion. `s.id = ANY(...)`
                -- names the rows by primary key whatever the join: with statistics older than the table
                -- (every burst until autovacuum's next analyze) the join alone was planned as a hash join
                -- that read sessions whole (test_fulfilment_records_scale.py).
                WHERE s.id = r.session_id AND s.id = ANY($2::uuid[])
                  AND (EXISTS (SELECT 1 FROM step
                                WHERE step.outbox_id = r.outbox_id AND step.action <> 'fulfilment_done')
                       OR r.outbox_id IN (SELECT id FROM done))
           ), invoice_object AS (
               -- The `invoice.issued` event's object, for the trigger the UPDATE above fires (migration
               -- 0102); only where this statement records the session's first invoice id (the snapshot
               -- every part of the statement reads is the one from before the UPDATE).
               INSERT INTO invoice_event_objects (invoice_id, object)
               SELECT r.invoice_id, r.invoice_object::jsonb
                 FROM r JOIN sessions s ON s.id = r.session_id AND s.id = ANY($2::uuid[])
                WHERE r.invoice_id IS NOT NULL AND r.invoice_object IS NOT NULL AND s.invoice_id IS NULL
               ON CONFLICT (invoice_id) DO UPDATE SET object = EXCLUDED.object
           ), mail AS (
               INSERT INTO outbox (session_id, kind, traceparent)
               SELECT r.session_id, 'email', r.traceparent
                 FROM r WHERE r.send_mail AND r.outbox_id IN (SELECT id FROM done)
               ON CONFLICT (session_id, kind) DO NOTHING
           ), audited AS (
               -- In step order within each row, `fulfilment_done` last and only where this statement
               -- completed the row.
               INSERT INTO audit_log (session_id, merchant_id, actor, action, detail)
               SELECT r.session_id, r.merchant_id, 'dispatcher', step.action, step.detail::jsonb
                 FROM step JOIN r ON r.outbox_id = step.outbox_id
                WHERE step.action <> 'fulfilment_done' OR step.outbox_id IN (SELECT id FROM done)
                ORDER BY step.ord
           )
           -- `locked` is read before `done`, whatever `done` holds, so the rows are locked in any case.
           SELECT (SELECT count(*) FROM locked) AS locked, ARRAY(SELECT id FROM done) AS done""",
        [r.outbox_id for r in records],
        [r.session_id for r in records],
        [r.merchant_id for r in records],
        [r.invoice_id for r in records],
        [r.invoice_number for r in records],
        [r.api_key_id for r in records],
        [r.access_token_id for r in records],
        [r.complete for r in records],
        [r.send_mail for r in records],
        [r.traceparent for r in records],
        [r.invoice_object for r in records],
        step_ids,
        step_actions,
        step_details,
    )
    assert row is not None
    return set(row["done"])


@dataclass(frozen=True, slots=True)
class MailFinish:
    """A customer mail sent (`done`, audited `email_sent`) or not to be sent (`skipped`, `email_skipped`,
    the reason in the detail and in last_error)."""

    outbox_id: int
    session_id: uuid.UUID
    merchant_id: uuid.UUID
    status: str
    action: str
    detail: dict[str, Any]


async def finish_mails(conn: asyncpg.Connection, finished: Sequence[MailFinish]) -> None:
    """Mark the mail rows of a dispatcher pass finished and audit each, in ONE statement (one round trip,
    one commit; issue 16). A row no longer pending (another worker's lease) is not changed again."""
    await conn.execute(
        """WITH f AS (
               SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[])
                   WITH ORDINALITY AS f(outbox_id, session_id, merchant_id, status, action, detail, ord)
           ), finished AS (
               UPDATE outbox o
                  SET status = f.status, done_at = now(), locked_until = NULL,
                      last_error = CASE WHEN f.status = 'skipped' THEN f.detail END
                 FROM f
                WHERE o.id = f.outbox_id AND o.status = 'pending'
           )
           INSERT INTO audit_log (session_id, merchant_id, actor, action, detail)
           SELECT f.session_id, f.merchant_id, 'dispatcher', f.action, f.detail::jsonb FROM f ORDER BY f.ord""",
        [f.outbox_id for f in finished],
        [f.session_id for f in finished],
        [f.merchant_id for f in finished],
        [f.status for f in finished],
        [f.action for f in finished],
        [json.dumps(f.detail) for f in finished],
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
