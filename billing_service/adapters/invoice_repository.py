"""asyncpg access to invoices, their counters and revenue aggregates (schema `billing`).

Every function takes a connection so that the service layer decides the transaction boundaries.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from billing_service.adapters.profile_repository import profile_from_json
from billing_service.domain.invoices import (
    Address,
    DocumentKind,
    Invoice,
    InvoiceDraft,
    InvoiceStatus,
    LineItem,
    Mode,
    Party,
    issue_draft,
)
from billing_service.domain.profiles import BillingProfile, default_profile
from billing_service.domain.revenue import RevenueRow

_COLUMNS = """id, merchant_id, mode, kind, number, sequence, session_id, seller, buyer, line_items, currency,
    exponent, subtotal, tax_rate_bps, tax, total, issued_at, paid_at, status, credits_invoice_id,
    credit_note_id, reason, refund_id"""

# The unique index on a printed number (merchant, mode, number).
NUMBER_TAKEN = "invoices_merchant_id_mode_number_key"

# One statement draws the next number and inserts the document. The counter row stays locked only while
# the server runs this statement and commits; no client round trip ever happens while it is held. If the
# insert fails (a concurrent issue for the same session), the whole statement, counter included, rolls back,
# so no number is burned. draw_invoice_sequence (migration 0110) increments the counter and skips numbers of
# the series the merchant's other counter already printed (a mid-year switch of reset_numbering_yearly).
_INSERT_NUMBERED = """
WITH counter AS (SELECT draw_invoice_sequence($2, $3, $4, $6, $7) AS last_sequence)
INSERT INTO invoices (id, merchant_id, mode, kind, number, counter_period, sequence, session_id, seller, buyer,
                      line_items, currency, exponent, subtotal, tax_rate_bps, tax, total, issued_at, paid_at,
                      credits_invoice_id, reason, refund_id)
SELECT $1, $2, $3, $5, format_invoice_number($6, $7, counter.last_sequence), $4, counter.last_sequence, $8,
       $9::jsonb, $10::jsonb, $11::jsonb, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22
  FROM counter
RETURNING sequence, number
"""


@dataclass(frozen=True, slots=True)
class ListFilter:
    merchant_id: str
    mode: Mode | None = None
    status: InvoiceStatus | None = None
    kind: DocumentKind | None = None
    issued_from: datetime | None = None
    issued_to: datetime | None = None


def party_json(party: Party) -> str:
    return json.dumps(
        {
            "name": party.name,
            "email": party.email,
            "tax_id": party.tax_id,
            "address": {"lines": list(party.address.lines), "country": party.address.country},
        }
    )


def _party(raw: str) -> Party:
    data = json.loads(raw)
    address = data.get("address") or {}
    return Party(
        name=data.get("name", ""),
        email=data.get("email", ""),
        tax_id=data.get("tax_id", ""),
        address=Address(lines=tuple(address.get("lines", ())), country=address.get("country", "")),
    )


def _line_items_json(items: tuple[LineItem, ...]) -> str:
    # Amounts as strings: an 18-decimal token amount does not survive a JSON number in most readers.
    return json.dumps(
        [
            {"description": i.description, "quantity": i.quantity, "unit_amount": str(i.unit_amount)}
            for i in items
        ]
    )


def _line_items(raw: str) -> tuple[LineItem, ...]:
    return tuple(
        LineItem(i["description"], int(i["quantity"]), int(i["unit_amount"])) for i in json.loads(raw)
    )


def row_to_invoice(row: asyncpg.Record) -> Invoice:
    return Invoice(
        id=str(row["id"]),
        number=row["number"],
        kind=DocumentKind(row["kind"]),
        merchant_id=row["merchant_id"],
        mode=Mode(row["mode"]),
        session_id=row["session_id"],
        seller=_party(row["seller"]),
        buyer=_party(row["buyer"]),
        line_items=_line_items(row["line_items"]),
        subtotal=int(row["subtotal"]),
        tax_rate_bps=row["tax_rate_bps"],
        tax=int(row["tax"]),
        total=int(row["total"]),
        currency=row["currency"],
        exponent=row["exponent"],
        issued_at=row["issued_at"],
        status=InvoiceStatus(row["status"]),
        sequence=row["sequence"],
        credits_invoice_id=str(row["credits_invoice_id"]) if row["credits_invoice_id"] else None,
        credit_note_id=str(row["credit_note_id"]) if row["credit_note_id"] else None,
        reason=row["reason"],
        paid_at=row["paid_at"],
        # Stored documents always say: "" for an invoice or a void's credit note.
        refund_id=str(row["refund_id"]) if row["refund_id"] else "",
    )


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


async def insert_numbered(
    conn: asyncpg.Connection | asyncpg.Pool,
    draft: InvoiceDraft | Invoice,
    *,
    id: uuid.UUID,
    kind: DocumentKind,
    prefix: str,
    period: int,
    year: int,
    issued_at: datetime,
    credits_invoice_id: str | None = None,
    reason: str = "",
    refund_id: uuid.UUID | None = None,
) -> Invoice:
    """Draw the next number of (merchant, mode, period) and insert the document with it, in one statement.

    Raises asyncpg.UniqueViolationError when the session already has an invoice (nothing is consumed), or on
    NUMBER_TAKEN when the other counter of the series committed the same number meanwhile (a retry skips it).
    Only the drawn sequence comes back: the document is rebuilt from what was sent, by the domain, and its
    number must agree with the stored one.
    """
    row = await conn.fetchrow(
        _INSERT_NUMBERED,
        id,
        draft.merchant_id,
        str(draft.mode),
        period,
        str(kind),
        prefix,
        year,
        draft.session_id,
        party_json(draft.seller),
        party_json(draft.buyer),
        _line_items_json(draft.line_items),
        draft.currency,
        draft.exponent,
        draft.subtotal,
        draft.tax_rate_bps,
        draft.tax,
        draft.total,
        issued_at,
        draft.paid_at,
        uuid.UUID(credits_invoice_id) if credits_invoice_id else None,
        reason,
        refund_id,  # a refund's credit note (contract §8): one per refund
    )
    assert row is not None
    sequence, number = row["sequence"], row["number"]
    if kind == DocumentKind.INVOICE:
        assert isinstance(draft, InvoiceDraft)
        issued = issue_draft(draft, id=str(id), prefix=prefix, sequence=sequence, issued_at=issued_at)
    else:
        assert isinstance(draft, Invoice)
        issued = replace(draft, id=str(id), number=number, sequence=sequence, issued_at=issued_at)
    if issued.number != number:
        raise RuntimeError(f"stored number {number!r} differs from the domain's {issued.number!r}")
    return issued


async def issue_context(
    conn: asyncpg.Connection, merchant_id: str, mode: Mode, session_id: str
) -> tuple[Invoice | None, BillingProfile]:
    """The session's existing invoice (if any) and the merchant's profile of the invoice's mode, in one
    round trip."""
    row = await conn.fetchrow(
        f"""SELECT to_jsonb(p) AS profile, i.*
              FROM (SELECT 1) AS one
              LEFT JOIN billing_profiles p ON p.merchant_id = $1 AND p.mode = $3
              LEFT JOIN LATERAL (SELECT {_COLUMNS} FROM invoices
                                  WHERE session_id = $2 AND kind = 'invoice') AS i ON true""",
        merchant_id,
        session_id,
        str(mode),
    )
    assert row is not None
    existing = row_to_invoice(row) if row["id"] is not None else None
    raw = row["profile"]
    return existing, profile_from_json(json.loads(raw)) if raw else default_profile(merchant_id, mode)


async def issue_contexts(
    conn: asyncpg.Connection, scopes: list[tuple[str, Mode]], session_ids: list[str]
) -> tuple[dict[str, Invoice], dict[tuple[str, Mode], BillingProfile]]:
    """issue_context for a whole batch in two statements: the invoices these sessions already have, by
    session id, and the profile of each (merchant, mode), defaults where none was set."""
    invoice_rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM invoices WHERE session_id = ANY($1::text[]) AND kind = 'invoice'",
        session_ids,
    )
    profile_rows = await conn.fetch(
        """SELECT to_jsonb(p) AS profile FROM billing_profiles p
             JOIN unnest($1::text[], $2::text[]) AS w(merchant_id, mode)
               ON p.merchant_id = w.merchant_id AND p.mode = w.mode""",
        [merchant for merchant, _mode in scopes],
        [str(mode) for _merchant, mode in scopes],
    )
    profiles = {(m, mode): default_profile(m, mode) for m, mode in scopes}
    for row in profile_rows:
        profile = profile_from_json(json.loads(row["profile"]))
        profiles[(profile.merchant_id, Mode(profile.mode))] = profile
    return {r["session_id"]: row_to_invoice(r) for r in invoice_rows}, profiles


async def find_by_session(conn: asyncpg.Connection | asyncpg.Pool, session_id: str) -> Invoice | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM invoices WHERE session_id = $1 AND kind = 'invoice'", session_id
    )
    return row_to_invoice(row) if row else None


async def for_sessions(
    conn: asyncpg.Connection | asyncpg.Pool, merchant_id: str, mode: Mode, session_ids: list[str]
) -> list[Invoice]:
    """Every document (invoice or credit note) of these sessions in one merchant and mode, newest first."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM invoices
             WHERE session_id = ANY($3::text[]) AND merchant_id = $1 AND mode = $2
             ORDER BY issued_at DESC, id DESC LIMIT 200""",
        merchant_id,
        str(mode),
        session_ids,
    )
    return [row_to_invoice(r) for r in rows]


async def load_for_caller(
    conn: asyncpg.Connection | asyncpg.Pool,
    merchant_id: str,
    mode: Mode | None,
    invoice_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Invoice | None:
    """THE one place a caller's document is loaded: found only in the caller's merchant AND mode, so another
    merchant's and the other mode's documents are alike not there. `mode` None only for internal callers."""
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"""SELECT {_COLUMNS} FROM invoices
             WHERE id = $1 AND merchant_id = $2 AND ($3::text IS NULL OR mode = $3){lock}""",
        invoice_id,
        merchant_id,
        str(mode) if mode is not None else None,
    )
    return row_to_invoice(row) if row else None


async def mark_void(
    conn: asyncpg.Connection, invoice_id: str, credit_note_id: str, actor: str = ""
) -> Invoice:
    # voided_by reaches the audit trigger (billing_audit_write), which records it as the void's actor.
    row = await conn.fetchrow(
        f"""UPDATE invoices SET status = 'void', credit_note_id = $2, voided_by = $3
             WHERE id = $1 AND status = 'issued' RETURNING {_COLUMNS}""",
        uuid.UUID(invoice_id),
        uuid.UUID(credit_note_id),
        actor or None,
    )
    assert row is not None, "the caller holds the row lock on an issued invoice"
    return row_to_invoice(row)


async def numbers_of(
    conn: asyncpg.Connection | asyncpg.Pool, merchant_id: str, ids: list[str]
) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT id, number FROM invoices WHERE merchant_id = $1 AND id = ANY($2::uuid[])",
        merchant_id,
        [uuid.UUID(i) for i in ids],
    )
    return {str(r["id"]): r["number"] for r in rows}


async def cursor_position(
    conn: asyncpg.Connection | asyncpg.Pool, merchant_id: str, mode: Mode | None, invoice_id: uuid.UUID
) -> tuple[datetime, uuid.UUID] | None:
    row = await conn.fetchrow(
        """SELECT issued_at, id FROM invoices
            WHERE id = $1 AND merchant_id = $2 AND ($3::text IS NULL OR mode = $3)""",
        invoice_id,
        merchant_id,
        str(mode) if mode is not None else None,
    )
    return (row["issued_at"], row["id"]) if row else None


async def list_page(
    conn: asyncpg.Connection | asyncpg.Pool,
    filters: ListFilter,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> tuple[list[Invoice], bool]:
    """Newest first, keyset-paginated on (issued_at, id); returns (page, has_more)."""
    conditions = ["merchant_id = $1"]
    args: list[Any] = [filters.merchant_id]

    def add(sql: str, value: Any) -> None:
        args.append(value)
        conditions.append(sql.format(f"${len(args)}"))

    if filters.mode is not None:
        add("mode = {}", str(filters.mode))
    if filters.status is not None:
        add("status = {}", str(filters.status))
    if filters.kind is not None:
        add("kind = {}", str(filters.kind))
    if filters.issued_from is not None:
        add("issued_at >= {}", filters.issued_from)
    if filters.issued_to is not None:
        add("issued_at < {}", filters.issued_to)
    if after is not None:
        args.extend(after)
        conditions.append(f"(issued_at, id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM invoices WHERE {" AND ".join(conditions)}
             ORDER BY issued_at DESC, id DESC LIMIT ${len(args)}""",
        *args,
    )
    return [row_to_invoice(r) for r in rows[:limit]], len(rows) > limit


REVENUE_SQL = """
SELECT date_trunc($5, issued_at, 'UTC') AS period_start, currency, exponent, kind,
       count(*) AS count, sum(total) AS total
  FROM invoices
 WHERE merchant_id = $1 AND mode = $2 AND issued_at >= $3 AND issued_at < $4
 GROUP BY 1, 2, 3, 4
"""


async def revenue_rows(
    conn: asyncpg.Connection | asyncpg.Pool,
    merchant_id: str,
    mode: Mode,
    start: datetime,
    end: datetime,
    unit: str,
) -> list[RevenueRow]:
    rows = await conn.fetch(REVENUE_SQL, merchant_id, str(mode), start, end, unit)
    return [
        RevenueRow(
            period_start=r["period_start"],
            currency=r["currency"],
            exponent=r["exponent"],
            kind=DocumentKind(r["kind"]),
            count=r["count"],
            total=int(r["total"]),
        )
        for r in rows
    ]
