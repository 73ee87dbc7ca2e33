"""IssueCreditNote: the credit note of one refund (issue 19, contract §8), idempotent on the refund id.

One transaction: lock the session's invoice (refund credit notes of one invoice are issued one at a time,
so their sum is checked against a stable figure), return the refund's credit note if it exists, else draw
the next number of the merchant's sequence and insert the credit note in one statement. Revenue counts it
like any credit note, so the net is what was kept.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import asyncpg

from billing_service.adapters import invoice_repository as invoices
from billing_service.adapters import profile_repository as profiles
from billing_service.domain.credit_notes import build_refund_credit_note
from billing_service.domain.invoices import DocumentKind, Invoice, Mode, parse_mode
from billing_service.domain.numbering import counter_scope
from billing_service.domain.tax import TaxSplit
from paygate_runtime.errors import FailedPrecondition, InvalidArgument, NotFound

_COLUMNS = invoices._COLUMNS  # the same projection as every other read of a document


@dataclass(frozen=True, slots=True)
class CreditRequest:
    merchant_id: str
    mode: Mode | str
    session_id: str
    refund_id: str
    amount_minor: int
    currency: str
    exponent: int
    reason: str = ""


def _refund_uuid(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except (ValueError, TypeError, AttributeError):
        raise InvalidArgument("invalid_refund_id", "refund_id must be a UUID", field="refund_id") from None


async def _by_refund(conn: asyncpg.Connection, refund_id: uuid.UUID) -> Invoice | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM invoices WHERE refund_id = $1", refund_id)
    return invoices.row_to_invoice(row) if row else None


async def credited_by_refunds(conn: asyncpg.Connection, invoice_id: str) -> int:
    """What refund credit notes have credited of an invoice so far (positive, tax included)."""
    return (await credited_split_by_refunds(conn, invoice_id)).total


async def credited_split_by_refunds(conn: asyncpg.Connection, invoice_id: str) -> TaxSplit:
    """The net and VAT refund credit notes have credited of an invoice so far (positive), as they were
    issued: the next note's net and VAT are allocated from these, so rounding never drifts."""
    row = await conn.fetchrow(
        """SELECT COALESCE(-sum(subtotal), 0) AS net, COALESCE(-sum(tax), 0) AS tax FROM invoices
            WHERE credits_invoice_id = $1 AND kind = 'credit_note' AND refund_id IS NOT NULL""",
        uuid.UUID(invoice_id),
    )
    assert row is not None  # an aggregate always answers one row
    return TaxSplit(net=int(row["net"]), tax=int(row["tax"]))


class CreditNoteBuilder(Protocol):
    def __call__(self, *, id: str, prefix: str, sequence: int, issued_at: datetime) -> Invoice: ...


async def insert_credit_note(
    conn: asyncpg.Connection,
    original: Invoice,
    build: CreditNoteBuilder,
    *,
    issued_at: datetime,
    refund_id: uuid.UUID | None = None,
) -> Invoice:
    """Number and insert a credit note of `original` (locked by the caller), in the caller's transaction.
    `build` makes the document with a provisional sequence (validating it and fixing its amounts); the real
    number is drawn by the insert. It states the seller world of the invoice it credits."""
    profile = await profiles.get_profile(conn, original.merchant_id, original.mode)
    scope = counter_scope(
        original.merchant_id, original.mode, reset_yearly=profile.reset_numbering_yearly, issued_at=issued_at
    )
    provisional = build(id=str(uuid.uuid4()), prefix=profile.invoice_prefix, sequence=1, issued_at=issued_at)
    return await invoices.insert_numbered(
        conn,
        provisional,
        id=uuid.UUID(provisional.id),
        kind=DocumentKind.CREDIT_NOTE,
        prefix=profile.invoice_prefix,
        period=scope.period,
        year=issued_at.year,
        issued_at=issued_at,
        credits_invoice_id=original.id,
        reason=provisional.reason,
        refund_id=refund_id,
    )


def _same(existing: Invoice, request: CreditRequest) -> Invoice:
    if (
        existing.merchant_id != request.merchant_id
        or existing.session_id != request.session_id
        or -existing.total != request.amount_minor
        or existing.currency != request.currency
    ):
        raise FailedPrecondition(
            "credit_note_conflict",
            "this refund already has a credit note with other figures",
            field="refund_id",
        )
    return existing


async def issue_credit_note(
    pool: asyncpg.Pool, request: CreditRequest, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> Invoice:
    if not request.merchant_id:
        raise InvalidArgument("missing_merchant_id", "merchant_id is required", field="merchant_id")
    mode = parse_mode(request.mode)
    refund_id = _refund_uuid(request.refund_id)
    async with pool.acquire() as conn:
        existing = await _by_refund(conn, refund_id)
        if existing is not None:
            return _same(existing, request)
        try:
            async with conn.transaction():
                row = await conn.fetchrow(
                    f"""SELECT {_COLUMNS} FROM invoices
                         WHERE session_id = $1 AND kind = 'invoice' AND merchant_id = $2 AND mode = $3
                           FOR UPDATE""",
                    request.session_id,
                    request.merchant_id,
                    str(mode),
                )
                if row is None:
                    raise NotFound(
                        "invoice_not_found", "the session has no invoice to credit", field="session_id"
                    )
                original = invoices.row_to_invoice(row)
                if original.currency != request.currency or original.exponent != request.exponent:
                    raise FailedPrecondition(
                        "currency_mismatch", "a credit note is in its invoice's currency", field="amount"
                    )
                # Checked again under the lock: a concurrent retry of the same refund may have committed.
                existing = await _by_refund(conn, refund_id)
                if existing is not None:
                    return _same(existing, request)
                already = await credited_split_by_refunds(conn, original.id)
                build = functools.partial(
                    build_refund_credit_note,
                    original,
                    request.amount_minor,
                    already_credited=already,
                    reason=request.reason,
                )
                return await insert_credit_note(conn, original, build, issued_at=clock(), refund_id=refund_id)
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name != "invoices_one_per_refund":
                raise
        # A concurrent call for the same refund won (its statement committed first, ours rolled back whole).
        existing = await _by_refund(conn, refund_id)
        assert existing is not None
        return _same(existing, request)
