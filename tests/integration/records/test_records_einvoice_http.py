"""Live sessions need a complete seller profile, and a live invoice's PDF is PDF/A-3 with Factur-X inside
(contract §9), through the real gateway, keys and billing services."""

from __future__ import annotations

import io
import time
import uuid

import facturx
import grpc
from lxml import etree
from pypdf import PdfReader

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate.session.v1 import session_pb2
from paygate_dev.devtools.signing import stripe_delivery
from paygate_dev.devtools.stripe_fixtures import build_stripe_event
from support import polling
from support.stack import Merchant, ServiceStack

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}


async def _merchant_without_profile(stack: ServiceStack, mode: int) -> Merchant:
    reply = await stack.keys.CreateMerchant(
        keys_pb2.CreateMerchantRequest(name="Bare", key_prefix="bare", mode=mode), timeout=5
    )
    return Merchant(reply.merchant.id, reply.secret_key, "Bare")


async def test_a_live_session_without_a_seller_profile_is_refused(stack: ServiceStack) -> None:
    merchant = await _merchant_without_profile(stack, common_pb2.MODE_LIVE)
    body = {"amount": "25.00", "currency": "EUR"}
    headers = {**merchant.headers, "Idempotency-Key": f"k-{uuid.uuid4()}"}
    status, reply = await stack.request("POST", "/v1/sessions", json=body, headers=headers)
    assert status == 409, reply
    assert reply["error"]["code"] == "billing_profile_incomplete"
    assert "seller_tax_id" in reply["error"]["message"]

    # A partial profile is still refused, and says what is left.
    await stack.billing.UpdateBillingProfile(
        billing_pb2.UpdateBillingProfileRequest(
            profile=billing_pb2.BillingProfile(
                merchant_id=merchant.id, seller=billing_pb2.Party(name="Bare Ltd")
            ),
            mode=common_pb2.MODE_LIVE,
        ),
        timeout=5,
    )
    status, reply = await stack.request("POST", "/v1/sessions", json=body, headers=headers)
    assert (status, reply["error"]["code"]) == (409, "billing_profile_incomplete")
    assert "seller_name" not in reply["error"]["message"]
    profile = await stack.billing.GetBillingProfile(
        billing_pb2.GetBillingProfileRequest(merchant_id=merchant.id, mode=common_pb2.MODE_LIVE), timeout=5
    )
    assert (profile.complete, list(profile.missing_fields)) == (
        False,
        ["seller_address", "seller_country", "seller_tax_id"],
    )

    # Once complete, the very same Idempotency-Key goes through: the refusal was never stored as its answer.
    await stack.complete_billing_profile(merchant.id, "Bare")
    status, reply = await stack.request("POST", "/v1/sessions", json=body, headers=headers)
    assert status == 201, reply


async def test_test_mode_needs_no_seller_profile(stack: ServiceStack) -> None:
    merchant = await _merchant_without_profile(stack, common_pb2.MODE_TEST)
    status, reply = await stack.request(
        "POST", "/v1/sessions", json={"amount": "25.00", "currency": "EUR"}, headers=merchant.headers
    )
    assert status == 201, reply


async def test_a_live_invoice_pdf_is_pdfa3_with_valid_factur_x(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant("Live", "live", mode="live")
    invoice = await stack.billing.IssueInvoice(
        billing_pb2.IssueInvoiceRequest(
            merchant_id=merchant.id,
            mode=common_pb2.MODE_LIVE,
            session_id=str(uuid.uuid4()),
            amount=common_pb2.Money(amount_minor="11900", currency="EUR", exponent=2),
            buyer=billing_pb2.Party(
                name="Kunde SARL",
                address=common_pb2.Address(lines=["2 rue de la Paix", "75002 Paris"], country="FR"),
            ),
        ),
        timeout=10,
    )
    assert stack.http is not None
    async with stack.http.get(
        f"{stack.base_url}/v1/invoices/{invoice.id}/pdf", headers=merchant.headers
    ) as response:
        assert response.status == 200
        assert response.content_type == "application/pdf"
        pdf = await response.read()
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.pdf_header == "%PDF-1.7"
    xml = reader.attachments["factur-x.xml"][0]
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    root = etree.fromstring(xml)
    assert root.findtext(".//rsm:ExchangedDocument/ram:ID", namespaces=NS) == invoice.number
    assert root.findtext(".//ram:SellerTradeParty/ram:Name", namespaces=NS) == "Live GmbH"
    assert root.findtext(".//ram:GrandTotalAmount", namespaces=NS) == "119.00"
    text = " ".join(page.extract_text() for page in reader.pages)
    assert invoice.number in text and "Live GmbH" in text and "Kunde SARL" in text
    assert "factur-x.xml" in text
    packet = reader.xmp_metadata.rdf_root.toxml() if reader.xmp_metadata else ""
    assert "<pdfaid:part>3</pdfaid:part>" in packet and "<pdfaid:conformance>B</pdfaid:conformance>" in packet


async def test_an_invoice_without_buyer_details_is_pdfa3_and_says_why(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant("Live", "live", mode="live")
    invoice = await stack.billing.IssueInvoice(
        billing_pb2.IssueInvoiceRequest(
            merchant_id=merchant.id,
            mode=common_pb2.MODE_LIVE,
            session_id=str(uuid.uuid4()),
            amount=common_pb2.Money(amount_minor="500", currency="EUR", exponent=2),
            buyer=billing_pb2.Party(email="jo@example.com"),
        ),
        timeout=10,
    )
    assert stack.http is not None
    async with stack.http.get(
        f"{stack.base_url}/v1/invoices/{invoice.id}/pdf", headers=merchant.headers
    ) as response:
        assert response.status == 200
        pdf = await response.read()
    reader = PdfReader(io.BytesIO(pdf))
    assert not reader.attachments
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert "needs the buyer's name and country" in text


async def test_the_session_customer_becomes_the_invoice_buyer(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant("Live", "live", mode="live")
    customer = {
        "name": "Kunde SARL",
        "country": "FR",
        "address": "2 rue de la Paix\n75002 Paris",
        "vat_id": "FR1",
    }
    status, session = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": "119.00", "currency": "EUR", "provider": "stripe", "customer": customer},
        headers=merchant.headers,
    )
    assert status == 201, session
    stored = await stack.session.GetSession(
        session_pb2.GetSessionRequest(session_id=session["id"]), timeout=5
    )
    assert (stored.customer.name, stored.customer.country, list(stored.customer.address_lines)) == (
        "Kunde SARL",
        "FR",
        ["2 rue de la Paix", "75002 Paris"],
    )

    event = build_stripe_event(
        "payment_intent.succeeded", session["id"], session["amount_minor"], "EUR", livemode=True
    )
    raw, headers = stripe_delivery(
        event, stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"].split(",")[0], int(time.time())
    )
    status, reply = await stack.request("POST", "/webhooks/stripe", data=raw, headers=headers)
    assert status == 200, reply

    async def invoiced() -> billing_pb2.Invoice | None:
        try:
            return await stack.billing.GetInvoice(
                billing_pb2.GetInvoiceRequest(merchant_id=merchant.id, session_id=session["id"]), timeout=5
            )
        except grpc.aio.AioRpcError:
            return None

    invoice = await polling.eventually(invoiced, timeout=30, interval=0.1, what="the session's invoice")
    assert (invoice.buyer.name, invoice.buyer.tax_id, invoice.buyer.address.country) == (
        "Kunde SARL",
        "FR1",
        "FR",
    )
    rendered = await stack.billing.RenderInvoice(
        billing_pb2.RenderInvoiceRequest(
            merchant_id=merchant.id, invoice_id=invoice.id, format=billing_pb2.RENDER_FORMAT_PDF
        ),
        timeout=10,
    )
    xml = PdfReader(io.BytesIO(rendered.content)).attachments["factur-x.xml"][0]
    root = etree.fromstring(xml)
    assert root.findtext(".//ram:BuyerTradeParty/ram:Name", namespaces=NS) == "Kunde SARL"


async def test_a_bad_customer_is_a_400_naming_the_field(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    for customer, code in (
        ({"country": "France"}, "invalid_customer_country"),
        ({"name": 7}, "invalid_customer_name"),
        ({"email": "x@example.com"}, "invalid_customer"),
    ):
        status, reply = await stack.request(
            "POST", "/v1/sessions", json={"amount": "1.00", "customer": customer}, headers=merchant.headers
        )
        assert (status, reply["error"]["code"]) == (400, code), reply
