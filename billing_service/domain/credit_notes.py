"""The credit note of one refund (contract §8): pure rules, no I/O.

A refund credits part or all of a session's invoice. Its credit note negates exactly the refunded amount
(tax included, split at the invoice's own rate, rounded half to even like every document), keeps the
invoice's currency, seller and buyer, and references the invoice. The invoice itself stays `issued`: a
partial refund does not cancel it, and VoidInvoice (a full cancellation) is its own act. The credit notes of
one invoice never add up to more than the invoice.
"""

from __future__ import annotations

from datetime import datetime

from paygate_runtime.errors import FailedPrecondition, InvalidArgument

from .invoices import (
    MAX_TEXT_LENGTH,
    DocumentKind,
    Invoice,
    InvoiceStatus,
    LineItem,
    credit_note_of,
    format_money,
)
from .tax import split_tax


def check_refund_credit(original: Invoice, amount_minor: int, already_credited: int) -> None:
    """FailedPrecondition `invoice_void` / `credit_exceeds_invoice`, InvalidArgument `invalid_amount`."""
    if original.kind is not DocumentKind.INVOICE:
        raise FailedPrecondition("not_an_invoice", "only an invoice can be credited", field="session_id")
    if original.status is InvoiceStatus.VOID:
        raise FailedPrecondition(
            "invoice_void",
            "the session's invoice is void: its credit note already returned it",
            field="session_id",
        )
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise InvalidArgument("invalid_amount", "a refund's credit is a positive amount", field="amount")
    if already_credited + amount_minor > original.total:
        left = format_money(original.total - already_credited, original.exponent, original.currency)
        raise FailedPrecondition(
            "credit_exceeds_invoice", f"at most {left} of this invoice can still be credited", field="amount"
        )


def build_refund_credit_note(
    original: Invoice,
    amount_minor: int,
    *,
    already_credited: int,
    id: str,
    prefix: str,
    sequence: int,
    issued_at: datetime,
    reason: str,
) -> Invoice:
    check_refund_credit(original, amount_minor, already_credited)
    reason = " ".join(reason.split())[:MAX_TEXT_LENGTH] or "refund"
    split = split_tax(-amount_minor, original.tax_rate_bps)
    description = f"Refund of invoice {original.number}"
    return credit_note_of(
        original,
        id=id,
        prefix=prefix,
        sequence=sequence,
        issued_at=issued_at,
        line_items=(LineItem(description, 1, -amount_minor),),
        subtotal=split.net,
        tax=split.tax,
        total=-amount_minor,
        reason=reason,
    )
