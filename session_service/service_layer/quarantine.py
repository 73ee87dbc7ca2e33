"""The merchant's quarantine: money events that need a person, listed and resolved.

Resolving `accepted` on a late payment is the one audited override of the state machine: the expired
session becomes paid (domain `accept_late_payment`), the fulfilment outbox row is written in the same
transaction, and the audit trail names the merchant and the entry.
"""

from __future__ import annotations

import asyncpg

from paygate_runtime.audit_actor import clean_actor
from paygate_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from paygate_runtime.money import Money
from session_service.adapters import session_repository as repo
from session_service.domain.payment_events import (
    QuarantineDecision,
    QuarantineReason,
    QuarantineStatus,
    accept_late_payment,
    resolve_quarantine,
)
from session_service.service_layer.payment_events import snapshot_of
from session_service.service_layer.sessions import _cursor, _page_size, parse_uuid

_STATUSES = {status.value for status in QuarantineStatus}


async def list_quarantine(
    pool: asyncpg.Pool,
    merchant_id: str,
    status: str,
    limit: int,
    starting_after: str,
    mode: str | None = None,
    *,
    session_id: str = "",
) -> tuple[list[repo.Record], bool]:
    """The merchant's entries of `mode`, newest first; with `session_id`, only that session's."""
    merchant = parse_uuid(merchant_id, "merchant_id")
    session = parse_uuid(session_id, "session_id", not_found="session_not_found") if session_id else None
    if status and status not in _STATUSES:
        raise InvalidArgument(
            "invalid_status", "status must be open, refunded, dismissed or accepted", field="status"
        )
    page = _page_size(limit)
    async with pool.acquire() as conn:
        after = await _cursor(conn, "quarantine", merchant, mode, starting_after)
        rows = await repo.list_quarantine(
            conn, merchant, mode, status or None, page + 1, after, session_id=session
        )
    return rows[:page], len(rows) > page


async def resolve(
    pool: asyncpg.Pool,
    merchant_id: str,
    quarantine_id: str,
    decision: QuarantineDecision,
    note: str,
    mode: str | None = None,
    actor: str = "",
) -> repo.Record:
    merchant = parse_uuid(merchant_id, "merchant_id")
    # The caller names who decided (the API key or the dashboard session's key); without one, the merchant.
    who = clean_actor(actor, f"merchant:{merchant}")
    entry_id = parse_uuid(quarantine_id, "quarantine_id", not_found="quarantine_not_found")
    note = note[:1000]
    async with pool.acquire() as conn:
        async with conn.transaction():
            entry = await repo.load_quarantine_for_caller(conn, merchant, mode, entry_id, lock=True)
            if entry is None:
                raise NotFound("quarantine_not_found", "no such quarantine entry")
            new_status = resolve_quarantine(QuarantineStatus(entry["status"]), decision)
            if new_status is not None:
                if decision is QuarantineDecision.ACCEPTED:
                    await _accept_late_payment(conn, entry, who)
                await repo.resolve_quarantine(conn, entry_id, new_status.value, note)
                await repo.write_audit(
                    conn,
                    entry["session_id"],
                    merchant,
                    who,
                    "quarantine_resolved",
                    # The entry's mode, which may not be its session's (a mode_mismatch): the decision is
                    # audited in the world of the key that made it.
                    {
                        "quarantine_id": str(entry_id),
                        "decision": decision.value,
                        "note": note,
                        "mode": entry["mode"],
                    },
                )
        resolved = await repo.get_quarantine(conn, entry_id)
    assert resolved is not None
    return resolved


async def _accept_late_payment(conn: asyncpg.Connection, entry: repo.Record, actor: str) -> None:
    session = await repo.lock_session(conn, entry["session_id"])
    assert session is not None
    if entry["amount_minor"] is None:
        raise FailedPrecondition("not_a_late_payment", "this entry carries no payment", field="decision")
    payment = Money(int(entry["amount_minor"]), entry["amount_currency"], entry["amount_exponent"])
    decision = accept_late_payment(
        snapshot_of(session),
        QuarantineReason(entry["reason"]),
        payment,
        entry["provider_reference"] or "",
        entry["provider"],
    )
    assert decision.new_status is not None
    written = await repo.write_move(
        conn,
        repo.Move(
            session_id=session["id"],
            merchant_id=session["merchant_id"],
            from_status=session["status"],
            to_status=decision.new_status.value,
            source_event_id=f"quarantine:{entry['id']}",
            note=decision.note.value,
            history=True,
            actor=actor,
            action="late_payment_accepted",
            detail={
                "quarantine_id": str(entry["id"]),
                "payment": payment.display(),
                "provider_event": f"{entry['provider']}:{entry['provider_event_id']}",
                "surplus": decision.surplus.display() if decision.surplus else None,
            },
            paid_reference=decision.paid_reference,
            received=payment,
            expected_paid_reference=session["paid_reference"],
            bind_provider=decision.bind_provider,
            # The one audited override: the writer checks it against OVERRIDES, not TRANSITIONS.
            override=True,
        ),
    )
    assert written["applied"], "the row is locked by this transaction"
