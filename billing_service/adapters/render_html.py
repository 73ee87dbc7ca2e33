"""Render an invoice or credit note as a standalone, print-friendly HTML receipt."""

from __future__ import annotations

from functools import cache
from importlib.metadata import version

import jinja2

from billing_service.domain.invoices import Invoice
from billing_service.domain.receipt import build_receipt_view

HTML_CONTENT_TYPE = "text/html; charset=utf-8"
_TEMPLATE = "receipt.html.j2"
# Stored beside each first rendering (billing migration 0130); bump with any change to what the receipt prints.
HTML_RENDERER_VERSION = f"receipt-html/2 jinja2/{version('jinja2')}"


@cache
def _environment() -> jinja2.Environment:
    # autoescape=True regardless of the template's extension: every value on a receipt (buyer names, line
    # descriptions, addresses) comes from merchants or customers and must never become markup.
    return jinja2.Environment(
        loader=jinja2.PackageLoader("billing_service.adapters", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_invoice_html(
    invoice: Invoice,
    *,
    credited_invoice_number: str | None = None,
    credit_note_number: str | None = None,
    support_email: str = "",
) -> str:
    """The complete HTML document (inline CSS, no external assets) for `invoice`."""
    view = build_receipt_view(
        invoice,
        credited_invoice_number=credited_invoice_number,
        credit_note_number=credit_note_number,
        support_email=support_email,
    )
    return _environment().get_template(_TEMPLATE).render(view=view)
