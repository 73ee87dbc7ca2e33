"""What a credit note says about the money (F8, F4, F9), the same on the PDF page, in the HTML and in the
embedded Factur-X XML.

- A refund's credit note is issued once the refund has succeeded, and a lost dispute's once the chargeback
  took the money back: both are already settled, so the XML states prepaid = the grand total and nothing due
  (EN 16931 BR-CO-16), and the page says "Refunded" and "Amount due 0.00", never "Refund due".
- A void's credit note cancels the invoice; no money has gone back, so the amount is due to the buyer, and no
  word on it may claim a refund happened.
- A stored reason code (`dispute_lost`) is printed in words; the stored code stays as it is.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

from lxml import etree
from pypdf import PdfReader

from billing_service.adapters.render_html import render_invoice_html
from billing_service.adapters.render_pdf import render_invoice_documents
from billing_service.domain.credit_notes import build_refund_credit_note
from billing_service.domain.einvoice import build_einvoice
from billing_service.domain.invoices import Address, Invoice, Party, build_credit_note, build_invoice

ISSUED_AT = datetime(2026, 3, 14, 10, 22, tzinfo=UTC)
PAID_AT = datetime(2026, 3, 14, 10, 20, tzinfo=UTC)
SELLER = Party(
    name="Acme GmbH", address=Address(("Hauptstraße 1", "10115 Berlin"), "DE"), tax_id="DE123456789"
)
BUYER = Party(name="Kunde SARL", address=Address(("2 rue de la Paix", "75002 Paris"), "FR"))
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}
SUMMATION = ".//ram:SpecifiedTradeSettlementHeaderMonetarySummation/"
INVOICE_NUMBER = "INV-2026-000042"


def _invoice() -> Invoice:
    return build_invoice(
        id="inv-1", merchant_id="m1", mode="live", session_id="s1", amount_minor=10_000, currency="EUR",
        exponent=2, prefix="INV", sequence=42, issued_at=ISSUED_AT, tax_rate_bps=1_900, seller=SELLER,
        buyer=BUYER, paid_at=PAID_AT,
    )  # fmt: skip


def _refund_note(amount_minor: int = 2_500, reason: str = "refund") -> Invoice:
    return build_refund_credit_note(
        _invoice(), amount_minor, already_credited=0, id="cn-1", prefix="INV", sequence=43,
        issued_at=ISSUED_AT, reason=reason,
    )  # fmt: skip


def _void_note() -> Invoice:
    return build_credit_note(
        _invoice(), id="cn-2", prefix="INV", sequence=44, issued_at=ISSUED_AT, reason="issued in error"
    )


def _pdf_and_xml(note: Invoice) -> tuple[str, etree._Element]:
    pdf, xml = render_invoice_documents(note, credited_invoice_number=INVOICE_NUMBER)
    assert xml is not None
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return " ".join(text.split()), etree.fromstring(xml)


def _html_text(note: Invoice) -> str:
    html = render_invoice_html(note, credited_invoice_number=INVOICE_NUMBER)
    return " ".join(html.replace("<", " <").replace(">", "> ").split())


def _words_of(root: etree._Element) -> str:
    """Every note and payment term of the XML, one string."""
    texts = root.xpath(
        ".//ram:IncludedNote/ram:Content/text() | .//ram:SpecifiedTradePaymentTerms/ram:Description/text()",
        namespaces=NS,
    )
    return " | ".join(str(t) for t in texts)


# --- F8: a refund's and a lost dispute's credit note are already settled ------------------------------------


def test_a_refunds_credit_note_xml_states_it_was_prepaid_and_nothing_is_due() -> None:
    note = _refund_note()
    einvoice = build_einvoice(note, preceding_invoice_number=INVOICE_NUMBER)
    assert (einvoice.grand_total, einvoice.prepaid, einvoice.due) == (2_500, 2_500, 0)
    _, root = _pdf_and_xml(note)
    assert root.findtext(SUMMATION + "ram:GrandTotalAmount", namespaces=NS) == "25.00"
    assert root.findtext(SUMMATION + "ram:TotalPrepaidAmount", namespaces=NS) == "25.00"
    assert root.findtext(SUMMATION + "ram:DuePayableAmount", namespaces=NS) == "0.00"
    # Nothing is due, so no payment terms (BR-CO-25 asks for them only when an amount is due).
    assert root.find(".//ram:SpecifiedTradePaymentTerms", namespaces=NS) is None


def test_a_refunds_credit_note_page_says_refunded_and_nothing_due() -> None:
    text, _ = _pdf_and_xml(_refund_note())
    assert "Refunded -25.00 EUR" in text
    assert "Amount due 0.00 EUR" in text
    assert "Refund due" not in text
    html = _html_text(_refund_note())
    assert 'Refunded </td> <td class="num"> -25.00 EUR' in html
    assert 'Amount due </td> <td class="num"> 0.00 EUR' in html
    assert "Refund due" not in html
    assert "Credits invoice INV-2026-000042" in html and "Cancels" not in html


def test_a_lost_disputes_credit_note_is_settled_by_the_chargeback() -> None:
    note = _refund_note(10_000, reason="dispute_lost")
    text, root = _pdf_and_xml(note)
    assert root.findtext(SUMMATION + "ram:TotalPrepaidAmount", namespaces=NS) == "100.00"
    assert root.findtext(SUMMATION + "ram:DuePayableAmount", namespaces=NS) == "0.00"
    assert "Refund due" not in text
    assert "Amount due 0.00 EUR" in text
    assert "chargeback" in text


# --- F4: a void's credit note cancels the invoice; nothing was refunded -------------------------------------


def test_a_voids_credit_note_says_the_amount_is_due_because_the_invoice_was_cancelled() -> None:
    note = _void_note()
    einvoice = build_einvoice(note, preceding_invoice_number=INVOICE_NUMBER)
    assert (einvoice.prepaid, einvoice.due) == (0, 10_000)  # the figures stay: owed back to the buyer
    text, root = _pdf_and_xml(note)
    assert root.findtext(SUMMATION + "ram:DuePayableAmount", namespaces=NS) == "100.00"
    words = _words_of(root)
    terms = root.findtext(".//ram:SpecifiedTradePaymentTerms/ram:Description", namespaces=NS) or ""
    assert "due to the buyer" in terms and "cancelled" in terms
    assert "refunded" not in words.lower()
    assert "Cancels invoice INV-2026-000042" in text
    assert "Refund due -100.00 EUR" in text
    assert "refunded" not in text.lower()
    html = _html_text(note)
    assert "Cancels invoice INV-2026-000042" in html
    assert 'Refund due </td> <td class="num"> -100.00 EUR' in html
    assert "refunded" not in html.lower()


# --- F9: reasons are printed in words ------------------------------------------------------------------------


def test_a_lost_disputes_reason_is_printed_in_words_and_stored_as_its_code() -> None:
    note = _refund_note(10_000, reason="dispute_lost")
    assert note.reason == "dispute_lost"
    text, root = _pdf_and_xml(note)
    words = "Reason: payment disputed by the cardholder and lost"
    assert words in text and "dispute_lost" not in text
    assert words in _words_of(root) and "dispute_lost" not in _words_of(root)
    html = _html_text(note)
    assert words in html and "dispute_lost" not in html
