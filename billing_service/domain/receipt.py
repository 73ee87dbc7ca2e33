"""What a receipt shows, as plain strings: one view model shared by the HTML and the PDF renderers.

Keeping the wording and number formatting here means both formats always agree, and it stays testable
without rendering anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from .credit_notes import CreditOrigin, credit_origin, reason_words, settlement
from .einvoice import net_lines
from .invoices import Invoice, Party, format_money
from .tax import format_rate


@dataclass(frozen=True, slots=True)
class ReceiptParty:
    name: str
    lines: tuple[str, ...]  # postal address lines then country
    email: str
    tax_id: str


@dataclass(frozen=True, slots=True)
class ReceiptLine:
    description: str
    quantity: str
    unit_amount: str  # net, as the PDF prints it
    amount: str  # net


@dataclass(frozen=True, slots=True)
class ReceiptView:
    title: str  # "INVOICE" | "CREDIT NOTE"
    number: str
    issued_on: str  # "2025-03-14"
    issued_at: str  # "2025-03-14 10:22 UTC"
    supplied_on: str  # date the session was paid, "" when unknown
    status: str  # "ISSUED" | "VOID"
    is_void: bool
    is_test_mode: bool
    seller: ReceiptParty
    buyer: ReceiptParty
    lines: tuple[ReceiptLine, ...]
    subtotal: str
    tax_label: str  # "Tax (19 %)"
    tax: str
    total: str  # "99.99 EUR"
    settled_label: str  # "Paid" | "Refunded" | "Refunded (chargeback)"
    settled: str  # "" when nothing was settled (a void's credit note)
    due_label: str  # "Amount due" | "Refund due"
    due: str
    settlement_statement: str  # a credit note's words on where the money stands
    currency: str
    # A credit note: the invoice it credits or cancels; a void invoice: the credit note that cancels it.
    reference: str
    reason: str  # in words, never a machine code
    support_email: str


def _party(party: Party, fallback_name: str) -> ReceiptParty:
    lines = list(party.address.lines)
    if party.address.country:
        lines.append(party.address.country)
    return ReceiptParty(
        name=party.name or fallback_name, lines=tuple(lines), email=party.email, tax_id=party.tax_id
    )


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _reference(invoice: Invoice, credited_number: str | None, credit_note_number: str | None) -> str:
    if invoice.is_credit_note:
        credited = credited_number or invoice.credits_invoice_id or ""
        # A refund's credit note "Credits" the invoice (often in part, and the invoice then stands for the rest);
        # a void's cancels it whole, and the voided invoice says so too ("Cancelled by credit note").
        verb = "Cancels" if credit_origin(invoice) is CreditOrigin.VOID else "Credits"
        return f"{verb} invoice {credited}".rstrip()
    if invoice.is_void and (credit_note_number or invoice.credit_note_id):
        return f"Cancelled by credit note {credit_note_number or invoice.credit_note_id}"
    return ""


def _net_lines(invoice: Invoice) -> tuple[ReceiptLine, ...]:
    """The lines net, split as the PDF, the Factur-X XML and the API state them (`einvoice.net_lines`)."""
    sign = -1 if invoice.is_credit_note else 1
    return tuple(
        ReceiptLine(
            line.description,
            str(line.quantity),
            f"{'-' if sign < 0 and line.net_amount else ''}{line.net_unit_price} {invoice.currency}",
            format_money(sign * line.net_amount, invoice.exponent, invoice.currency),
        )
        for line in net_lines(invoice)
    )


def build_receipt_view(
    invoice: Invoice,
    *,
    credited_invoice_number: str | None = None,
    credit_note_number: str | None = None,
    support_email: str = "",
) -> ReceiptView:
    """Format `invoice` for a receipt; the caller looks up related numbers, ids are the fallback."""

    def money(minor: int) -> str:
        return format_money(minor, invoice.exponent, invoice.currency)

    issued = _utc(invoice.issued_at)
    money_state = settlement(invoice, credited_invoice_number=credited_invoice_number or "")
    return ReceiptView(
        title="CREDIT NOTE" if invoice.is_credit_note else "INVOICE",
        number=invoice.number,
        issued_on=issued.strftime("%Y-%m-%d"),
        issued_at=issued.strftime("%Y-%m-%d %H:%M UTC"),
        supplied_on=_utc(invoice.paid_at).strftime("%Y-%m-%d") if invoice.paid_at else "",
        status="VOID" if invoice.is_void else "ISSUED",
        is_void=invoice.is_void,
        is_test_mode=str(invoice.mode) == "test",
        seller=_party(invoice.seller, f"Merchant {invoice.merchant_id}"),
        buyer=_party(invoice.buyer, ""),
        lines=_net_lines(invoice),
        subtotal=money(invoice.subtotal),
        tax_label=f"Tax ({format_rate(invoice.tax_rate_bps)} %)",
        tax=money(invoice.tax),
        total=money(invoice.total),
        settled_label=money_state.settled_label,
        settled=money(money_state.settled) if money_state.settled else "",
        due_label=money_state.due_label,
        due=money(money_state.due),
        settlement_statement=money_state.statement,
        currency=invoice.currency,
        reference=_reference(invoice, credited_invoice_number, credit_note_number),
        reason=reason_words(invoice.reason),
        support_email=support_email,
    )


def receipt_filename(invoice: Invoice, extension: str) -> str:
    """`INV-2025-000042.pdf`; the number is already filename-safe, the guard keeps it that way."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", invoice.number) or invoice.id
    return f"{stem}.{extension}"
