"""README "Invoices and e-invoices": "a download after its void gets a copy stamped VOID, stored in its turn, so
a voided invoice is never served as a copy that reads as valid", and the Factur-X XML states what the page says.

Found on a running stack: the VOID copy's page said "VOID" and "Cancelled by credit note ...", but the
factur-x.xml embedded in that same PDF (what an accounting system imports, never looking at the page) was
the valid invoice's XML word for word. The VOID copy's XML now says so in a note naming the credit note.
"""

from __future__ import annotations

import io

import aiohttp
from billing_helpers import acme_profile, issue
from pypdf import PdfReader

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from support.stack import ServiceStack


async def _pdf(stack: ServiceStack, invoice_id: str, headers: dict[str, str]) -> tuple[str, str]:
    """(the page's text, the embedded factur-x.xml) of the invoice's PDF download."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{stack.base_url}/v1/invoices/{invoice_id}/pdf", headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        reader = PdfReader(io.BytesIO(await response.read()))
    (xml,) = reader.attachments["factur-x.xml"]
    return reader.pages[0].extract_text(), xml.decode()


async def test_the_void_copy_of_an_invoice_says_void_in_its_facturx_xml(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant("Acme", "acme")
    await stack.billing.UpdateBillingProfile(
        billing_pb2.UpdateBillingProfileRequest(
            profile=acme_profile(merchant.id, "ACME"), mode=common_pb2.MODE_TEST
        ),
        timeout=5,
    )
    buyer = billing_pb2.Party(
        name="Erika Muster", email="erika@example.com", address=common_pb2.Address(country="DE")
    )
    invoice = await issue(stack.billing, merchant.id, minor=1200, buyer=buyer)

    valid_page, valid_xml = await _pdf(stack, invoice.id, merchant.headers)
    assert "VOID" not in valid_page and "VOID" not in valid_xml

    status, body = await stack.request(
        "POST",
        f"/v1/invoices/{invoice.id}/void",
        json={"reason": "order cancelled"},
        headers=merchant.headers,
    )
    assert status == 200, body
    note_number = body["credit_note"]["number"]

    void_page, void_xml = await _pdf(stack, invoice.id, merchant.headers)
    assert f"Cancelled by credit note {note_number}" in void_page
    assert f"VOID: cancelled by credit note {note_number}" in void_xml, void_xml
    # The copy downloaded while valid stays as it was: only the void copy carries the note.
    assert valid_xml != void_xml
