from __future__ import annotations

import io
from datetime import UTC, datetime

from pypdf import PdfReader

from billing_service.adapters.render_pdf import render_invoice_pdf, to_latin1
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


def _invoice(**overrides: object) -> Invoice:
    args: dict[str, object] = {
        "id": "inv-1", "merchant_id": "m1", "mode": "live", "session_id": "s1", "amount_minor": 9_999,
        "currency": "EUR", "exponent": 2, "prefix": "INV", "sequence": 42, "issued_at": ISSUED_AT,
        "tax_rate_bps": 1_900,
        "seller": Party(name="Acme GmbH", address=Address(("Hauptstr. 1", "10115 Berlin"), "DE")),
        "buyer": Party(name="Jo Buyer", email="jo@example.com"),
    }  # fmt: skip
    args.update(overrides)
    return build_invoice(**args)  # type: ignore[arg-type]


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_pdf_reader_finds_number_and_total() -> None:
    pdf = render_invoice_pdf(_invoice())
    assert pdf.startswith(b"%PDF-")
    text = _text(pdf)
    assert "INV-2025-000042" in text
    assert "99.99 EUR" in text
    assert "15.96 EUR" in text  # the tax share at 19 %
    assert "INVOICE" in text


def test_pdf_metadata_names_the_document() -> None:
    # PDF/A-3 keeps document metadata in XMP (fpdf2 writes no Info dictionary in compliance mode).
    reader = PdfReader(io.BytesIO(render_invoice_pdf(_invoice())))
    assert reader.xmp_metadata is not None
    assert reader.xmp_metadata.dc_title == {"x-default": "Invoice INV-2025-000042"}


def test_same_invoice_renders_to_the_same_bytes() -> None:
    assert render_invoice_pdf(_invoice()) == render_invoice_pdf(_invoice())


def test_non_latin1_names_do_not_crash_and_degrade_readably() -> None:
    invoice = _invoice(
        seller=Party(name="Zażółć Łódź Sp. z o.o."),
        buyer=Party(name="山田 太郎 😀 “Quote” — Ærø"),
        line_items=[LineItem("Übersetzung – €-Paket", 1, 9_999)],
    )
    text = _text(render_invoice_pdf(invoice))
    # The embedded DejaVu font draws Latin Extended and typographic punctuation as they are; only what it
    # lacks (CJK, emoji) is transliterated.
    assert "Zażółć Łódź Sp. z o.o." in text
    assert "“Quote” — Ærø" in text
    assert "Übersetzung – €-Paket" in text
    assert "??" in text


def test_to_latin1_never_leaves_a_character_the_core_fonts_cannot_draw() -> None:
    samples = ["Ελληνικά", "العربية", "דוד", "👩\u200d💻", "ŁŒẞ", "\u202e RTL"]
    for sample in samples:
        converted = to_latin1(sample)
        converted.encode("latin-1")  # raises if anything slipped through
        assert converted  # something visible remains for every sample


def test_long_credit_note_spans_pages_and_keeps_its_reference() -> None:
    lines = [LineItem(f"Item {n} " + "word " * 30, 1, 100) for n in range(60)]
    original = _invoice(amount_minor=6_000, line_items=lines)
    note = build_credit_note(
        original, id="cn-1", prefix="INV", sequence=43, issued_at=ISSUED_AT, reason="Refund"
    )
    pdf = render_invoice_pdf(note, credited_invoice_number=original.number)
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) > 1
    text = _text(pdf)
    assert "CREDIT NOTE" in text
    assert "INV-2025-000043" in text
    assert "-60.00 EUR" in text
    # A void's credit note cancels the invoice whole (a refund's "Credits" it).
    assert "Cancels invoice INV-2025-000042" in text
    assert "Item 59" in text


def test_void_invoice_is_stamped() -> None:
    original = _invoice()
    note = build_credit_note(original, id="cn-1", prefix="INV", sequence=43, issued_at=ISSUED_AT)
    text = _text(render_invoice_pdf(mark_void(original, note), credit_note_number=note.number))
    assert "VOID" in text
    assert "Cancelled by credit note INV-2025-000043" in text


def test_eighteen_decimal_amounts_are_printed_whole() -> None:
    # A line amount that wrapped mid-digits would read as two numbers; the money columns must widen instead.
    invoice = _invoice(
        amount_minor=10**24 + 1,
        currency="ETH",
        exponent=18,
        tax_rate_bps=0,  # net = gross, so the line amounts are the ones given
        line_items=[LineItem("Tokens", 1, 10**24), LineItem("Dust", 1, 1)],
    )
    text = _text(render_invoice_pdf(invoice))
    assert "1000000.000000000000000000 ETH" in text
    assert "0.000000000000000001 ETH" in text
    assert "1000000.000000000000000001 ETH" in text
