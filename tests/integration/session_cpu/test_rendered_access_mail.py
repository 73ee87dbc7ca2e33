"""The customer mail rendered once to the bytes SMTP sends (issue 16): the same message as before.

render_access_mail writes the message directly instead of letting aiosmtplib flatten an EmailMessage (which
re-parses every header). These tests pin that nothing a customer sees changes: the bytes are those the stdlib
generator writes for compose_access_mail's message (apart from the boundary), they decode to the same headers
and bodies as what send_message used to put on the wire, and the envelope is the one send_message derived.
"""

from __future__ import annotations

import dataclasses
import email
import io
import re
from datetime import UTC, datetime
from email import policy
from email.generator import BytesGenerator
from email.message import EmailMessage

import aiosmtplib.email
import pytest

from session_service.domain.customer_mail import AccessMail, compose_access_mail, render_access_mail

LINK = "https://pay.example/access?token=" + "abc.def-" * 60  # longer than any SMTP line
MERCHANTS = [
    "Acme",
    "Acme <Widgets>",
    "Bäckerei Müller & Söhne",
    'Ünïcode, "quoted"',
    "Evil\r\nBcc: thief@example.com",
    "A\x00B",
    "x" * 120,
    "A very long merchant name that goes on and on and on beyond seventy eight characters, surely",
    "Zürich  double  spaces GmbH and a long tail of words to make the header fold somewhere",
    "",
]
_BOUNDARY = re.compile(rb'boundary="([^"]+)"')
# Content-Type differs by its boundary only; From is compared by its parsed address (below), because the old
# wire lost the quotes of a long quoted display name when it refolded the header.
_COMPARED_APART = ("Content-Type", "From")
SENT_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _mail(merchant: str, to: str = "buyer@example.com", invoice: str = "ACME-2026-000017") -> AccessMail:
    # A fixed Date: the composed message and the rendered bytes are compared, and two calls may straddle a second.
    return AccessMail(
        "7f1c2f0e-8a5b-4c1d-9e2f-0123456789ab", to, merchant, invoice, "49,90 €", LINK, sent_at=SENT_AT
    )


def _without_boundary(raw: bytes) -> bytes:
    found = _BOUNDARY.search(raw)
    assert found is not None
    return raw.replace(found.group(1), b"BOUNDARY")


def _parsed(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _seen(message: EmailMessage) -> dict[str, object]:
    """What a mail client shows: every header (decoded) and both bodies."""
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    return {
        "headers": [(name, str(value)) for name, value in message.items() if name not in _COMPARED_APART],
        "type": message.get_content_type(),
        "parts": [
            (p.get_content_type(), p.get_content_charset(), p["Content-Transfer-Encoding"])
            for p in message.iter_parts()
        ],
        "plain": plain.get_content(),
        "html": html.get_content(),
    }


@pytest.mark.parametrize("merchant", MERCHANTS)
@pytest.mark.parametrize("invoice", ["ACME-2026-000017", ""])
def test_bytes_are_what_the_stdlib_generator_writes(merchant: str, invoice: str) -> None:
    mail = _mail(merchant, invoice=invoice)
    generated = io.BytesIO()
    wire_policy = compose_access_mail(mail, "billing@pay.example").policy.clone(linesep="\r\n")
    BytesGenerator(generated, policy=wire_policy, mangle_from_=False).flatten(
        compose_access_mail(mail, "billing@pay.example")
    )
    rendered = render_access_mail(mail, "billing@pay.example")
    assert _without_boundary(rendered.data) == _without_boundary(generated.getvalue())


@pytest.mark.parametrize("merchant", MERCHANTS)
def test_a_client_sees_what_send_message_used_to_send(merchant: str) -> None:
    mail = _mail(merchant)
    before = aiosmtplib.email.flatten_message(compose_access_mail(mail, "billing@pay.example"))
    rendered = render_access_mail(mail, "billing@pay.example")
    assert _seen(_parsed(rendered.data)) == _seen(_parsed(before))
    sender = _parsed(rendered.data)["From"].addresses
    # A display name is a phrase: a reader sees its words, runs of spaces as one.
    expected_name = " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", merchant).split()) or "your merchant"
    shown = [(" ".join(a.display_name.split()), a.addr_spec) for a in sender]
    assert shown == [(expected_name, "billing@pay.example")]
    assert all(len(line) <= 998 for line in rendered.data.split(b"\r\n"))  # RFC 5322 line limit
    assert b"\r\n" in rendered.data and b"\n" not in rendered.data.replace(b"\r\n", b"")
    assert rendered.data.isascii() and not rendered.smtputf8
    # The envelope send_message took from the headers.
    message = compose_access_mail(mail, "billing@pay.example")
    assert rendered.sender == aiosmtplib.email.extract_sender(message)
    assert list(rendered.recipients) == aiosmtplib.email.extract_recipients(message)


def test_a_merchant_name_cannot_add_headers() -> None:
    parsed = _parsed(render_access_mail(_mail("Evil\r\nBcc: thief@example.com"), "billing@pay.example").data)
    assert parsed["Bcc"] is None
    assert sorted(parsed.keys()) == sorted(
        ["Subject", "From", "To", "Date", "Message-ID", "X-Paygate-Session", "MIME-Version", "Content-Type"]
    )


def test_a_non_ascii_address_goes_as_utf8_as_before() -> None:
    """An internationalised address needs SMTPUTF8; the header carries it as UTF-8, as the SMTPUTF8 policy
    send_message chose for it did (never as an encoded word, which an address must not be)."""
    mail = _mail("Bäckerei", to="käufer@beispiel.de")
    before = aiosmtplib.email.flatten_message(compose_access_mail(mail, "billing@pay.example"), utf8=True)
    rendered = render_access_mail(mail, "billing@pay.example")
    assert rendered.smtputf8 and rendered.recipients == ("käufer@beispiel.de",)
    assert "To: käufer@beispiel.de\r\n".encode() in rendered.data
    assert _seen(_parsed(rendered.data)) == _seen(_parsed(before))


def test_a_resend_is_the_same_bytes() -> None:
    """The boundary comes from the session, like the Message-ID: a mail sent again after a crash is identical."""
    mail = _mail("Acme")
    assert render_access_mail(mail, "b@pay.example").data == render_access_mail(mail, "b@pay.example").data


@pytest.mark.parametrize("to", ["nobody", "a@b.c\r\nBcc: evil@x.y", "a@b.c, c@d.e"])
def test_unusable_addresses_are_refused_as_before(to: str) -> None:
    from paygate_runtime.errors import InvalidArgument

    with pytest.raises(InvalidArgument):
        render_access_mail(_mail("Acme", to=to), "s@x.y")


@pytest.mark.parametrize("reply_to", ["help@acme.example", "hilfe@bäckerei.de"])
def test_the_support_address_is_the_reply_to_in_the_bytes_the_generator_writes(reply_to: str) -> None:
    mail = dataclasses.replace(_mail("Acme"), reply_to=reply_to)
    generated = io.BytesIO()
    message = compose_access_mail(mail, "billing@pay.example")
    BytesGenerator(generated, policy=message.policy.clone(linesep="\r\n"), mangle_from_=False).flatten(
        message
    )
    rendered = render_access_mail(mail, "billing@pay.example")
    assert _parsed(rendered.data)["Reply-To"] == reply_to
    assert rendered.smtputf8 == (not reply_to.isascii())
    if reply_to.isascii():
        assert _without_boundary(rendered.data) == _without_boundary(generated.getvalue())
    # Never an envelope recipient: a reply goes there, the mail itself does not.
    assert rendered.recipients == ("buyer@example.com",)


@pytest.mark.parametrize("reply_to", ["", "nobody", "a@b.c\r\nBcc: evil@x.y", "a@b.c, c@d.e"])
def test_an_unusable_support_address_leaves_the_mail_without_reply_to(reply_to: str) -> None:
    parsed = _parsed(
        render_access_mail(dataclasses.replace(_mail("Acme"), reply_to=reply_to), "billing@pay.example").data
    )
    assert parsed["Reply-To"] is None and parsed["Bcc"] is None
