"""A sale refunded in parts credits exactly its net and VAT (the outside walk's case), over real gRPC and
Postgres: each IssueCreditNote allocates from what the invoice's earlier credit notes credited as stored."""

from __future__ import annotations

import uuid

import facturx
from billing_helpers import LIVE, acme_profile, issue, money

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from support.stack import ServiceStack


def _profile(merchant: str) -> billing_pb2.BillingProfile:
    return acme_profile(merchant, "VAT")


async def _credit(stack: ServiceStack, merchant: str, session_id: str, minor: int) -> billing_pb2.Invoice:
    return await stack.billing.IssueCreditNote(
        billing_pb2.IssueCreditNoteRequest(
            merchant_id=merchant,
            mode=LIVE,
            session_id=session_id,
            refund_id=str(uuid.uuid4()),
            amount=money(minor),
            reason="refund",
        ),
        timeout=10,
    )


def _minor(amount: common_pb2.Money) -> int:
    return int(amount.amount_minor)


async def test_a_full_refund_in_parts_credits_exactly_the_invoices_net_and_vat(stack: ServiceStack) -> None:
    merchant = str(uuid.uuid4())
    await stack.billing.UpdateBillingProfile(
        billing_pb2.UpdateBillingProfileRequest(profile=_profile(merchant), mode=LIVE)
    )
    buyer = billing_pb2.Party(name="Kunde SARL", address=common_pb2.Address(country="FR"))
    invoice = await issue(stack.billing, merchant, mode=LIVE, minor=1000, buyer=buyer)
    assert (_minor(invoice.subtotal), _minor(invoice.tax)) == (840, 160)

    first = await _credit(stack, merchant, invoice.session_id, 333)
    last = await _credit(stack, merchant, invoice.session_id, 667)
    assert (_minor(first.subtotal), _minor(first.tax), _minor(first.total)) == (-280, -53, -333)
    assert (_minor(last.subtotal), _minor(last.tax), _minor(last.total)) == (-560, -107, -667)

    # The note that completed the credit still carries valid Factur-X (type 381, positive amounts).
    rendered = await stack.billing.RenderInvoice(
        billing_pb2.RenderInvoiceRequest(
            merchant_id=merchant, invoice_id=last.id, format=billing_pb2.RENDER_FORMAT_PDF, mode=LIVE
        ),
        timeout=30,
    )
    _, xml = facturx.get_xml_from_pdf(rendered.content, check_xsd=False)
    assert xml and facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    assert b"<ram:TaxBasisTotalAmount>5.60</ram:TaxBasisTotalAmount>" in xml
    assert b'<ram:TaxTotalAmount currencyID="EUR">1.07</ram:TaxTotalAmount>' in xml


async def test_three_refunds_never_credit_more_vat_than_the_invoice(stack: ServiceStack) -> None:
    merchant = str(uuid.uuid4())
    await stack.billing.UpdateBillingProfile(
        billing_pb2.UpdateBillingProfileRequest(profile=_profile(merchant), mode=LIVE)
    )
    invoice = await issue(stack.billing, merchant, mode=LIVE, minor=9999)
    net, tax = _minor(invoice.subtotal), _minor(invoice.tax)
    credited_net = credited_tax = 0
    for part in (1, 4, 9994):
        note = await _credit(stack, merchant, invoice.session_id, part)
        credited_net, credited_tax = credited_net - _minor(note.subtotal), credited_tax - _minor(note.tax)
        assert credited_net <= net and credited_tax <= tax
    assert (credited_net, credited_tax) == (net, tax)
