"""README "Invoices and e-invoices": the invoice JSON "states its `line_items` net, like the page and the XML";
the PDF page shows "net unit prices, net line amounts, the VAT per rate and the totals".

Found on a running stack: the HTML rendering of the same document (`GET /v1/invoices/{id}/html`, the portal's
and the dashboard's receipt) still printed the gross figures as "Unit price" and "Amount" (12.00 for a 12.00
sale at 19 %) above a net total of 10.08, so one invoice number showed two different unit prices depending on
the format, and the HTML invoice lacked the net unit price an invoice must state. It now prints the lines
as the PDF, the XML and the JSON do.
"""

from __future__ import annotations

import html as html_lib
import re

import aiohttp
from billing_helpers import acme_profile, issue

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from support.stack import ServiceStack


async def _html(stack: ServiceStack, invoice_id: str, headers: dict[str, str]) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{stack.base_url}/v1/invoices/{invoice_id}/html", headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        page = await response.text()
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", page.split("</style>", 1)[1])).split())


async def test_the_html_receipt_states_the_lines_net_like_the_json(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant("Acme", "acme")
    await stack.billing.UpdateBillingProfile(
        billing_pb2.UpdateBillingProfileRequest(
            profile=acme_profile(merchant.id, "ACME"), mode=common_pb2.MODE_TEST
        ),
        timeout=5,
    )
    lines = [
        billing_pb2.LineItem(
            description="API access",
            quantity=3,
            unit_amount=common_pb2.Money(amount_minor="400", currency="EUR", exponent=2),
        )
    ]
    invoice = await issue(stack.billing, merchant.id, minor=1200, line_items=lines)
    status, body = await stack.request("GET", f"/v1/invoices/{invoice.id}", headers=merchant.headers)
    assert status == 200, body
    (line,) = body["line_items"]
    assert (line["unit_amount"], line["amount"], body["subtotal"]) == ("3.36", "10.08", "10.08")

    text = await _html(stack, invoice.id, merchant.headers)
    assert "API access 3 3.36 EUR 10.08 EUR" in text, text
    assert "Net unit price" in text and "Prices include tax" not in text

    status, body = await stack.request(
        "POST", f"/v1/invoices/{invoice.id}/void", json={"reason": "cancelled"}, headers=merchant.headers
    )
    assert status == 200, body
    note_text = await _html(stack, body["credit_note"]["id"], merchant.headers)
    assert "API access 3 -3.36 EUR -10.08 EUR" in note_text, note_text
