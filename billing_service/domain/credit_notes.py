"""The credit note of one refund (contract §8): pure rules, no I/O.

A refund credits part or all of a session's invoice. Its credit note negates exactly the refunded amount
(tax included), keeps the invoice's currency, seller and buyer, and references the invoice. The invoice
itself stays `issued`: a partial refund does not cancel it, and VoidInvoice (a full cancellation) is its own
act. The credit notes of one invoice never add up to more than the invoice.

Net and VAT are allocated cumulatively, never note by note: the net credited by all the invoice's notes up
to and including this one is the invoice's rounding rule (split_tax, half to even) applied to the gross they
credit together, and this note credits the difference from what the earlier notes did credit. Rounding
therefore never drifts, neither the net nor the VAT credited ever exceeds the invoice's, and the note that
empties the invoice credits exactly the net and VAT still left (10.00 at 19 % refunded 3.33 then 6.67: net
2.80 + 5.60 and VAT 0.53 + 1.07, i.e. 8.40 and 1.60). Notes issued earlier keep their figures; a later note
absorbs what their rounding left.

What a document says about its money (`settlement`) is decided here too, once, for the page, the HTML and the
Factur-X XML: a refund's credit note is issued only once the refund has succeeded, and a lost dispute's once
the chargeback took the money back, so both are settled ("Refunded", nothing due); a void's credit note
cancels the invoice without any money moving, so its amount is due to the buyer ("Refund due").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

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
from .tax import TaxSplit, split_tax

# The single line of a refund's credit note (build_refund_credit_note), followed by the invoice's number: what
# tells a refund's note from a void's (whose lines copy the invoice's) for a document built in memory, which
# does not carry its refund id yet. A stored one does (Invoice.refund_id).
REFUND_LINE_PREFIX = "Refund of invoice "

# Reason codes other services store and send as they are (the session service's lost dispute, and its
# refund-effects worker's default for one); a document prints their words, the stored reason stays the code.
_DISPUTE_LOST_WORDS = "payment disputed by the cardholder and lost"
_REASON_WORDS = {"dispute_lost": _DISPUTE_LOST_WORDS, "dispute lost": _DISPUTE_LOST_WORDS}


class CreditOrigin(StrEnum):
    REFUND = "refund"  # the refund succeeded: the money is back with the buyer
    DISPUTE = "dispute"  # a lost dispute: the chargeback took the money back
    VOID = "void"  # the invoice was cancelled: nothing moved, the amount is owed to the buyer


@dataclass(frozen=True, slots=True)
class Settlement:
    """What a document says about its money, in the document's sign (negative on a credit note)."""

    settled_label: str  # "Paid" | "Refunded" | "Refunded (chargeback)" | "" (nothing settled)
    settled: int
    due_label: str  # "Amount due" | "Refund due"
    due: int
    statement: str  # a credit note's words on where the money stands; "" on an invoice


def reason_words(reason: str) -> str:
    """The reason as a customer and an accountant read it: a known code in words, anything else as given."""
    return _REASON_WORDS.get(reason.strip().lower(), reason)


def credit_origin(note: Invoice) -> CreditOrigin:
    """Why a credit note was issued, from the document alone: a stored one by its refund (billing's
    `refund_id`), one built in memory by its single refund line."""
    if note.refund_id is not None:
        is_refund = note.refund_id != ""
    else:
        is_refund = len(note.line_items) == 1 and note.line_items[0].description.startswith(
            REFUND_LINE_PREFIX
        )
    if not is_refund:
        return CreditOrigin.VOID
    if reason_words(note.reason) == _DISPUTE_LOST_WORDS:
        return CreditOrigin.DISPUTE
    return CreditOrigin.REFUND


def settlement(document: Invoice, *, credited_invoice_number: str = "") -> Settlement:
    """Paid / refunded / due, and the words for it. An invoice is issued for a session already paid."""
    total = document.total
    if not document.is_credit_note:
        return Settlement("Paid", total, "Amount due", 0, "")
    origin = credit_origin(document)
    if origin is CreditOrigin.REFUND:
        # Only "refunded": a refund recorded as made outside paygate may not have used the original means.
        return Settlement(
            "Refunded", total, "Amount due", 0, "Already refunded to the buyer: nothing is due."
        )
    if origin is CreditOrigin.DISPUTE:
        return Settlement(
            "Refunded (chargeback)",
            total,
            "Amount due",
            0,
            "Already returned to the cardholder by the chargeback of a lost payment dispute.",
        )
    # A void is a cancellation, not a refund: the money stays with the seller until the merchant refunds it.
    invoice = f"invoice {credited_invoice_number}" if credited_invoice_number else "the invoice"
    return Settlement(
        "", 0, "Refund due", total, f"The amount is due to the buyer because {invoice} was cancelled."
    )


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


def refund_credit_split(original: Invoice, amount_minor: int, already_credited: TaxSplit) -> TaxSplit:
    """Net and VAT (positive) of a refund credit note of `amount_minor` gross, given the net and VAT the
    invoice's earlier refund credit notes credited (positive).

    The cumulative net after this note is split_tax's net of the cumulative gross (exactly the invoice's
    net once the whole invoice is credited), kept within the invoice's net and VAT; the note credits the
    difference from what was credited before. Only notes issued under an older rule can make that
    difference fall outside 0..amount: it is then clamped, so a note always has its document's sign on both
    net and VAT and still never credits more VAT (or net) than the invoice has left.
    """
    already = already_credited.total
    check_refund_credit(original, amount_minor, already)
    after = already + amount_minor
    if after == original.total:
        cumulative_net = original.subtotal
    else:
        cumulative_net = split_tax(after, original.tax_rate_bps).net
        cumulative_net = min(max(cumulative_net, after - original.tax), original.subtotal)
    net = min(max(cumulative_net - already_credited.net, 0), amount_minor)
    return TaxSplit(net=net, tax=amount_minor - net)


def build_refund_credit_note(
    original: Invoice,
    amount_minor: int,
    *,
    already_credited: TaxSplit | int,
    id: str,
    prefix: str,
    sequence: int,
    issued_at: datetime,
    reason: str,
) -> Invoice:
    """The credit note of one refund. `already_credited` is what the invoice's earlier refund credit notes
    credited (positive): their net and VAT as stored, or only their gross, then taken to have followed this
    very rule."""
    if not isinstance(already_credited, TaxSplit):
        already_credited = split_tax(already_credited, original.tax_rate_bps)
    split = refund_credit_split(original, amount_minor, already_credited)
    reason = " ".join(reason.split())[:MAX_TEXT_LENGTH] or "refund"
    description = f"{REFUND_LINE_PREFIX}{original.number}"
    return credit_note_of(
        original,
        id=id,
        prefix=prefix,
        sequence=sequence,
        issued_at=issued_at,
        line_items=(LineItem(description, 1, -amount_minor),),
        subtotal=-split.net,
        tax=-split.tax,
        total=-amount_minor,
        reason=reason,
    )
