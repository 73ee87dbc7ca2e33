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
from .tax import TaxSplit, split_tax


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
    description = f"Refund of invoice {original.number}"
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
