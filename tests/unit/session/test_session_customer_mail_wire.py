"""The customer mail as it goes over the wire: what a mail client shows after parsing the SMTP bytes.

The message is built under a compat32 policy for speed (see customer_mail.py); these tests pin that the
bytes still decode to the same subject, sender, recipient and bodies, whatever the merchant's name holds.
"""

from __future__ import annotations

import email
from email import policy

import aiosmtplib.email
import pytest

from session_service.domain.customer_mail import AccessMail, compose_access_mail

LINK = "https://pay.example/access?token=" + "abc.def-" * 60  # longer than any SMTP line


def _wire(merchant: str) -> email.message.EmailMessage:
    mail = AccessMail("0b7e", "buyer@example.com", merchant, "ACME-2026-000017", "49,90 €", LINK)
    raw = aiosmtplib.email.flatten_message(compose_access_mail(mail, "billing@pay.example"))
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))  # RFC 5322 line limit
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


@pytest.mark.parametrize("merchant", ["Acme <Widgets>", "Bäckerei Müller & Söhne", 'Ünïcode, "quoted"'])
def test_headers_and_bodies_survive_the_wire(merchant: str) -> None:
    parsed = _wire(merchant)
    assert parsed["Subject"] == f"Your access from {merchant}"
    assert parsed["From"].addresses[0].display_name == merchant
    assert parsed["From"].addresses[0].addr_spec == "billing@pay.example"
    assert parsed["To"] == "buyer@example.com"
    assert parsed["Message-ID"] == "<access-0b7e@paygate.local>"
    assert parsed["X-Paygate-Session"] == "0b7e"
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(preferencelist=("plain",)).get_content()
    html = parsed.get_body(preferencelist=("html",)).get_content()
    assert LINK in text and "49,90 €" in text and "ACME-2026-000017" in text and merchant in text
    assert f'href="{LINK}"' in html


@pytest.mark.parametrize(
    "merchant", ["Evil\r\nBcc: thief@example.com", "Evil\nBcc: thief@example.com", "A\x00B"]
)
def test_a_merchant_name_cannot_add_headers(merchant: str) -> None:
    """A name with line breaks is shown on one line; it never becomes a header of its own (and the mail is
    still sent: before, the default policy refused the name and the mail step failed on every retry)."""
    parsed = _wire(merchant)
    assert parsed["Bcc"] is None
    assert "\n" not in parsed["Subject"] and "\r" not in parsed["Subject"]
    assert sorted(parsed.keys()) == sorted(
        ["Subject", "From", "To", "Date", "Message-ID", "X-Paygate-Session", "MIME-Version", "Content-Type"]
    )
