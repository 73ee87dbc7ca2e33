"""The portal's "Send me a code" mail names the seller, as the access mail does: `From: <Merchant name>
<sender>`, `Reply-To:` the merchant's contact address (support_email, else the seller's email), and the body
says which seller it is about. It used to come `From: <sender>` with no name, no Reply-To and no seller in the
text, so the customer could not tell whose receipts it was about, and an answer reached nobody. Over real HTTP
against a test-started stack of the real services, with the SMTP sink standing in for the mailbox.
"""

from __future__ import annotations

from email.message import EmailMessage

from portal_helpers import csrf, mails, open_portal, page, paid_session, post_form

from paygate_dev.smtp_sink import SmtpSink
from support import polling
from support.stack import ServiceStack

BUYER = "erin@example.com"


async def _code_mail(stack: ServiceStack, sink: SmtpSink, token: str) -> EmailMessage:
    cookie = await open_portal(stack, token)
    _status, html = await page(stack, cookie)
    status, body = await post_form(stack, cookie, "/access/receipts/code", [("csrf_token", csrf(html))])
    assert status == 200 and body["sent"] is True, body

    async def arrived() -> EmailMessage | None:
        found = [
            m
            for m in mails(sink.folder)
            if m["To"] == BUYER and m["Subject"] == "Your code to see your receipts"
        ]
        return found[0] if found else None

    mail: EmailMessage = await polling.eventually(arrived, timeout=10, interval=0.1, what="code mail")
    return mail


async def test_the_code_mail_comes_from_the_seller_with_its_reply_to(
    stack: ServiceStack, smtp_sink: SmtpSink
) -> None:
    merchant = await stack.create_merchant(name="Acme Widgets")
    status, body = await stack.request(
        "PUT", "/v1/billing_profile", json={"support_email": "help@acme.test"}, headers=merchant.headers
    )
    assert status == 200, body
    paid = await paid_session(stack, merchant, customer_email=BUYER)
    mail = await _code_mail(stack, smtp_sink, paid.token)
    [sender] = mail["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Acme Widgets", "paygate@example.test"), mail["From"]
    assert mail["Reply-To"] == "help@acme.test"
    assert "Acme Widgets" in mail.get_content()


async def test_without_a_contact_address_the_code_mail_has_no_reply_to(
    stack: ServiceStack, smtp_sink: SmtpSink
) -> None:
    merchant = await stack.create_merchant(name="Quiet Shop")
    paid = await paid_session(stack, merchant, customer_email=BUYER)
    mail = await _code_mail(stack, smtp_sink, paid.token)
    [sender] = mail["From"].addresses
    assert sender.display_name == "Quiet Shop" and mail["Reply-To"] is None
    assert "Quiet Shop" in mail.get_content()
