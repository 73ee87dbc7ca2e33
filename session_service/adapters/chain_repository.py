"""SQL of the on-chain settlement rules in the session schema (issue 13): who owns an xpub, the web3-only
`pending -> expired` sweep, and the quarantine entry of a reorg that took money from a paid session.

Kept apart from session_repository so that these statements are read and changed together; each follows
the same one-statement style (data-modifying CTEs: the move, its history and its audit row commit together).
"""

from __future__ import annotations

import uuid
from typing import TypeAlias

import asyncpg

from session_service.adapters import state_moves
from session_service.domain.states import SessionStatus

Record: TypeAlias = asyncpg.Record  # asyncpg is untyped: Any to mypy


async def lock_xpub(conn: asyncpg.Connection, xpub: str) -> None:
    """Serialise settings writes that name the same xpub (transaction-scoped), so the owner check below and
    the write after it cannot interleave with another merchant's."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('paygate-xpub:' || $1, 0))", xpub)


async def other_xpub_owner(conn: asyncpg.Connection, xpub: str, merchant_id: uuid.UUID) -> uuid.UUID | None:
    """Another merchant whose on-chain settings use this xpub (its deposit addresses would be shared)."""
    return await conn.fetchval(
        "SELECT merchant_id FROM payment_settings WHERE onchain_xpub = $1 AND merchant_id <> $2 LIMIT 1",
        xpub,
        merchant_id,
    )


async def expire_due_pending_web3(conn: asyncpg.Connection, batch: int, grace_s: int) -> list[uuid.UUID]:
    """Expire up to `batch` web3 sessions still `pending` `grace_s` seconds after their `expires_at`, through
    the one state-move writer (which checks that `pending -> expired` is a web3-only move).

    The gateway quarantines their partial money once it sees them expired. SKIP LOCKED as in `expire_due`.
    """
    return await state_moves.expire_due(
        conn,
        from_status=SessionStatus.PENDING,
        provider="web3",
        grace_s=grace_s,
        batch=batch,
        source_event_id="sweeper:expire_pending",
        note="pending_grace_over",
        detail={"from": "pending", "grace_s": grace_s},
    )


async def quarantine_alert(
    conn: asyncpg.Connection,
    session: Record,
    *,
    reason: str,
    note: str,
    reference: str,
    amount_minor: int | None,
    currency: str | None,
    exponent: int | None,
) -> uuid.UUID | None:
    """Open one quarantine entry for an alert about money (at most one per session, reason and reference:
    the provider_event_id `alert:<reason>:<reference>` is its key). Returns the new entry's id, or None when
    it exists already."""
    event_id = f"alert:{reason}:{reference}"
    exists = await conn.fetchval(
        "SELECT 1 FROM quarantine WHERE session_id = $1 AND provider = $2 AND provider_event_id = $3",
        session["id"],
        session["provider"],
        event_id,
    )
    if exists:
        return None
    entry = uuid.uuid4()
    await conn.execute(
        """INSERT INTO quarantine (id, merchant_id, session_id, mode, reason, note, provider, provider_event_id,
                                   provider_reference, amount_minor, amount_currency, amount_exponent)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)""",
        entry,
        session["merchant_id"],
        session["id"],
        session["mode"],
        reason,
        note,
        session["provider"],
        event_id,
        reference or None,
        amount_minor,
        currency,
        exponent,
    )
    return entry
