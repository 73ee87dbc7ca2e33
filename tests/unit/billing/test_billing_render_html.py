from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from html.parser import HTMLParser

from billing_service.adapters.render_html import render_invoice_html
from billing_service.domain.credit_notes import build_refund_credit_note
from billing_service.domain.invoices import (
    Address,
    Invoice,
    LineItem,
    Party,
    build_credit_note,
    build_invoice,
    mark_void,
)

ISSUED_AT = datetime(2025, 3, 14, 10, 22, tzinfo=UTC)


def _invoice(buyer: Party | None = None, description: str = "API access", mode: str = "live") -> Invoice:
    seller = Party(
        name="Acme & Söhne GmbH", address=Address(("Hauptstr. 1", "10115 Berlin"), "DE"), tax_id="DE123"
    )
    return build_invoice(
        id="inv-1",
        merchant_id="m1",
        mode=mode,
        session_id="s1",
        amount_minor=9_999,
        currency="EUR",
        exponent=2,
        seller=seller,
        buyer=buyer or Party(name="Jo Buyer", email="jo@example.com"),
        prefix="INV",
        sequence=42,
        issued_at=ISSUED_AT,
        tax_rate_bps=1_900,
        line_items=[LineItem(description, 1, 9_999)],
    )


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    return collector


def test_receipt_shows_the_invoice_figures() -> None:
    page = _parse(render_invoice_html(_invoice(), support_email="help@acme.test"))
    text = " ".join(t.strip() for t in page.text if t.strip())
    for expected in [
        "INVOICE", "INV-2025-000042", "2025-03-14 10:22 UTC", "Acme & Söhne GmbH", "Hauptstr. 1", "DE123",
        "Jo Buyer", "jo@example.com", "API access", "Tax (19 %)", "15.96 EUR", "84.03 EUR", "99.99 EUR",
        "ISSUED", "help@acme.test",
    ]:  # fmt: skip
        assert expected in text, expected
    assert "VOID" not in text
    assert "Test mode" not in text


def test_hostile_buyer_name_and_description_are_escaped() -> None:
    hostile = '<script>alert("x")</script>'
    html = render_invoice_html(
        _invoice(buyer=Party(name=hostile, email="a@b.co"), description='<img src=x onerror="alert(1)">')
    )
    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html
    page = _parse(html)
    assert "script" not in page.tags and "img" not in page.tags
    # The text a reader sees is still the name as typed.
    assert hostile in "".join(page.text)


def test_void_invoice_carries_a_watermark_and_its_credit_note() -> None:
    original = _invoice()
    note = build_credit_note(
        original, id="cn-1", prefix="INV", sequence=43, issued_at=ISSUED_AT, reason="Refund"
    )
    html = render_invoice_html(mark_void(original, note), credit_note_number=note.number)
    assert 'class="watermark"' in html
    assert "Cancelled by credit note INV-2025-000043" in html


def test_a_partial_refunds_credit_note_credits_the_invoice_and_does_not_say_it_cancels_it() -> None:
    """A refund of 5.50 of 99.99 is a credit note for 5.50; the invoice stands for the rest. The document said
    "Cancels invoice ...", which on a legal document is false for any partial credit."""
    original = _invoice()
    note = build_refund_credit_note(
        original, 550, already_credited=0, id="cn-2", prefix="INV", sequence=44, issued_at=ISSUED_AT,
        reason="Refund",
    )  # fmt: skip
    html = render_invoice_html(note, credited_invoice_number=original.number)
    assert "Cancels" not in html
    assert "Credits invoice INV-2025-000042" in html
    assert "-5.50 EUR" in html


def test_credit_note_names_the_invoice_it_credits() -> None:
    original = _invoice()
    note = build_credit_note(
        original, id="cn-1", prefix="INV", sequence=43, issued_at=ISSUED_AT, reason="Refund"
    )
    html = render_invoice_html(note, credited_invoice_number=original.number)
    assert "CREDIT NOTE" in html
    # A void's credit note cancels the invoice whole (a refund's "Credits" it, see above).
    assert "Cancels invoice INV-2025-000042" in html
    assert "Reason: Refund" in html
    assert "-99.99 EUR" in html


def test_test_mode_is_flagged_and_missing_seller_name_falls_back_to_merchant() -> None:
    invoice = dataclasses.replace(_invoice(mode="test"), seller=Party())
    html = render_invoice_html(invoice)
    assert "Test mode" in html
    assert "Merchant m1" in html
