"""The portal's contact form (contract §12): the customer's message, mailed to the merchant's support address.

Mail goes out over SMTP exactly as the session service sends the customer mail (paygate_runtime.smtp: the same
PAYGATE_SMTP_HOST / PAYGATE_SMTP_PORT / PAYGATE_MAIL_FROM variables, STARTTLS policy and AUTH credentials;
`paygate up` points them at its local sink). No host configured means the form is switched off, not an error.

Header injection: nothing the customer typed goes into a header except an optional reply-to address, which
must match a strict address pattern (no CR/LF, no commas, no display name); the subject is built from the
session reference only. The message text goes into the body, size limited; EmailMessage refuses CR/LF in any
header value as a second line of defence.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from paygate_runtime.config import ConfigError, Env
from paygate_runtime.smtp import SmtpSettings, load_smtp_settings, send_message

MAX_MESSAGE_CHARS = 4000
MIN_MESSAGE_CHARS = 1
_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
)


# The contact form's SMTP settings are the shared ones (host, STARTTLS, credentials, CA bundle).
SupportMailSettings = SmtpSettings


class SupportFormError(ValueError):
    """A form field the customer must fix; `field` names it."""

    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def load_settings(env: Env) -> SupportMailSettings | None:
    settings = load_smtp_settings(env, sender_check=False)
    if settings is not None and not is_address(settings.sender):
        # Stricter than the session service's check: the sender goes into a header the customer influences.
        raise ConfigError("PAYGATE_MAIL_FROM", f"must be an email address, got {settings.sender!r}")
    return settings


def is_address(value: str) -> bool:
    return bool(_ADDRESS.fullmatch(value)) and ".." not in value


def mail_date() -> str:
    """The `Date:` of a mail built now (it is sent right after): RFC 5322 §3.6 requires one, and relays often
    add none. paygate_runtime.smtp sends the message as given, so each builder sets it."""
    return format_datetime(datetime.now(UTC))


def clean_message(raw: object) -> str:
    """The message text: 1..4000 characters after trimming; control characters other than newlines and
    tabs are dropped (they have no place in a support message and some mail clients misrender them)."""
    if not isinstance(raw, str):
        raise SupportFormError("invalid_message", "write a message", "message")
    text = raw.replace("\r\n", "\n").replace("\r", "\n").strip()
    text = "".join(c for c in text if c in "\n\t" or unicodedata.category(c)[0] != "C")
    if len(text) < MIN_MESSAGE_CHARS:
        raise SupportFormError("invalid_message", "write a message", "message")
    if len(text) > MAX_MESSAGE_CHARS:
        raise SupportFormError(
            "message_too_long", f"the message is limited to {MAX_MESSAGE_CHARS} characters", "message"
        )
    return text


def clean_reply_to(raw: object) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > 254 or not is_address(raw.strip()):
        raise SupportFormError("invalid_reply_to", "reply_to must be one email address", "reply_to")
    return raw.strip()


def build_message(
    settings: SupportMailSettings,
    *,
    to: str,
    session_reference: str,
    invoice_number: str | None,
    text: str,
    reply_to: str | None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = f"Customer message about purchase {session_reference}"
    message["Date"] = mail_date()
    message["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2] or "localhost")
    if reply_to:
        message["Reply-To"] = reply_to
    lines = [
        "A customer wrote to you from their paygate access portal.",
        "",
        f"Session reference: {session_reference}",
    ]
    if invoice_number:
        lines.append(f"Invoice: {invoice_number}")
    lines.append(
        f"Reply to: {reply_to}"
        if reply_to
        else "Reply to: (no address given; answer through your own channel)"
    )
    lines += ["", "Message:", "", text, ""]
    message.set_content("\n".join(lines))
    return message


async def send(settings: SupportMailSettings, message: EmailMessage) -> None:
    """Raises aiosmtplib.SMTPException or OSError when the server is unreachable or refuses, or when STARTTLS
    is required and the server does not offer it (nothing is sent then)."""
    await send_message(settings, message)
