"""Proving the purchase's email address before the portal lists the customer's other purchases.

The portal finds a customer's receipts with a merchant by the opaque subject of the email address on the
purchase, and that address is whatever the buyer typed at the merchant's checkout. The access link alone
therefore proves nothing about it: a buyer who typed someone else's address would read that person's receipts
through the link the merchant hands back. So the portal lists only this purchase's own documents until the
visitor proves the address, in one of two ways:
- the link in the customer's own mail carries `proof`, an HMAC of the token's jti that only the keys service
  can make and only that mail carries (AccessLink.mail_url); the portal session opened with it is proven;
- otherwise a code mailed to the address (8 digits, 15 minutes, five tries; three codes a purchase an hour).
The proof holds for that browser's portal session only.

The mail goes out over the same SMTP settings as the contact form. Its headers built from stored data: `To`,
the purchase's address, which must pass the contact form's strict address pattern; like the customer's access
mail (session_service.domain.customer_mail), `From` names the seller (the merchant's name as a display name,
control characters dropped) and `Reply-To` is the merchant's contact address (billing's `contact_email`:
support_email, else the seller's email) when it passes the same pattern, since nobody reads the deployment's
sender.
"""

from __future__ import annotations

import re
import secrets
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Final

from webhook_gateway.entrypoints.portal_support import SupportMailSettings, is_address, mail_date

CODE_DIGITS: Final[int] = 8
_SEPARATORS: Final[str] = " -\t"


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def clean_code(raw: object) -> str | None:
    """The typed code as its 8 digits (spaces and dashes a person may add are dropped); None otherwise."""
    if not isinstance(raw, str) or len(raw) > 32:
        return None
    digits = "".join(c for c in raw if c not in _SEPARATORS)
    if len(digits) != CODE_DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return digits


def mailable(address: str) -> bool:
    return bool(address) and len(address) <= 254 and is_address(address)


def masked(address: str) -> str:
    """`a•••@example.com`: enough for the visitor to recognise the address, not to learn it."""
    local, _at, domain = address.partition("@")
    return f"{local[:1]}•••@{domain}"


def build_code_message(
    settings: SupportMailSettings,
    *,
    to: str,
    code: str,
    session_reference: str,
    minutes: int,
    merchant_name: str = "",
    reply_to: str = "",
) -> EmailMessage:
    """The code mail. `merchant_name`: the seller, named in From and in the text ("" when unknown: the mail
    then says "the seller"). `reply_to`: the merchant's contact address ("" or unusable: no Reply-To)."""
    seller = _CONTROL.sub(" ", merchant_name).strip()
    message = EmailMessage()
    message["From"] = Address(display_name=seller, addr_spec=settings.sender) if seller else settings.sender
    message["To"] = to
    if reply_to and is_address(reply_to):
        message["Reply-To"] = reply_to
    message["Subject"] = "Your code to see your receipts"
    message["Date"] = mail_date()
    message["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2] or "localhost")
    message.set_content("\n".join(_code_text(seller or "the seller", code, session_reference, minutes)))
    return message


def _code_text(seller: str, code: str, session_reference: str, minutes: int) -> list[str]:
    return [
        "Someone opened the access page of a purchase made with this email address and asked to see",
        f"every receipt of this address with {seller}.",
        "",
        f"Your code: {code}",
        "",
        f"It is valid for {minutes} minutes, in the browser that asked for it.",
        f"Purchase reference: {session_reference}",
        "",
        "If this was not you, ignore this mail: nothing is shown without the code.",
        "",
        f"-- {seller}, via paygate",
        "",
    ]


# A merchant name is the merchant's own text: no control character may reach a header (or the text).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
