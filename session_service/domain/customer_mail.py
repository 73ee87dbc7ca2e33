"""The email a customer gets once their payment is fulfilled: the access link, never the API key.

The key itself is revealed once, in the portal behind the link, so a mailbox that leaks later leaks at most
a link that expires in 7 days and can be revoked. The Message-ID is derived from the session, so a resend
after a crash (SMTP is at-least-once) is recognisable as the same message. Every mail carries `Date:` (RFC 5322
§3.6): AccessMail.sent_at, else the moment it is rendered.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.charset import QP, Charset
from email.contentmanager import raw_data_manager
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from paygate_runtime.errors import InvalidArgument


@dataclass(frozen=True, slots=True)
class AccessMail:
    session_id: str
    to: str
    merchant_name: str
    invoice_number: str
    amount_display: str
    access_url: str
    # Where a customer reaches the merchant (its support address, else the seller's email): the mail comes
    # from the deployment's sender, which no merchant reads, so an answer goes here. Empty: no Reply-To.
    reply_to: str = ""
    # The mail's `Date:` (RFC 5322 §3.6 requires one, and relays often add none). None: the moment it is
    # rendered, i.e. sent. A caller that wants a resend to be byte for byte the same passes a fixed time.
    sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RenderedMail:
    """One mail as SMTP carries it: the envelope and the message's bytes (CRLF lines, 7-bit unless
    `smtputf8`), rendered once and sent as they are."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    # An address is not ASCII: the server must offer SMTPUTF8 (the header then carries it as UTF-8).
    smtputf8: bool = False


@dataclass(frozen=True, slots=True)
class _Content:
    headers: tuple[tuple[str, str], ...]  # in order, before Content-Type
    text: str
    html: str


def compose_access_mail(mail: AccessMail, sender: str) -> EmailMessage:
    """Plain-text and HTML versions of one message; raises InvalidArgument for an unusable address."""
    content = _content(mail, sender)
    # Built under a compat32 policy, whose headers are the strings given: the default policy parses every
    # header on assignment and again for each MIME part (compose + flatten: 2.0 -> 1.2 ms CPU a mail,
    # measured; the mail step was the largest cost of the session service in a `paygate up` burst). The
    # headers, their order, the MIME structure and the decoded bodies are the same as before.
    message = EmailMessage(policy=_POLICY)
    for name, value in content.headers:
        message[name] = value
    message["Content-Type"] = "multipart/alternative"
    message.attach(_text_part(content.text, "plain"))
    message.attach(_text_part(content.html, "html"))
    return message


def render_access_mail(mail: AccessMail, sender: str) -> RenderedMail:
    """The same message as compose_access_mail, straight to the bytes SMTP sends (issue 16).

    Flattening an EmailMessage for SMTP (aiosmtplib's send_message) re-reads every header of the message
    and of its parts through the default policy's header parser, and a stdlib generator compiles a regex
    per boundary: about a fifth of the session service's CPU in a burst. The message's shape is fixed, so it
    is written directly: headers that fit on a line as they are, longer ones folded by the compat32 policy
    (as the stdlib generator would), each body quoted-printable. The bytes are those the stdlib's compat32
    generator writes for compose_access_mail's message (tests/integration/session_cpu pins that), with a
    boundary derived from the session, so a resend after a crash is byte for byte the same mail when the
    caller fixes `sent_at` (else only its `Date:` differs)."""
    content = _content(mail, sender)
    boundary = f"===============paygate-{hashlib.sha256(mail.session_id.encode()).hexdigest()[:24]}=="
    lines = [_wire_header(name, value) for name, value in content.headers]
    lines.append(f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n\r\n')
    for subtype, body in (("plain", content.text), ("html", content.html)):
        lines.append(f"--{boundary}\r\n" if subtype == "plain" else f"\r\n--{boundary}\r\n")
        lines.append(f'Content-Type: text/{subtype}; charset="utf-8"\r\n')
        lines.append("Content-Transfer-Encoding: quoted-printable\r\n\r\n")
        lines.append(_UTF8_QP.body_encode(body).replace("\n", "\r\n"))
    lines.append(f"\r\n--{boundary}--\r\n")
    smtputf8 = not all(header_value.isascii() for header_value in (sender, mail.to, mail.reply_to))
    return RenderedMail(sender, (mail.to,), "".join(lines).encode(), smtputf8)


def _content(mail: AccessMail, sender: str) -> _Content:
    if not _single_address(mail.to):
        raise InvalidArgument("invalid_customer_email", "customer email is not a single address", field="to")
    if not mail.access_url:
        raise InvalidArgument("missing_access_url", "no access link to send", field="access_url")
    # A merchant name is the merchant's own text: control characters become spaces, so none reaches a
    # header (the default policy used to refuse such a name, and the mail step then failed on every retry).
    merchant = _CONTROL.sub(" ", mail.merchant_name).strip() or "your merchant"
    headers = (
        ("Subject", _header_text(f"Your access from {merchant}")),
        ("From", formataddr((merchant, sender), charset="utf-8")),
        ("To", mail.to),
        # format_datetime of an aware time: "Mon, 07 Dec 2026 09:13:49 +0000", a few microseconds a mail.
        ("Date", format_datetime(mail.sent_at or datetime.now(UTC))),
        # Billing checks a support address when it is saved; one that is still unusable here is left out
        # rather than failing the customer's mail.
        *((("Reply-To", mail.reply_to),) if _single_address(mail.reply_to) else ()),
        ("Message-ID", f"<access-{mail.session_id}@paygate.local>"),
        ("X-Paygate-Session", mail.session_id),
        ("MIME-Version", "1.0"),
    )
    invoice = f"Invoice {mail.invoice_number}" if mail.invoice_number else "Your invoice"
    text = (
        "\n".join(
            [
                "Hello,",
                "",
                f"thank you for your payment of {mail.amount_display} to {merchant}.",
                f"{invoice} and your API key are waiting for you here:",
                "",
                mail.access_url,
                "",
                "The link is valid for 7 days. Your API key is shown once, when you reveal it on that page;",
                "we never send it by email.",
                "",
                f"-- {merchant}, via paygate",
            ]
        )
        + "\n"
    )
    html = f"""<html><body>
<p>Hello,</p>
<p>thank you for your payment of <strong>{_escape(mail.amount_display)}</strong> to {_escape(merchant)}.</p>
<p>{_escape(invoice)} and your API key are waiting for you:</p>
<p><a href="{_escape(mail.access_url)}">Open your access page</a></p>
<p>The link is valid for 7 days. Your API key is shown once, when you reveal it on that page; we never
send it by email.</p>
<p>&mdash; {_escape(merchant)}, via paygate</p>
</body></html>
"""
    return _Content(headers, text, html)


def _single_address(address: str) -> bool:
    return "@" in address and not any(ch in address for ch in "\r\n<>,")


def _wire_header(name: str, value: str) -> str:
    """One header line as the compat32 generator writes it: as it is when it fits on a line, else folded.
    A non-ASCII value (an SMTPUTF8 address, the only kind there can be) goes as it is: compat32 would turn
    it into an encoded word, which an address must not be."""
    if (len(name) + 2 + len(value) <= _WIRE_WIDTH and "\n" not in value) or not value.isascii():
        return f"{name}: {value}\r\n"
    return _WIRE_POLICY.fold(name, value)


class _Compat32WithContent(policy.Compat32):
    """compat32 (headers kept as the strings given) plus a content manager, so that the message still
    answers EmailMessage's get_body() / get_content()."""

    content_manager = raw_data_manager


_POLICY = _Compat32WithContent()
# The compat32 generator's line ending for SMTP (CRLF) and its fold width.
_WIRE_WIDTH = 78
_WIRE_POLICY = _POLICY.clone(linesep="\r\n", max_line_length=_WIRE_WIDTH)


# Always refolded: a short header would otherwise come back as it went in, not encoded.
_ENCODING_POLICY = policy.default.clone(refold_source="all")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Quoted-printable: readable ASCII stays as it is, long lines (the access link) get soft breaks.
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


def _header_text(text: str) -> str:
    """ASCII as it is; anything else as RFC 2047 encoded words, exactly as the default policy sent them."""
    if text.isascii():
        return text
    folded = _ENCODING_POLICY.fold("Subject", text)
    return str(folded)[len("Subject: ") :].rstrip("\n")


def _text_part(body: str, subtype: str) -> EmailMessage:
    part = EmailMessage(policy=_POLICY)
    part["Content-Type"] = f"text/{subtype}"
    part.set_payload(body, _UTF8_QP)  # sets charset="utf-8" and Content-Transfer-Encoding
    del part["MIME-Version"]  # set_payload adds one; it belongs on the message only
    return part


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
