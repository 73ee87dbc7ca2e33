"""The billing profile per (merchant, mode) over real gRPC (contract §6a): reads and writes name the mode
(unspecified is test, for internal callers), and invoices, void credit notes and refund credit notes each
take the seller and prefix of their own document's mode."""

from __future__ import annotations

import uuid

import grpc
from billing_helpers import LIVE, TEST, issue, money, rpc_failure

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from support.stack import ServiceStack


def _profile(merchant: str, name: str, prefix: str) -> billing_pb2.BillingProfile:
    return billing_pb2.BillingProfile(
        merchant_id=merchant,
        seller=billing_pb2.Party(
            name=name,
            address=common_pb2.Address(lines=["Hauptstr. 1", "10115 Berlin"], country="DE"),
            tax_id="DE123456789",
        ),
        invoice_prefix=prefix,
    )


async def test_each_mode_has_its_own_profile(stack: ServiceStack) -> None:
    billing, merchant = stack.billing, str(uuid.uuid4())
    # Unspecified mode: the test world's profile (internal callers only; the gateway always names the mode).
    saved = await billing.UpdateBillingProfile(
        billing_pb2.UpdateBillingProfileRequest(profile=_profile(merchant, "Sandbox Ltd", "TWORLD"))
    )
    assert (saved.mode, saved.invoice_prefix, saved.complete) == (TEST, "TWORLD", True)
    test = await billing.GetBillingProfile(
        billing_pb2.GetBillingProfileRequest(merchant_id=merchant, mode=TEST)
    )
    assert (test.mode, test.seller.name) == (TEST, "Sandbox Ltd")
    # The live world never saw that write: it still has the defaults, and says what it lacks.
    live = await billing.GetBillingProfile(
        billing_pb2.GetBillingProfileRequest(merchant_id=merchant, mode=LIVE)
    )
    assert (live.mode, live.invoice_prefix, live.seller.name, live.complete) == (LIVE, "INV", "", False)
    assert list(live.missing_fields) == ["seller_name", "seller_address", "seller_country", "seller_tax_id"]

    await billing.UpdateBillingProfile(
        billing_pb2.UpdateBillingProfileRequest(profile=_profile(merchant, "Real AG", "LWORLD"), mode=LIVE)
    )
    test = await billing.GetBillingProfile(billing_pb2.GetBillingProfileRequest(merchant_id=merchant))
    assert (test.mode, test.seller.name, test.invoice_prefix) == (TEST, "Sandbox Ltd", "TWORLD")
    live = await billing.GetBillingProfile(
        billing_pb2.GetBillingProfileRequest(merchant_id=merchant, mode=LIVE)
    )
    assert (live.seller.name, live.invoice_prefix, live.complete) == ("Real AG", "LWORLD", True)

    # A mode that is neither is refused, naming the field.
    bad = billing_pb2.GetBillingProfileRequest(merchant_id=merchant, mode=7)  # type: ignore[arg-type]
    assert await rpc_failure(billing.GetBillingProfile(bad)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid_mode",
    )


async def test_documents_take_the_profile_of_their_own_mode(stack: ServiceStack) -> None:
    billing, merchant = stack.billing, str(uuid.uuid4())
    await billing.UpdateBillingProfile(
        billing_pb2.UpdateBillingProfileRequest(
            profile=_profile(merchant, "Sandbox Ltd", "TWORLD"), mode=TEST
        )
    )
    await billing.UpdateBillingProfile(
        billing_pb2.UpdateBillingProfileRequest(profile=_profile(merchant, "Real AG", "LWORLD"), mode=LIVE)
    )

    live_invoice = await issue(billing, merchant, mode=LIVE, minor=5000)
    test_invoice = await issue(billing, merchant, mode=TEST, minor=5000)
    assert (live_invoice.number[:7], live_invoice.seller.name) == ("LWORLD-", "Real AG")
    assert (test_invoice.number[:7], test_invoice.seller.name) == ("TWORLD-", "Sandbox Ltd")

    # The void's credit note is numbered with the prefix of the voided invoice's mode.
    voided = await billing.VoidInvoice(
        billing_pb2.VoidInvoiceRequest(
            merchant_id=merchant, invoice_id=live_invoice.id, reason="mistake", mode=LIVE
        )
    )
    assert voided.credit_note.number.startswith("LWORLD-"), voided.credit_note.number
    assert voided.credit_note.seller.name == "Real AG"

    # A refund's credit note likewise (contract §8).
    refunded = await issue(billing, merchant, mode=LIVE, minor=7000)
    credit = await billing.IssueCreditNote(
        billing_pb2.IssueCreditNoteRequest(
            merchant_id=merchant,
            mode=LIVE,
            session_id=refunded.session_id,
            refund_id=str(uuid.uuid4()),
            amount=money(1000),
            reason="partial refund",
        )
    )
    assert credit.number.startswith("LWORLD-"), credit.number
    assert credit.seller.name == "Real AG"

    # The HTML receipt's support contact (looked up when rendering) is the document's mode's too.
    for mode, name, prefix, email in (
        (LIVE, "Real AG", "LWORLD", "live@real.example"),
        (TEST, "Sandbox Ltd", "TWORLD", "dev@sb.example"),
    ):
        profile = _profile(merchant, name, prefix)
        profile.support_email = email
        await billing.UpdateBillingProfile(
            billing_pb2.UpdateBillingProfileRequest(profile=profile, mode=mode)
        )
    for mode, invoice, email, other in (
        (LIVE, refunded, "live@real.example", "dev@sb.example"),
        (TEST, test_invoice, "dev@sb.example", "live@real.example"),
    ):
        rendered = await billing.RenderInvoice(
            billing_pb2.RenderInvoiceRequest(
                merchant_id=merchant, invoice_id=invoice.id, format=billing_pb2.RENDER_FORMAT_HTML, mode=mode
            )
        )
        html = rendered.content.decode()
        assert email in html and other not in html
