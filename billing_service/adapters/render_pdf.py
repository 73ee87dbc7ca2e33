"""Render an invoice or credit note as a PDF/A-3b document, with its Factur-X XML embedded when it can have one.

PDF/A-3b (ISO 19005-3, level B) is the archival form EN 16931 hybrid invoices use: every font embedded (DejaVu
Sans, shipped in ./fonts, subset by fpdf2), an sRGB output intent (fpdf2 adds its ICC profile in compliance
mode), XMP metadata with pdfaid part 3 / conformance B, and attachments declared as associated files
(/AF with an /AFRelationship). The Factur-X XML (domain/einvoice.py + adapters/facturx_xml.py) is embedded as
`factur-x.xml` with relationship Data, and the XMP carries the Factur-X extension schema, which the factur-x
library builds. Documents that cannot carry Factur-X (ETH, tokens, 3-decimal currencies, a missing party)
are still PDF/A-3b and print why.

The page shows what the XML states: net unit prices, net line amounts, the tax per rate and the totals.
A character the font cannot draw (CJK, emoji) is transliterated (`to_latin1`) rather than dropped silently.
Rendering is deterministic: every date in the file is the document's issue time, never the clock.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from importlib.metadata import version
from pathlib import Path

from facturx.facturx import FACTURX_LEVEL2xmp, generate_xmp_object
from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos
from fpdf.fonts import FontFace
from lxml import etree

from billing_service.adapters.facturx_xml import FACTURX_FILENAME, build_facturx_xml
from billing_service.domain.einvoice import (
    PLACEHOLDER_SELLER_NOTE,
    EInvoice,
    build_einvoice,
    facturx_blocker,
    missing_seller_fields,
)
from billing_service.domain.invoices import Invoice, format_money
from billing_service.domain.receipt import ReceiptParty, ReceiptView, build_receipt_view
from billing_service.domain.tax import format_rate

PDF_CONTENT_TYPE = "application/pdf"
PDFA_COMPLIANCE = "PDF/A-3B"
FACTURX_URN = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
FACTURX_LEVEL = "en16931"
FACTURX_NOTE = "Factur-X (EN 16931) e-invoice data is embedded in this PDF as factur-x.xml."
_FONT = "DejaVu"
_FONT_DIR = Path(__file__).resolve().parent / "fonts"
_FONT_FILES = {"": _FONT_DIR / "DejaVuSans.ttf", "B": _FONT_DIR / "DejaVuSans-Bold.ttf"}
_PRODUCER = "paygate billing"
# Stored beside each first rendering (billing migration 0130): which code produced the bytes a buyer received.
# Bump the revision with any change to what this module or the receipt view prints.
PDF_RENDERER_VERSION = " ".join(
    ["receipt-pdf/2", *(f"{library}/{version(library)}" for library in ("fpdf2", "drafthorse", "factur-x"))]
)

# Letters NFKD does not decompose, and punctuation that has a close ASCII spelling.
_SUBSTITUTES = {
    "Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h", "ı": "i", "Œ": "OE", "œ": "oe",
    "Ŋ": "N", "ŋ": "n", "ſ": "s", "ẞ": "SS", "€": "EUR", "–": "-", "—": "-", "‒": "-", "−": "-",
    "‘": "'", "’": "'", "‚": ",", "“": '"', "”": '"', "„": '"', "…": "...", "•": "*", "™": "(TM)",
    "\u2009": " ", "\u202f": " ", "\u2007": " ",
}  # fmt: skip


def _latin1(ch: str) -> bool:
    return ord(ch) < 256


def to_latin1(text: str) -> str:
    """A Latin-1 rendering of `text` that the core fonts can draw; never raises."""
    out: list[str] = []
    for ch in text:
        if _latin1(ch):
            out.append(ch)
        elif ch in _SUBSTITUTES:
            out.append(_SUBSTITUTES[ch])
        elif unicodedata.category(ch) == "Cf":
            continue  # zero-width joiners, direction marks: invisible anyway
        else:
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            out.append(base if base and all(_latin1(c) for c in base) else "?")
    return "".join(out)


@cache
def _drawable() -> frozenset[int]:
    """Code points both embedded fonts can draw."""
    maps = [set(TTFont(path, lazy=True).getBestCmap()) for path in _FONT_FILES.values()]
    return frozenset(set.intersection(*maps))


def printable(text: str) -> str:
    """`text` with every character the embedded fonts lack transliterated (to_latin1), never dropped silently."""
    drawable = _drawable()
    return "".join(
        ch if ord(ch) in drawable else to_latin1(ch) for ch in text if unicodedata.category(ch) != "Cf"
    )


class _ReceiptPdf(FPDF):
    def __init__(self, view: ReceiptView) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4", enforce_compliance=PDFA_COMPLIANCE)
        self._view = view
        for style, path in _FONT_FILES.items():
            self.add_font(_FONT, style, str(path))
        self.set_margins(18, 18, 18)
        self.set_auto_page_break(auto=True, margin=20)
        self.alias_nb_pages()

    def header(self) -> None:
        if self._view.is_void:
            # Drawn first so that the content prints over it, like a stamp behind the text.
            with self.local_context(text_color=(235, 170, 170)):
                self.set_font(_FONT, "B", 120)
                with self.rotation(35, x=self.w / 2, y=self.h / 2):
                    width = self.get_string_width("VOID")
                    self.text(self.w / 2 - width / 2, self.h / 2 + 15, "VOID")
        self.set_font(_FONT, "", 11)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font(_FONT, "", 8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 5, text=printable(f"{self._view.number} - page {self.page_no()}/{{nb}}"), align=Align.C)
        self.set_text_color(0, 0, 0)


def _line(pdf: FPDF, text: str, *, size: float = 10, style: str = "", height: float = 5) -> None:
    pdf.set_font(_FONT, style, size)
    pdf.multi_cell(0, height, text=printable(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align=Align.L)


def _party_block(pdf: FPDF, heading: str, party: ReceiptParty, x: float, width: float, top: float) -> float:
    """Write one party column starting at (x, top); returns the y where it ended."""
    pdf.set_xy(x, top)
    pdf.set_font(_FONT, "B", 8)
    pdf.set_text_color(90, 90, 90)
    pdf.cell(width, 5, text=heading.upper(), new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)
    rows = [(party.name, "B")] if party.name else []
    rows += [(line, "") for line in party.lines]
    if party.email:
        rows.append((party.email, ""))
    if party.tax_id:
        rows.append((f"VAT ID: {party.tax_id}", ""))
    for text, style in rows:
        pdf.set_x(x)
        pdf.set_font(_FONT, style, 10)
        pdf.multi_cell(width, 5, text=printable(text), new_x=XPos.LEFT, new_y=YPos.NEXT, align=Align.L)
    return pdf.get_y()


def _amount(einvoice: EInvoice, minor: int, sign: int) -> str:
    return format_money(sign * minor, einvoice.exponent, einvoice.currency)


def _draw(pdf: _ReceiptPdf, view: ReceiptView, einvoice: EInvoice, notes: list[str]) -> None:
    # Credit notes print negative amounts, as the HTML receipt and the API do; the XML states them positive
    # under type code 381, as EN 16931 requires.
    sign = -1 if einvoice.type_code == "381" else 1
    pdf.add_page()
    _line(pdf, view.title, size=20, style="B", height=10)
    if view.is_test_mode:
        _line(pdf, "TEST MODE - test document, not a real invoice or payment", size=9, style="B")
    pdf.ln(2)
    meta = [("Number", view.number), ("Issue date", view.issued_on)]
    if view.supplied_on:
        meta.append(("Supply date", view.supplied_on))
    meta += [("Status", view.status), ("Currency", view.currency)]
    for label, value in meta:
        pdf.set_font(_FONT, "", 10)
        pdf.cell(30, 5, text=label)
        pdf.set_font(_FONT, "B", 10)
        pdf.cell(0, 5, text=printable(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    pdf.ln(6)
    top = pdf.get_y()
    column = (pdf.epw - 10) / 2
    bottom = max(
        _party_block(pdf, "From", view.seller, pdf.l_margin, column, top),
        _party_block(pdf, "Bill to", view.buyer, pdf.l_margin + column + 10, column, top),
    )
    pdf.set_xy(pdf.l_margin, bottom + 6)

    pdf.set_font(_FONT, "", 9)
    rows = [
        (
            line.description,
            str(line.quantity),
            f"{'-' if sign < 0 else ''}{line.net_unit_price} {einvoice.currency}",
            _amount(einvoice, line.net_amount, sign),
        )
        for line in einvoice.lines
    ]
    # Money columns grow to fit their widest amount (an 18-decimal token amount is ~30 characters) so that a
    # number never wraps mid-digits; the description column takes what is left and wraps instead.
    money_texts = ["Net unit price"] + [printable(t) for row in rows for t in row[2:]]
    money_width = min(max(30.0, max(pdf.get_string_width(t) for t in money_texts) + 5), 62.0)
    qty_width = 14.0
    with pdf.table(
        col_widths=(pdf.epw - qty_width - 2 * money_width, qty_width, money_width, money_width),
        text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"),
        line_height=5,
        borders_layout="HORIZONTAL_LINES",
        first_row_as_headings=True,
        headings_style=FontFace(emphasis="BOLD", color=(90, 90, 90)),
        width=pdf.epw,
    ) as table:
        heading = table.row()
        for title in ("Description", "Qty", "Net unit price", "Net amount"):
            heading.cell(title)
        for row in rows:
            cells = table.row()
            for text in row:
                cells.cell(printable(text))

    pdf.ln(4)
    totals = [("Net total", _amount(einvoice, einvoice.net_total, sign), "")]
    for tax in einvoice.taxes:
        rate = format_rate(int(tax.rate_percent * 100))
        totals.append(
            (f"VAT {rate} % on {_amount(einvoice, tax.basis, sign)}", _amount(einvoice, tax.amount, sign), "")
        )
    totals.append(("Total", _amount(einvoice, einvoice.grand_total, sign), "B"))
    # The labels are the receipt view's (the HTML says the same); the amounts are the ones the XML states.
    if einvoice.prepaid:
        totals.append((view.settled_label, _amount(einvoice, einvoice.prepaid, sign), ""))
    totals.append((view.due_label, _amount(einvoice, einvoice.due, sign), ""))
    pdf.set_font(_FONT, "B", 11)
    label_width = max(60.0, max(pdf.get_string_width(printable(label)) for label, _, _ in totals) + 4)
    value_width = max(45.0, max(pdf.get_string_width(printable(value)) for _, value, _ in totals) + 2)
    for label, value, style in totals:
        pdf.set_font(_FONT, style, 11 if style else 10)
        pdf.set_x(pdf.l_margin + pdf.epw - label_width - value_width)
        pdf.cell(label_width, 6, text=printable(label))
        pdf.cell(value_width, 6, text=printable(value), align=Align.R, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    pdf.ln(6)
    if view.reference:
        _line(pdf, view.reference, style="B")
    if view.reason:
        _line(pdf, f"Reason: {view.reason}")
    if view.settlement_statement:
        _line(pdf, view.settlement_statement)
    pdf.ln(4)
    for note in notes:
        _line(pdf, note, size=8)
    _line(
        pdf,
        "Unit prices and line amounts are net of VAT. This document was issued electronically and is valid "
        "without a signature.",
        size=8,
    )
    if view.support_email:
        _line(pdf, f"Questions: {view.support_email}", size=8)


def _xmp(title: str, author: str, subject: str, timestamp: str, *, facturx: bool) -> str:
    """The XMP packet body (x:xmpmeta): PDF/A-3b identification, and the Factur-X extension schema when the
    XML is embedded, built by the factur-x library; dated with the issue time so output is deterministic."""
    metadata = {
        "pdfa3_flavor": "B",
        "title": title,
        "author": author,
        "subject": subject,
        "producer": _PRODUCER,
        "creator_tool": _PRODUCER,
        "timestamp": timestamp,
        "version": "1.0",
    }
    if facturx:
        metadata |= {
            "documenttype": "INVOICE",
            "xml_filename": FACTURX_FILENAME,
            "xmp_level": FACTURX_LEVEL2xmp[FACTURX_LEVEL],
            "urn": FACTURX_URN,
        }
    root = generate_xmp_object(metadata)
    # XMP wants rdf:about on every rdf:Description (empty: "this document"); the library leaves it out.
    rdf = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
    for description in root.iter(f"{{{rdf}}}Description"):
        description.set(f"{{{rdf}}}about", "")
    return etree.tostring(root, encoding="unicode")


def render_invoice_pdf(
    invoice: Invoice,
    *,
    credited_invoice_number: str | None = None,
    credit_note_number: str | None = None,
    support_email: str = "",
) -> bytes:
    """The PDF/A-3b bytes for `invoice`, with `factur-x.xml` embedded when the document can carry it.
    The same invoice always renders to the same bytes."""
    return render_invoice_documents(
        invoice,
        credited_invoice_number=credited_invoice_number,
        credit_note_number=credit_note_number,
        support_email=support_email,
    )[0]


def _void_notes(view: ReceiptView) -> tuple[str, ...]:
    """The VOID copy's XML says what its page's stamp says ("VOID: cancelled by credit note ..."): an
    accounting system imports the XML and never sees the stamp, and would book a cancelled invoice as valid."""
    if not view.is_void or not view.reference:
        return ()
    return (f"VOID: {view.reference[:1].lower()}{view.reference[1:]}",)


def render_invoice_documents(
    invoice: Invoice,
    *,
    credited_invoice_number: str | None = None,
    credit_note_number: str | None = None,
    support_email: str = "",
) -> tuple[bytes, bytes | None]:
    """(PDF, the Factur-X XML it embeds or None): the XML is returned too so callers and tests can read it."""
    view = build_receipt_view(
        invoice,
        credited_invoice_number=credited_invoice_number,
        credit_note_number=credit_note_number,
        support_email=support_email,
    )
    notes: list[str] = []
    if view.is_test_mode and missing_seller_fields(invoice.seller):
        notes.append(PLACEHOLDER_SELLER_NOTE)
    blocker = facturx_blocker(invoice)
    einvoice = build_einvoice(
        invoice, preceding_invoice_number=credited_invoice_number or "", extra_notes=_void_notes(view)
    )
    xml = build_facturx_xml(einvoice) if blocker is None else None
    notes.append(FACTURX_NOTE if xml is not None else blocker or "")

    pdf = _ReceiptPdf(view)
    title = f"{view.title.title()} {view.number}"
    pdf.set_title(printable(title))
    pdf.set_author(printable(view.seller.name))
    pdf.set_producer(_PRODUCER)
    pdf.set_creator(_PRODUCER)
    pdf.set_creation_date(invoice.issued_at)
    pdf.set_lang("en")
    pdf.set_xmp_metadata(
        _xmp(
            title,
            view.seller.name,
            f"{title} issued by {view.seller.name} on {view.issued_on}",
            invoice.issued_at.isoformat(timespec="seconds"),
            facturx=xml is not None,
        )
    )
    if xml is not None:
        pdf.embed_file(
            bytes=xml,
            basename=FACTURX_FILENAME,
            mime_type="text/xml",
            associated_file_relationship="Data",
            desc="Factur-X XML invoice (EN 16931)",
            modification_date=invoice.issued_at,
            creation_date=invoice.issued_at,
            compress=True,
        )
    _draw(pdf, view, einvoice, notes)
    return bytes(pdf.output()), xml
