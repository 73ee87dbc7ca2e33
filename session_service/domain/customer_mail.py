"""The email a customer gets once their payment is fulfilled: the access link, never the API key.

The key itself is revealed once, in the portal behind the link, so a mailbox that leaks later leaks at most
a link that expires in 7 days and can be revoked. The Message-ID is derived from the session, so a resend
after a crash (SMTP is at-least-once) is recognisable as the same message.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr

from paygate_runtime.errors import InvalidArgument


@dataclass(frozen=True, slots=True)
class AccessMail:
    session_id: str
    to: str
    merchant_name: str
    invoice_number: str
    amount_display: str
    access_url: str


def compose_access_mail(mail: AccessMail, sender: str) -> EmailMessage:
    """Plain-text and HTML versions of one message; raises InvalidArgument for an unusable address."""
    if "@" not in mail.to or any(ch in mail.to for ch in "\r\n<>,"):
        raise InvalidArgument("invalid_customer_email", "customer email is not a single address", field="to")
    if not mail.access_url:
        raise InvalidArgument("missing_access_url", "no access link to send", field="access_url")
    merchant = mail.merchant_name or "your merchant"
    message = EmailMessage()
    message["Subject"] = f"Your access from {merchant}"
    message["From"] = formataddr((merchant, sender))
    message["To"] = mail.to
    message["Message-ID"] = f"<access-{mail.session_id}@paygate.local>"
    message["X-Paygate-Session"] = mail.session_id
    invoice = f"Invoice {mail.invoice_number}" if mail.invoice_number else "Your invoice"
    message.set_content(
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
    )
    message.add_alternative(
        f"""<html><body>
<p>Hello,</p>
<p>thank you for your payment of <strong>{_escape(mail.amount_display)}</strong> to {_escape(merchant)}.</p>
<p>{_escape(invoice)} and your API key are waiting for you:</p>
<p><a href="{_escape(mail.access_url)}">Open your access page</a></p>
<p>The link is valid for 7 days. Your API key is shown once, when you reveal it on that page; we never
send it by email.</p>
<p>&mdash; {_escape(merchant)}, via paygate</p>
</body></html>""",
        subtype="html",
    )
    return message


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
