"""SQL of refunds and disputes in the session schema (issue 19). Functions take a connection: the use case
owns the transaction. A session's status never changes here: the move paid -> refunded is written by the one
state-move writer (`state_moves`) in the same transaction."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any, TypeAlias

import asyncpg

from paygate_runtime.api_objects import refund_json
from paygate_runtime.money import Money
from session_service.adapters.session_messages import refund_message
from session_service.domain.merchant_events import refund_outcome_event
from session_service.domain.refunds import (
    DisputeKind,
    DisputeStatus,
    KeyAccess,
    Ledger,
    Refund,
    RefundOrigin,
    RefundStatus,
)
from session_service.domain.states import SessionStatus

Record: TypeAlias = asyncpg.Record  # asyncpg is untyped: Any to mypy

_REFUND_COLUMNS = """id, session_id, merchant_id, mode, amount_minor, credited_minor, currency, exponent, status,
    origin, provider, provider_refund_id, reason, idempotency_key, request_fingerprint, credit_note_id,
    credit_note_number, created_at, updated_at, failure_reason, replaced_by"""


async def session_refunds(conn: asyncpg.Connection, session_id: uuid.UUID) -> list[Record]:
    return await conn.fetch(
        f"SELECT {_REFUND_COLUMNS} FROM refunds WHERE session_id = $1 ORDER BY created_at, id", session_id
    )


def ledger_of(session: Record, refunds: Sequence[Record]) -> Ledger:
    return Ledger(
        status=SessionStatus(session["status"]),
        amount_minor=int(session["amount_minor"]),
        refunds=tuple(refund_of(r) for r in refunds),
        provider_total_minor=(
            int(session["provider_refunded_minor"])
            if session["provider_refunded_minor"] is not None
            else None
        ),
        provider_total_as_of=session["provider_refunded_as_of"],
        dispute_status=DisputeStatus(session["dispute_status"]) if session["dispute_status"] else None,
        dispute_id=session["dispute_id"],
        dispute_kind=DisputeKind(session["dispute_kind"]) if session["dispute_kind"] else None,
        currency=session["currency"],
        exponent=int(session["exponent"]),
    )


def refund_of(row: Record) -> Refund:
    return Refund(
        id=row["id"],
        amount_minor=int(row["amount_minor"]),
        status=RefundStatus(row["status"]),
        origin=RefundOrigin(row["origin"]),
        credited_minor=int(row["credited_minor"]),
        provider_refund_id=row["provider_refund_id"],
        reason=row["reason"],
        failure_reason=row["failure_reason"],
        replaced_by=row["replaced_by"],
    )


async def find_by_idempotency_key(
    conn: asyncpg.Connection, merchant_id: uuid.UUID, mode: str, key: str
) -> Record | None:
    return await conn.fetchrow(
        f"SELECT {_REFUND_COLUMNS} FROM refunds WHERE merchant_id = $1 AND mode = $2 AND idempotency_key = $3",
        merchant_id,
        mode,
        key,
    )


async def lock_chain_tx(conn: asyncpg.Connection, tx_hash: str) -> None:
    """Serialise, until the transaction ends, every use of one refund tx hash: refunds of two sessions hold
    two different session locks, and without this both could take the same transfer."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('chain-refund:' || $1, 0))", tx_hash)


async def find_chain_refund(conn: asyncpg.Connection, tx_hash: str) -> Record | None:
    """The web3 refund that a refund tx hash already stands for, in any session (one tx is one refund)."""
    return await conn.fetchrow(
        f"""SELECT {_REFUND_COLUMNS} FROM refunds
             WHERE provider = 'web3' AND provider_refund_id = $1
             ORDER BY created_at LIMIT 1""",
        tx_hash,
    )


async def get_refund(
    conn: asyncpg.Connection, merchant_id: uuid.UUID, mode: str | None, refund_id: uuid.UUID
) -> Record | None:
    return await conn.fetchrow(
        f"""SELECT {_REFUND_COLUMNS} FROM refunds
             WHERE id = $1 AND merchant_id = $2 AND ($3::text IS NULL OR mode = $3)""",
        refund_id,
        merchant_id,
        mode,
    )


async def save_refunds(
    conn: asyncpg.Connection,
    session: Record,
    refunds: Sequence[Refund],
    *,
    idempotency_key: str | None = None,
    request_fingerprint: str | None = None,
) -> None:
    """Insert new refunds and update changed ones, in one statement, and emit `refund.succeeded` /
    `refund.failed` / `refund.canceled` (contract §7) for each refund this write settled, in the caller's
    transaction. The idempotency key goes to new rows only (a merchant's request makes exactly one).

    This is the one writer of a refund's status, so an outcome commits exactly with its event. The status a
    refund had is read in the same statement (one snapshot, under the session's row lock that every refund
    write holds): a replayed or late report that writes the status again sends nothing."""
    if not refunds:
        return
    rows = await conn.fetch(
        f"""WITH prior AS (SELECT id, status FROM refunds WHERE id = ANY($7::uuid[])),
                 saved AS (
           INSERT INTO refunds AS r (id, session_id, merchant_id, mode, amount_minor, credited_minor, currency,
                                     exponent, status, origin, provider, provider_refund_id, reason,
                                     idempotency_key, request_fingerprint, failure_reason, replaced_by)
           SELECT u.id, $1, $2, $3, u.amount, u.credited, $4, $5, u.status, u.origin, $6, u.provider_refund_id,
                  u.reason, $13, $14, u.failure_reason, u.replaced_by
             FROM unnest($7::uuid[], $8::numeric[], $9::numeric[], $10::text[], $11::text[], $12::text[],
                         $15::text[], $16::text[], $17::uuid[])
                  AS u(id, amount, credited, status, origin, provider_refund_id, reason, failure_reason,
                       replaced_by)
           ON CONFLICT (id) DO UPDATE
              SET amount_minor = EXCLUDED.amount_minor, credited_minor = EXCLUDED.credited_minor,
                  status = EXCLUDED.status, provider_refund_id = EXCLUDED.provider_refund_id,
                  reason = EXCLUDED.reason, failure_reason = EXCLUDED.failure_reason,
                  replaced_by = EXCLUDED.replaced_by, updated_at = now(),
                  idempotency_key = r.idempotency_key, request_fingerprint = r.request_fingerprint
           RETURNING {_REFUND_COLUMNS})
           SELECT saved.*, prior.status AS status_before FROM saved LEFT JOIN prior USING (id)""",
        session["id"],
        session["merchant_id"],
        session["mode"],
        session["currency"],
        session["exponent"],
        session["provider"],
        [r.id for r in refunds],
        [r.amount_minor for r in refunds],
        [r.credited_minor for r in refunds],
        [r.status.value for r in refunds],
        [r.origin.value for r in refunds],
        [r.provider_refund_id for r in refunds],
        idempotency_key,
        request_fingerprint,
        [r.reason for r in refunds],
        [r.failure_reason for r in refunds],
        [r.replaced_by for r in refunds],
    )
    saved = {row["id"]: row for row in rows}
    for refund in refunds:  # in the decision's order
        row = saved[refund.id]
        event_type = refund_outcome_event(row["status_before"], row["status"])
        if event_type is not None:
            # The refund as the merchant API shows it (GET /v1/sessions/{id}), as it is now committed.
            await emit_event(conn, session, event_type, str(row["id"]), refund_json(refund_message(row)))


async def save_ledger_facts(
    conn: asyncpg.Connection, session_id: uuid.UUID, ledger: Ledger, access: KeyAccess, charge_id: str | None
) -> None:
    """The session's own refund facts: the credited sum, the provider's total, the dispute, the keys' access."""
    await conn.execute(
        """UPDATE sessions
              SET amount_refunded_minor = $2, provider_refunded_minor = $3, dispute_status = $4,
                  dispute_id = $5, key_access = $6, provider_charge_id = COALESCE(provider_charge_id, $7),
                  provider_refunded_as_of = $8, dispute_kind = $9
            WHERE id = $1""",
        session_id,
        ledger.credited_minor,
        ledger.provider_total_minor,
        ledger.dispute_status.value if ledger.dispute_status else None,
        ledger.dispute_id,
        access.value,
        charge_id,
        ledger.provider_total_as_of,
        ledger.dispute_kind.value if ledger.dispute_kind else None,
    )


async def find_session_for_payment(
    conn: asyncpg.Connection, provider: str, reference: str, charge_id: str
) -> uuid.UUID | None:
    """The session a refund or dispute is about: the one its payment (PaymentIntent, transaction) paid, or
    the one whose charge it names; else any that recorded the reference (then it is quarantined there)."""
    return await conn.fetchval(
        """SELECT id FROM (
               SELECT id, 0 AS rank FROM sessions
                WHERE provider = $1 AND $2 <> '' AND paid_reference = $2
               UNION ALL
               SELECT id, 1 FROM sessions WHERE provider = $1 AND $3 <> '' AND provider_charge_id = $3
               UNION ALL
               SELECT session_id, 2 FROM processed_events
                WHERE provider = $1 AND $2 <> '' AND provider_reference = $2
           ) found ORDER BY rank LIMIT 1""",
        provider,
        reference,
        charge_id,
    )


async def emit_event(
    conn: asyncpg.Connection,
    session: Record,
    event_type: str,
    object_id: str,
    snapshot: dict[str, Any],
) -> None:
    """A merchant event (contract §7) in this transaction, through the merchant events' own SQL function."""
    await conn.execute(
        "SELECT emit_merchant_event($1, $2, $3, 'json', $4, $5::jsonb)",
        session["merchant_id"],
        session["mode"],
        event_type,
        object_id,
        json.dumps(snapshot),
    )


# ---------------------------------------------------------------------------------------------- quarantine
async def quarantined_refunds(
    conn: asyncpg.Connection, session_id: uuid.UUID, provider: str, keys: Sequence[str]
) -> dict[str, uuid.UUID]:
    """Provider refund id -> the quarantine entry that already holds it, for those of `keys` that have one."""
    rows = await conn.fetch(
        """SELECT provider_refund_id, quarantine_id FROM quarantined_refunds
            WHERE session_id = $1 AND provider = $2 AND provider_refund_id = ANY($3::text[])""",
        session_id,
        provider,
        list(keys),
    )
    return {r["provider_refund_id"]: r["quarantine_id"] for r in rows}


async def record_quarantined_refunds(
    conn: asyncpg.Connection,
    session_id: uuid.UUID,
    provider: str,
    keys: Sequence[str],
    quarantine_id: uuid.UUID,
) -> None:
    """Remember that these provider refunds are held by `quarantine_id` (a racing insert raises
    UniqueViolationError, and the event is decided again)."""
    await conn.execute(
        """INSERT INTO quarantined_refunds (session_id, provider, provider_refund_id, quarantine_id)
           SELECT $1, $2, k, $4 FROM unnest($3::text[]) AS k""",
        session_id,
        provider,
        list(keys),
        quarantine_id,
    )


async def open_quarantine(
    conn: asyncpg.Connection,
    session: Record,
    *,
    reason: str,
    note: str,
    provider: str,
    provider_event_id: str,
    provider_reference: str | None,
    amount_minor: int,
    mode: str,
    surplus_minor: int | None = None,
    refund_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """A quarantine entry about money of this session, in its currency (its AFTER INSERT trigger emits
    `quarantine.created` in this transaction). `refund_id`: the refund a `refund_failed` entry is about."""
    entry = uuid.uuid4()
    await conn.execute(
        """INSERT INTO quarantine (id, merchant_id, session_id, reason, note, provider, provider_event_id,
                                   provider_reference, amount_minor, amount_currency, amount_exponent, mode,
                                   surplus_minor, surplus_exponent, refund_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                   CASE WHEN $13::numeric IS NULL THEN NULL ELSE $11::smallint END, $14)""",
        entry,
        session["merchant_id"],
        session["id"],
        reason,
        note,
        provider,
        provider_event_id,
        provider_reference,
        amount_minor,
        session["currency"],
        session["exponent"],
        mode,
        surplus_minor,
        refund_id,
    )
    return entry


async def quarantined_surplus(conn: asyncpg.Connection, session_id: uuid.UUID) -> int:
    """The refund surplus this session's quarantine already shows: the sum of its `refund_exceeds_price`
    entries, whatever their status (a dismissed entry still showed its money). Read under the session's lock."""
    total = await conn.fetchval(
        """SELECT COALESCE(sum(amount_minor), 0) FROM quarantine
            WHERE session_id = $1 AND reason = 'refund_exceeds_price'""",
        session_id,
    )
    return int(total)


def refund_surplus_note(
    refund_ids: Sequence[str], surplus: Money, price: Money, shown_before: Money | None
) -> str:
    """The note of a `refund_exceeds_price` entry: what the provider returned beyond the price."""
    named = ", ".join(refund_ids) if refund_ids else "the provider's total"
    note = (
        f"the provider reports more refunded than the price {price.display()} ({named}): the refunds credit "
        f"at most the price, and {surplus.display()} beyond it is in no credit note"
    )
    if shown_before is not None:
        note += f" (earlier entries show {shown_before.display()} of the surplus)"
    return note


def failed_refund_note(refund: str, credit_note_number: str | None) -> str:
    """The note of a `refund_failed` entry: what failed, and the credit note that still credits it."""
    if credit_note_number:
        return (
            f"refund {refund} failed after it succeeded: the money did not go back to the customer, but credit "
            f"note {credit_note_number} was issued for it and stands (refund the customer again, or invoice the "
            "amount)"
        )
    return f"refund {refund} failed after it succeeded: the money did not go back to the customer"


# ---------------------------------------------------------------------------------------------- effects
async def credit_notes_due(conn: asyncpg.Connection, limit: int) -> list[Record]:
    """Succeeded refunds that credit something and have no credit note yet, of sessions whose invoice exists
    (a credit note references it; fulfilment issues it first)."""
    return await conn.fetch(
        f"""SELECT {", ".join("r." + c.strip() for c in _REFUND_COLUMNS.split(","))},
                   s.invoice_id, s.id AS sid
              FROM refunds r JOIN sessions s ON s.id = r.session_id
             WHERE r.status = 'succeeded' AND r.credited_minor > 0 AND r.credit_note_id IS NULL
               AND s.invoice_id IS NOT NULL
             ORDER BY r.created_at LIMIT $1""",
        limit,
    )


async def lock_session_credit_notes(conn: asyncpg.Connection, session_id: uuid.UUID) -> None:
    """One worker at a time settles a session's credit notes (to the end of the caller's transaction): a note's
    amount depends on the notes settled before it (`credit_note_amount`), so two replicas settling two refunds
    of one session at once must not both count the same credit on paper."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('credit-notes:' || $1::text, 0))", str(session_id)
    )


async def credit_note_standing(conn: asyncpg.Connection, refund: Record) -> tuple[int, int]:
    """(covered, on paper) of `refund`'s session, the refund itself left out: what the other succeeded refunds
    credit whose note is settled, and what the notes issued for its refunds credit, failed refunds' included."""
    row = await conn.fetchrow(
        """SELECT COALESCE(SUM(credited_minor) FILTER (WHERE status = 'succeeded' AND credit_note_id IS NOT NULL),
                           0) AS covered,
                  COALESCE(SUM(credit_note_minor), 0) AS on_paper
             FROM refunds WHERE session_id = $1 AND id <> $2""",
        refund["session_id"],
        refund["id"],
    )
    return int(row["covered"]), int(row["on_paper"])


async def credit_note_number(conn: asyncpg.Connection, refund_id: uuid.UUID) -> str | None:
    """The number of the refund's credit note, as committed now (None while none is recorded)."""
    number: str | None = await conn.fetchval(
        "SELECT credit_note_number FROM refunds WHERE id = $1", refund_id
    )
    return number


async def record_credit_note(
    conn: asyncpg.Connection, refund: Record, credit_note_id: str, number: str, credited_minor: int
) -> bool:
    """Store the credit note on its refund, with its audit row; False when another worker stored it first.
    Its `credit_note.issued` is not emitted here: billing writes it with the credit note itself (billing
    migration 0100), as for every credit note, a void's too."""
    async with conn.transaction():
        stored = await conn.fetchrow(
            """UPDATE refunds SET credit_note_id = $2, credit_note_number = $3, credit_note_minor = $4,
                                  updated_at = now()
                WHERE id = $1 AND credit_note_id IS NULL RETURNING status, provider_refund_id""",
            refund["id"],
            credit_note_id,
            number,
            credited_minor,
        )
        if stored is None:
            return False
        if stored["status"] == RefundStatus.FAILED.value:
            # The refund failed while billing issued its credit note: the entry opened for the failure could
            # not name it. The credit note stands (a legal document); the merchant is told of it in that one
            # entry, whose note now names it (a second entry would tell of one failure twice). Only when
            # that entry is no longer open (the merchant resolved it before the credit note existed) does a
            # new one tell of the credit note.
            await _name_credit_note_or_open(conn, refund, stored["provider_refund_id"], number)
        await conn.execute(
            """INSERT INTO audit_log (session_id, merchant_id, actor, action, detail)
               VALUES ($1, $2, 'refunds', 'credit_note_issued', $3::jsonb)""",
            refund["session_id"],
            refund["merchant_id"],
            json.dumps({"refund_id": str(refund["id"]), "credit_note_id": credit_note_id, "number": number}),
        )
    return True


async def _name_credit_note_or_open(
    conn: asyncpg.Connection, refund: Record, provider_refund_id: str | None, number: str
) -> None:
    """Name `number` in the open `refund_failed` entry of `refund` (found by its `refund_id`, session migration
    0200), or open an entry naming it when there is none (in the caller's transaction). A refund fails once, so
    it has at most one such entry, and the credit note is recorded once (`record_credit_note`), so the entry
    found names no credit note yet."""
    key = provider_refund_id or str(refund["id"])
    named = await conn.fetchval(
        """UPDATE quarantine SET note = $2
            WHERE id = (SELECT id FROM quarantine
                         WHERE refund_id = $1 AND reason = 'refund_failed' AND status = 'open'
                         ORDER BY created_at, id LIMIT 1)
           RETURNING id""",
        refund["id"],
        failed_refund_note(key, number),
    )
    if named is not None:
        return
    session = await conn.fetchrow(
        "SELECT id, merchant_id, mode, currency, exponent, provider, paid_reference FROM sessions WHERE id = $1",
        refund["session_id"],
    )
    await open_quarantine(
        conn,
        session,
        reason="refund_failed",
        note=failed_refund_note(key, number),
        provider=session["provider"],
        provider_event_id=f"refund:{refund['id']}",
        provider_reference=session["paid_reference"],
        amount_minor=int(refund["amount_minor"]),
        mode=session["mode"],
        refund_id=refund["id"],
    )


async def skip_credit_note(conn: asyncpg.Connection, refund: Record, reason: str) -> bool:
    """No credit note for this refund, because the money is already credited: billing refused one (a voided
    invoice), or an earlier note that stands already credits it (`credited_by_earlier_note`). Recorded, with its
    audit row, so the worker stops asking."""
    async with conn.transaction():
        stored = await conn.fetchval(
            """UPDATE refunds SET credit_note_id = $2, credit_note_minor = 0, updated_at = now()
                WHERE id = $1 AND credit_note_id IS NULL RETURNING true""",
            refund["id"],
            f"skipped:{reason}"[:100],
        )
        if stored:
            await conn.execute(
                """INSERT INTO audit_log (session_id, merchant_id, actor, action, detail)
                   VALUES ($1, $2, 'refunds', 'credit_note_skipped', $3::jsonb)""",
                refund["session_id"],
                refund["merchant_id"],
                json.dumps({"refund_id": str(refund["id"]), "reason": reason}),
            )
    return bool(stored)


async def key_access_due(conn: asyncpg.Connection, limit: int) -> list[Record]:
    """Sessions whose keys are not yet as they should be. A session still being fulfilled waits: its key is
    issued first, so a revocation can never come before the key it must reach."""
    # key_access_due (migration 0280) reads the partial index in id order whatever the statistics say:
    # planned inline, stale statistics read the whole table every second.
    return await conn.fetch(
        """SELECT id, merchant_id, mode, key_access, key_access_applied, dispute_status, status
             FROM key_access_due($1)""",
        limit,
    )


async def record_key_access(conn: asyncpg.Connection, session: Record, applied: str) -> bool:
    """Mark `applied` as done, unless the wanted access changed meanwhile (then the worker goes again)."""
    async with conn.transaction():
        done = await conn.fetchval(
            """UPDATE sessions SET key_access_applied = $2 WHERE id = $1 AND key_access = $2
               RETURNING true""",
            session["id"],
            applied,
        )
        if done:
            await conn.execute(
                """INSERT INTO audit_log (session_id, merchant_id, actor, action, detail)
                   VALUES ($1, $2, 'refunds', 'customer_keys_' || $3, '{}'::jsonb)""",
                session["id"],
                session["merchant_id"],
                applied,
            )
    return bool(done)
