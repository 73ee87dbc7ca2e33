"""The API's invoice object states its line items net, as the PDF and the Factur-X XML do, so they add up to
`subtotal`; the gross each line was sold at stays available as `gross_unit_amount` / `gross_amount`.

The outside walk found `line_items: [{"unit_amount": "10.00", "amount": "10.00"}]` next to `subtotal: "8.40"`
on a 19 % invoice whose PDF prints "Net unit price 8.40". Billing stores gross lines (what was paid, the
proto's documented meaning) and derives the net view (domain/einvoice.py); the API object rendered the gross
lines as they came, so the fix is in its rendering, checked here against billing's own EN 16931 view.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from billing_service.domain.credit_notes import build_refund_credit_note
from billing_service.domain.einvoice import build_einvoice, to_major
from billing_service.domain.invoices import Invoice, LineItem, Party, build_credit_note, build_invoice
from billing_service.domain.tax import MAX_TAX_RATE_BPS
from billing_service.entrypoints.proto_mapping import invoice_to_proto
from paygate_runtime.api_objects import invoice_json
from paygate_runtime.money import format_major

ISSUED_AT = datetime(2026, 3, 14, 10, 22, tzinfo=UTC)
CURRENCIES = {0: "JPY", 2: "EUR", 3: "BHD", 18: "ETH"}


def _invoice(total: int, rate_bps: int, lines: list[LineItem] | None = None, exponent: int = 2) -> Invoice:
    return build_invoice(
        id="inv-1", merchant_id="m1", mode="live", session_id="s1", amount_minor=total, currency=CURRENCIES[exponent],
        exponent=exponent, seller=Party(name="Acme"), prefix="INV", sequence=1, issued_at=ISSUED_AT,
        tax_rate_bps=rate_bps, line_items=lines or (),
    )  # fmt: skip


def test_the_walks_invoice_states_net_lines_that_add_up_to_the_subtotal() -> None:
    body = invoice_json(invoice_to_proto(_invoice(1_000, 1_900)))
    assert (body["subtotal"], body["tax"], body["amount"]) == ("8.40", "1.60", "10.00")
    (line,) = body["line_items"]
    assert (line["unit_amount"], line["unit_amount_minor"], line["amount"], line["amount_minor"]) == (
        "8.40", 840, "8.40", 840,
    )  # fmt: skip
    assert (line["gross_unit_amount"], line["gross_unit_amount_minor"]) == ("10.00", 1_000)
    assert (line["gross_amount"], line["gross_amount_minor"]) == ("10.00", 1_000)


def test_a_unit_price_finer_than_the_currency_is_the_pdfs() -> None:
    # 3 x 10.00 at 19 %: net 25.21, one unit 8.4033..., printed to four digits past the cent like the PDF.
    body = invoice_json(invoice_to_proto(_invoice(3_000, 1_900, [LineItem("Seat", 3, 1_000)])))
    (line,) = body["line_items"]
    assert (line["amount"], line["unit_amount"], line["unit_amount_minor"]) == ("25.21", "8.403333", 840)
    assert body["subtotal"] == "25.21"


@st.composite
def _documents(draw: st.DrawFn) -> Invoice:
    exponent = draw(st.sampled_from(sorted(CURRENCIES)))
    rate = draw(st.one_of(st.sampled_from([0, 700, 1_900, 2_000]), st.integers(0, MAX_TAX_RATE_BPS)))
    lines = draw(
        st.lists(
            st.builds(
                LineItem, st.sampled_from(["Plan", "Seat", "Setup"]), st.integers(1, 7), st.integers(0, 10**9)
            ),
            min_size=1,
            max_size=5,
        ).filter(lambda items: sum(i.amount for i in items) > 0)
    )
    invoice = _invoice(sum(i.amount for i in lines), rate, lines, exponent)
    kind = draw(st.sampled_from(["invoice", "void", "refund"]))
    if kind == "void":
        return build_credit_note(invoice, id="cn-1", prefix="INV", sequence=2, issued_at=ISSUED_AT)
    if kind == "refund":
        amount = draw(st.integers(1, invoice.total))
        return build_refund_credit_note(
            invoice, amount, already_credited=0, id="cn-2", prefix="INV", sequence=2, issued_at=ISSUED_AT,
            reason="refund",
        )  # fmt: skip
    return invoice


@given(_documents())
def test_line_items_are_net_add_up_to_the_subtotal_and_match_the_e_invoice(document: Invoice) -> None:
    body = invoice_json(invoice_to_proto(document))
    lines = body["line_items"]
    assert sum(line["amount_minor"] for line in lines) == body["subtotal_minor"] == document.subtotal
    sign = -1 if document.is_credit_note else 1
    einvoice = build_einvoice(document)
    for line, item, net in zip(lines, document.line_items, einvoice.lines, strict=True):
        assert line["amount_minor"] == sign * net.net_amount
        assert line["amount"] == format_major(sign * net.net_amount, document.exponent)
        price = -net.net_unit_price if sign < 0 and net.net_unit_price else net.net_unit_price
        assert line["unit_amount"] == f"{price:f}"
        assert (
            abs(to_major(line["unit_amount_minor"], document.exponent) - price)
            <= to_major(1, document.exponent) / 2
        )
        assert (line["gross_unit_amount_minor"], line["gross_amount_minor"]) == (
            item.unit_amount,
            item.amount,
        )
        assert line["quantity"] == item.quantity and line["description"] == item.description
