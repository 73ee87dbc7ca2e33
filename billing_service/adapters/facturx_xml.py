"""Factur-X (EN 16931 profile) CII XML for an e-invoice, generated with drafthorse, never by hand.

drafthorse builds the UN/CEFACT Cross Industry Invoice from an object model and validates what it serialises
against the Factur-X EN 16931 XSD it ships, so a document that would not validate is never embedded.
"""

from __future__ import annotations

from typing import Any

from drafthorse.models.accounting import ApplicableTradeTax
from drafthorse.models.document import Document
from drafthorse.models.note import IncludedNote
from drafthorse.models.party import TaxRegistration
from drafthorse.models.payment import PaymentTerms
from drafthorse.models.tradelines import LineItem

from billing_service.domain.einvoice import GUIDELINE_EN16931, UNIT_CODE, EInvoice
from billing_service.domain.invoices import Party

FACTURX_FILENAME = "factur-x.xml"
FACTURX_SCHEMA = "FACTUR-X_EN16931"
VAT_SCHEME = "VA"  # the scheme of a VAT identifier in a CII tax registration
_MAX_ADDRESS_LINES = 3  # CII LineOne..LineThree; further lines are joined into the third


def _set_party(target: Any, party: Party) -> None:  # target: a drafthorse party element (untyped library)
    target.name = party.name
    lines = [line for line in party.address.lines if line.strip()]
    if len(lines) > _MAX_ADDRESS_LINES:
        lines = [*lines[: _MAX_ADDRESS_LINES - 1], ", ".join(lines[_MAX_ADDRESS_LINES - 1 :])]
    for attribute, line in zip(("line_one", "line_two", "line_three"), lines, strict=False):
        setattr(target.address, attribute, line)
    target.address.country_id = party.address.country
    if party.tax_id:
        target.tax_registrations.add(TaxRegistration(id=(VAT_SCHEME, party.tax_id)))


def build_facturx_xml(einvoice: EInvoice) -> bytes:
    """The Factur-X XML of `einvoice`; raises if it does not validate against the EN 16931 XSD."""
    doc = Document()
    doc.context.guideline_parameter.id = GUIDELINE_EN16931
    doc.header.id = einvoice.number
    doc.header.type_code = einvoice.type_code
    doc.header.issue_date_time = einvoice.issue_date
    for text in einvoice.notes:
        note = IncludedNote()
        note.content = text
        doc.header.notes.add(note)

    _set_party(doc.trade.agreement.seller, einvoice.seller)
    _set_party(doc.trade.agreement.buyer, einvoice.buyer)
    if einvoice.delivery_date is not None:
        doc.trade.delivery.event.occurrence = einvoice.delivery_date

    settlement = doc.trade.settlement
    settlement.currency_code = einvoice.currency
    if einvoice.preceding_invoice_number:
        settlement.invoice_referenced_document.issuer_assigned_id = einvoice.preceding_invoice_number
    if einvoice.due > 0:
        # BR-CO-25: an amount due needs payment terms or a due date. A settled document has nothing due and
        # states no terms (the words of a refund that already happened would read as a promise).
        terms = PaymentTerms()
        terms.description = einvoice.payment_terms
        settlement.terms.add(terms)

    for line in einvoice.lines:
        item = LineItem()
        item.document.line_id = line.line_id
        item.product.name = line.description
        item.agreement.net.amount = line.net_unit_price
        item.delivery.billed_quantity = (line.quantity, UNIT_CODE)
        tax = einvoice.taxes[0]
        item.settlement.trade_tax.type_code = "VAT"
        item.settlement.trade_tax.category_code = tax.category
        item.settlement.trade_tax.rate_applicable_percent = tax.rate_percent
        item.settlement.monetary_summation.total_amount = einvoice.major(line.net_amount)
        doc.trade.items.add(item)

    for tax in einvoice.taxes:
        breakdown = ApplicableTradeTax()
        breakdown.calculated_amount = einvoice.major(tax.amount)
        breakdown.type_code = "VAT"
        breakdown.basis_amount = einvoice.major(tax.basis)
        breakdown.category_code = tax.category
        breakdown.rate_applicable_percent = tax.rate_percent
        settlement.trade_tax.add(breakdown)

    totals = settlement.monetary_summation
    totals.line_total = einvoice.major(einvoice.net_total)
    totals.tax_basis_total = einvoice.major(einvoice.net_total)
    totals.tax_total = (einvoice.major(einvoice.tax_total), einvoice.currency)
    totals.grand_total = einvoice.major(einvoice.grand_total)
    totals.prepaid_total = einvoice.major(einvoice.prepaid)
    totals.due_amount = einvoice.major(einvoice.due)
    return doc.serialize(schema=FACTURX_SCHEMA)
