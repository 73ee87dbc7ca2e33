"""Render an invoice or credit note as a PDF with fpdf2 and its built-in core fonts.

Core fonts need no font file (nothing to ship, nothing to find on the host) but only cover Latin-1, so
text is transliterated first: accents outside Latin-1 are stripped ("Łódź" -> "Lodz"), common punctuation
is spelled out, and anything left (CJK, emoji) becomes "?". The HTML receipt keeps the exact spelling.
"""

from __future__ import annotations

import unicodedata

from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos
from fpdf.fonts import FontFace

from billing_service.domain.invoices import Invoice
from billing_service.domain.receipt import ReceiptParty, ReceiptView, build_receipt_view

PDF_CONTENT_TYPE = "application/pdf"
_FONT = "Helvetica"
_PRODUCER = "paygate billing"

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


class _ReceiptPdf(FPDF):
    def __init__(self, view: ReceiptView) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self._view = view
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
        self.cell(0, 5, text=to_latin1(f"{self._view.number} - page {self.page_no()}/{{nb}}"), align=Align.C)
        self.set_text_color(0, 0, 0)


def _line(pdf: FPDF, text: str, *, size: float = 10, style: str = "", height: float = 5) -> None:
    pdf.set_font(_FONT, style, size)
    pdf.multi_cell(0, height, text=to_latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align=Align.L)


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
        rows.append((f"Tax ID: {party.tax_id}", ""))
    for text, style in rows:
        pdf.set_x(x)
        pdf.set_font(_FONT, style, 10)
        pdf.multi_cell(width, 5, text=to_latin1(text), new_x=XPos.LEFT, new_y=YPos.NEXT, align=Align.L)
    return pdf.get_y()


def _draw(pdf: _ReceiptPdf, view: ReceiptView) -> None:
    pdf.add_page()
    _line(pdf, view.title, size=20, style="B", height=10)
    if view.is_test_mode:
        _line(pdf, "TEST MODE - not a real payment", size=9, style="B")
    pdf.ln(2)
    meta = [("Number", view.number), ("Issue date", view.issued_at)]
    if view.supplied_on:
        meta.append(("Supply date", view.supplied_on))
    meta += [("Status", view.status), ("Currency", view.currency)]
    for label, value in meta:
        pdf.set_font(_FONT, "", 10)
        pdf.cell(30, 5, text=label)
        pdf.set_font(_FONT, "B", 10)
        pdf.cell(0, 5, text=to_latin1(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    pdf.ln(6)
    top = pdf.get_y()
    column = (pdf.epw - 10) / 2
    bottom = max(
        _party_block(pdf, "From", view.seller, pdf.l_margin, column, top),
        _party_block(pdf, "Bill to", view.buyer, pdf.l_margin + column + 10, column, top),
    )
    pdf.set_xy(pdf.l_margin, bottom + 6)

    pdf.set_font(_FONT, "", 9)
    # Money columns grow to fit their widest amount (an 18-decimal token amount is ~30 characters) so that a
    # number never wraps mid-digits; the description column takes what is left and wraps instead.
    money_texts = ["Unit price"] + [
        to_latin1(t) for line in view.lines for t in (line.unit_amount, line.amount)
    ]
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
        for title in ("Description", "Qty", "Unit price", "Amount"):
            heading.cell(title)
        for item in view.lines:
            row = table.row()
            for text in (item.description, item.quantity, item.unit_amount, item.amount):
                row.cell(to_latin1(text))

    pdf.ln(4)
    totals = [
        ("Net", view.subtotal, ""),
        (view.tax_label, view.tax, ""),
        ("Total (tax included)", view.total, "B"),
    ]
    pdf.set_font(_FONT, "B", 11)
    value_width = max(50.0, max(pdf.get_string_width(to_latin1(value)) for _, value, _ in totals) + 2)
    for label, value, style in totals:
        pdf.set_font(_FONT, style, 11 if style else 10)
        pdf.set_x(pdf.l_margin + pdf.epw - 60 - value_width)
        pdf.cell(60, 6, text=to_latin1(label))
        pdf.cell(value_width, 6, text=to_latin1(value), align=Align.R, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    pdf.ln(6)
    if view.reference:
        _line(pdf, view.reference, style="B")
    if view.reason:
        _line(pdf, f"Reason: {view.reason}")
    pdf.ln(4)
    _line(
        pdf,
        "Prices include tax. This document was issued electronically and is valid without a signature.",
        size=8,
    )
    if view.support_email:
        _line(pdf, f"Questions: {view.support_email}", size=8)


def render_invoice_pdf(
    invoice: Invoice,
    *,
    credited_invoice_number: str | None = None,
    credit_note_number: str | None = None,
    support_email: str = "",
) -> bytes:
    """The PDF bytes for `invoice`. The same invoice always renders to the same bytes: the document's
    creation date is its issue time, never the clock."""
    view = build_receipt_view(
        invoice,
        credited_invoice_number=credited_invoice_number,
        credit_note_number=credit_note_number,
        support_email=support_email,
    )
    pdf = _ReceiptPdf(view)
    pdf.set_title(to_latin1(f"{view.title.title()} {view.number}"))
    pdf.set_author(to_latin1(view.seller.name))
    pdf.set_producer(_PRODUCER)
    pdf.set_creator(_PRODUCER)
    pdf.set_creation_date(invoice.issued_at)
    _draw(pdf, view)
    return bytes(pdf.output())
