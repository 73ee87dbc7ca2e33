"""The customer mail: link, merchant, invoice and amount in it; never a key; a stable Message-ID."""

from __future__ import annotations

import pytest

from paygate_runtime.errors import InvalidArgument
from session_service.domain.customer_mail import AccessMail, compose_access_mail

MAIL = AccessMail(
    session_id="0b7e",
    to="buyer@example.com",
    merchant_name="Acme <Widgets>",
    invoice_number="ACME-2026-000017",
    amount_display="49.90 EUR",
    access_url="https://pay.example/access?token=abc.def.ghi",
)


def test_mail_carries_link_merchant_invoice_and_amount() -> None:
    message = compose_access_mail(MAIL, "billing@pay.example")
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    for part in (MAIL.access_url, "Acme <Widgets>", "ACME-2026-000017", "49.90 EUR"):
        assert part in text
    assert "Acme &lt;Widgets&gt;" in html and 'href="https://pay.example/access?token=abc.def.ghi"' in html
    assert message["To"] == "buyer@example.com"
    assert message["Message-ID"] == "<access-0b7e@paygate.local>"
    assert compose_access_mail(MAIL, "billing@pay.example")["Message-ID"] == message["Message-ID"]


@pytest.mark.parametrize("to", ["nobody", "a@b.c\r\nBcc: evil@x.y", "a@b.c, c@d.e"])
def test_header_injection_and_lists_are_refused(to: str) -> None:
    with pytest.raises(InvalidArgument):
        compose_access_mail(_with_to(to), "s@x.y")


def _with_to(to: str) -> AccessMail:
    return AccessMail(
        MAIL.session_id, to, MAIL.merchant_name, MAIL.invoice_number, MAIL.amount_display, MAIL.access_url
    )


def test_missing_link_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        compose_access_mail(
            AccessMail(MAIL.session_id, MAIL.to, MAIL.merchant_name, "", MAIL.amount_display, ""), "s@x.y"
        )
