"""What an EN 16931 e-invoice states about an issued document, computed exactly; pure, no I/O, no XML.

paygate stores what the customer paid (tax included) and splits it into net and tax (domain/tax.py).
EN 16931 wants the other view: net unit prices, net line amounts that add up to the net total (BR-CO-10), tax
per rate, then totals. This module derives that view from a stored invoice without changing any stored
number, so the page, the XML and the database always agree:

- the net total is the invoice's `subtotal` and the tax its `tax`, exactly;
- each line's net amount is its share of the net total, proportional to its gross amount, with the rounding
  remainder given out by largest remainder (ties to the earlier line), so the lines add up to the net total
  to the minor unit;
- a net unit price is the line's net amount divided by its quantity, exact when the division terminates,
  else rounded half-even to four digits beyond the currency's exponent (EN 16931 allows unit prices finer
  than the currency; the line amount, not the price, is what adds up).

A credit note (UNTDID 1001 type 381) states positive amounts, as EN 16931 requires; its sign is the type.
Whether a document can carry Factur-X at all is `facturx_blocker`: only ISO 4217 currencies with at most two
decimals, and only with the parties EN 16931 requires (seller name, address, country and VAT id; buyer name
and country). A document without Factur-X still prints why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date
from decimal import Decimal

from paygate_runtime.money.allocation import allocate, net_unit_price
from paygate_runtime.money.currencies import iso_currency

from .credit_notes import reason_words, settlement
from .invoices import Address, Invoice, Party
from .profiles import BillingProfile

TYPE_INVOICE = "380"  # UNTDID 1001: commercial invoice
TYPE_CREDIT_NOTE = "381"  # UNTDID 1001: credit note
GUIDELINE_EN16931 = "urn:cen.eu:en16931:2017"
VAT_STANDARD = "S"  # UNTDID 5305: standard rate
VAT_ZERO = "Z"  # UNTDID 5305: zero rated goods
UNIT_CODE = "C62"  # UN/ECE rec. 20: "one" (a unit without a dimension)
MAX_FACTURX_EXPONENT = 2
TEST_DOCUMENT_NOTE = "TEST DOCUMENT - issued in test mode, not a real invoice."
PLACEHOLDER_SELLER_NOTE = "Placeholder seller: the merchant has no complete billing profile yet."

# The seller fields EN 16931 requires and a live invoice must therefore have (BT-27, BT-35, BT-40, BT-31).
SELLER_REQUIREMENTS = (
    ("seller_name", "the seller's legal name"),
    ("seller_address", "the seller's postal address"),
    ("seller_country", "the seller's country"),
    ("seller_tax_id", "the seller's VAT identifier"),
)


def missing_seller_fields(seller: Party) -> tuple[str, ...]:
    """The seller fields a live invoice still needs, as profile field names; empty when complete."""
    present = {
        "seller_name": bool(seller.name.strip()),
        "seller_address": any(line.strip() for line in seller.address.lines),
        "seller_country": bool(seller.address.country),
        "seller_tax_id": bool(seller.tax_id.strip()),
    }
    return tuple(name for name, _ in SELLER_REQUIREMENTS if not present[name])


def profile_is_complete(profile: BillingProfile) -> bool:
    """Whether live invoices may be issued for this merchant (contract §9)."""
    return not missing_seller_fields(profile.seller)


def placeholder_seller(merchant_id: str) -> Party:
    """The seller printed on a test document whose merchant has no complete profile: clearly not a real one."""
    return Party(name=f"Merchant {merchant_id} (test placeholder)", address=Address())


def facturx_blocker(invoice: Invoice) -> str | None:
    """Why this document cannot carry Factur-X XML, or None when it can. The text is printed on the page."""
    iso = iso_currency(invoice.currency)
    if iso is None:
        return (
            f"No Factur-X e-invoice data: {invoice.currency} is not an ISO 4217 currency, "
            "and EN 16931 states amounts only in ISO 4217 currencies."
        )
    if invoice.exponent > MAX_FACTURX_EXPONENT:
        return (
            f"No Factur-X e-invoice data: {invoice.currency} has {invoice.exponent} decimals, "
            "and EN 16931 amounts have at most two."
        )
    missing = missing_seller_fields(invoice.seller)
    if missing:
        labels = dict(SELLER_REQUIREMENTS)
        return "No Factur-X e-invoice data: missing " + ", ".join(labels[m] for m in missing) + "."
    if not invoice.buyer.name.strip() or not invoice.buyer.address.country:
        return (
            "No Factur-X e-invoice data: EN 16931 needs the buyer's name and country, which were not given."
        )
    return None


@dataclass(frozen=True, slots=True)
class EInvoiceLine:
    line_id: str
    description: str
    quantity: int
    net_unit_price: Decimal  # major units, may be finer than the currency
    net_amount: int  # minor units, positive
    gross_amount: int  # minor units, positive (what the page's gross column would show)


@dataclass(frozen=True, slots=True)
class TaxBreakdown:
    category: str  # UNTDID 5305
    rate_percent: Decimal
    basis: int  # minor units
    amount: int  # minor units


@dataclass(frozen=True, slots=True)
class EInvoice:
    """Everything the Factur-X XML states, in the document's own units (minor units for amounts)."""

    type_code: str
    number: str
    issue_date: date
    delivery_date: date | None
    currency: str
    exponent: int
    seller: Party
    buyer: Party
    lines: tuple[EInvoiceLine, ...]
    taxes: tuple[TaxBreakdown, ...]
    net_total: int
    tax_total: int
    grand_total: int
    prepaid: int
    due: int
    payment_terms: str  # BR-CO-25: stated when an amount is due, "" when nothing is
    preceding_invoice_number: str
    notes: tuple[str, ...]
    is_test: bool

    def major(self, minor: int) -> Decimal:
        """Minor units as an exact decimal with the currency's number of places ("99.99", "500")."""
        return to_major(minor, self.exponent)


def to_major(minor: int, exponent: int) -> Decimal:
    """Exact, whatever the size: built from the digits (Decimal arithmetic would round past 28 digits)."""
    digits = tuple(int(d) for d in str(abs(minor)))
    return Decimal((1 if minor < 0 else 0, digits, -exponent))


def rate_percent(rate_bps: int) -> Decimal:
    """1900 -> Decimal("19.00"); basis points are hundredths of a percent, so this is exact."""
    return to_major(rate_bps, 2)


def net_lines(invoice: Invoice) -> tuple[EInvoiceLine, ...]:
    """The document's lines net of tax, amounts as positive numbers whatever the document's sign. Billing stores
    lines gross; a line's net is its share of the net total in proportion to its gross (largest remainder), its
    unit price that net divided by the quantity, finer than the currency when the division needs it. The one
    split every rendering states: the XML, the PDF, the HTML page (the API's `line_items` make the same split in
    `paygate_runtime.api_objects`)."""
    sign = -1 if invoice.is_credit_note else 1
    gross = tuple(sign * item.amount for item in invoice.line_items)
    net_total, tax_total, grand_total = sign * invoice.subtotal, sign * invoice.tax, sign * invoice.total
    if min((net_total, tax_total, grand_total, *gross)) < 0:
        raise ValueError("a document's amounts must all have the document's sign")
    nets = allocate(net_total, gross)
    return tuple(
        EInvoiceLine(
            line_id=str(index),
            description=item.description,
            quantity=item.quantity,
            net_unit_price=net_unit_price(net, item.quantity, invoice.exponent),
            net_amount=net,
            gross_amount=line_gross,
        )
        for index, (item, net, line_gross) in enumerate(
            zip(invoice.line_items, nets, gross, strict=True), start=1
        )
    )


def build_einvoice(
    invoice: Invoice, *, preceding_invoice_number: str = "", extra_notes: tuple[str, ...] = ()
) -> EInvoice:
    """The EN 16931 view of `invoice` (an invoice, type 380, or a credit note, type 381)."""
    sign = -1 if invoice.is_credit_note else 1
    lines = net_lines(invoice)
    net_total, tax_total, grand_total = sign * invoice.subtotal, sign * invoice.tax, sign * invoice.total
    category = VAT_STANDARD if invoice.tax_rate_bps > 0 else VAT_ZERO
    notes = list(extra_notes)
    if str(invoice.mode) == "test":
        notes.insert(0, TEST_DOCUMENT_NOTE)
    if invoice.is_credit_note and invoice.reason:
        notes.append(f"Reason: {reason_words(invoice.reason)}")
    money = settlement(invoice, credited_invoice_number=preceding_invoice_number)
    prepaid, due = sign * money.settled, sign * money.due
    # What is due is said in the payment terms; a settled credit note says in a note that it was refunded.
    if money.statement and not due:
        notes.append(money.statement)
    issued = invoice.issued_at.astimezone(UTC)
    return EInvoice(
        type_code=TYPE_CREDIT_NOTE if invoice.is_credit_note else TYPE_INVOICE,
        number=invoice.number,
        issue_date=issued.date(),
        delivery_date=invoice.paid_at.astimezone(UTC).date() if invoice.paid_at else None,
        currency=invoice.currency,
        exponent=invoice.exponent,
        seller=invoice.seller,
        buyer=invoice.buyer,
        lines=lines,
        taxes=(TaxBreakdown(category, rate_percent(invoice.tax_rate_bps), net_total, tax_total),),
        net_total=net_total,
        tax_total=tax_total,
        grand_total=grand_total,
        # BR-CO-16: due = grand total - prepaid. An invoice is issued for a session already paid, a refund's or
        # a lost dispute's credit note once the money went back; a void's amount is still owed to the buyer.
        prepaid=prepaid,
        due=due,
        payment_terms=money.statement if due else "",
        preceding_invoice_number=preceding_invoice_number,
        notes=tuple(notes),
        is_test=str(invoice.mode) == "test",
    )
