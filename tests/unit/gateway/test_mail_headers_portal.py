"""The portal's two mails as they go on the wire: each carries `Date:` (RFC 5322 §3.6), and the code mail
names the seller in From and in its text, with the merchant's contact address as Reply-To."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import aiosmtplib

from webhook_gateway.entrypoints import portal_email_proof, portal_support

SETTINGS = portal_support.SupportMailSettings("127.0.0.1", 2525, "paygate@example.test")


def _wire(message: EmailMessage) -> EmailMessage:
    """The message as a reader parses what aiosmtplib sends."""
    parsed = email.message_from_bytes(aiosmtplib.email.flatten_message(message), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _assert_dated_now(message: EmailMessage) -> None:
    sent = parsedate_to_datetime(str(message["Date"]))
    assert sent.tzinfo is not None
    assert abs(sent - datetime.now(UTC)) < timedelta(seconds=5)


def _code_mail(**seller: str) -> EmailMessage:
    return _wire(
        portal_email_proof.build_code_message(
            SETTINGS, to="ann@example.com", code="12345678", session_reference="s-1", minutes=15, **seller
        )
    )


def test_the_code_mail_is_dated_and_names_the_seller() -> None:
    mail = _code_mail(merchant_name="Acme Widgets", reply_to="help@acme.test")
    _assert_dated_now(mail)
    [sender] = mail["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Acme Widgets", "paygate@example.test")
    assert mail["Reply-To"] == "help@acme.test"
    text = mail.get_content()
    assert (
        "every receipt of this address with Acme Widgets." in text and "-- Acme Widgets, via paygate" in text
    )


def test_a_merchant_name_cannot_add_headers_and_an_unusable_contact_is_left_out() -> None:
    mail = _code_mail(merchant_name="Evil\r\nBcc: thief@example.com", reply_to="a@b.c\r\nBcc: x@y.z")
    assert mail["Bcc"] is None and mail["Reply-To"] is None
    [sender] = mail["From"].addresses
    assert sender.addr_spec == "paygate@example.test" and "\n" not in sender.display_name


def test_without_a_seller_the_code_mail_says_the_seller() -> None:
    mail = _code_mail()
    assert mail["From"] == "paygate@example.test" and mail["Reply-To"] is None
    assert "with the seller." in mail.get_content()


def test_the_support_mail_is_dated() -> None:
    message = portal_support.build_message(
        SETTINGS,
        to="help@acme.test",
        session_reference="s-1",
        invoice_number=None,
        text="Hello",
        reply_to=None,
    )
    _assert_dated_now(_wire(message))
