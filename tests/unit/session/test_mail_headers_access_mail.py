"""The customer's access mail carries `Date:` (RFC 5322 §3.6), the same in the composed message and the
rendered bytes: the caller's `sent_at`, else the moment it is rendered."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from session_service.domain.customer_mail import AccessMail, compose_access_mail, render_access_mail

SENT = datetime(2026, 12, 7, 9, 13, 49, tzinfo=UTC)
MAIL = AccessMail(
    session_id="0b7e",
    to="buyer@example.com",
    merchant_name="Acme",
    invoice_number="ACME-2026-000017",
    amount_display="49.90 EUR",
    access_url="https://pay.example/access?token=abc.def.ghi",
    sent_at=SENT,
)


def _date_of(data: bytes) -> datetime:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    return parsedate_to_datetime(str(parsed["Date"]))


def test_the_rendered_and_the_composed_mail_carry_the_given_date() -> None:
    rendered = render_access_mail(MAIL, "billing@pay.example")
    assert b"\r\nDate: Mon, 07 Dec 2026 09:13:49 +0000\r\n" in rendered.data
    assert compose_access_mail(MAIL, "billing@pay.example")["Date"] == "Mon, 07 Dec 2026 09:13:49 +0000"
    # With the time fixed, a resend is byte for byte the same mail.
    assert render_access_mail(MAIL, "billing@pay.example").data == rendered.data


def test_without_a_time_the_mail_is_dated_when_rendered() -> None:
    mail = AccessMail(MAIL.session_id, MAIL.to, MAIL.merchant_name, "", MAIL.amount_display, MAIL.access_url)
    sent = _date_of(render_access_mail(mail, "billing@pay.example").data)
    assert abs(sent - datetime.now(UTC)) < timedelta(seconds=5)
