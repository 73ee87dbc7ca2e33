"""Pure helpers of the customer portal's pages: form parsing, the server-rendered usage chart (no JS) and
the sentence a customer reads for each refusal.

Nothing here does I/O; routes_portal calls the services and renders.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType

MAX_FORM_SCOPES = 32
CUSTOMER_MAX_GRACE_SECONDS = 24 * 3600
CHART_WIDTH = 300
CHART_HEIGHT = 80


# What the customer reads of a refusal, by its stable code: the portal's own words, never a service's error text
# or a form field's internal name (the page keeps code and field in data attributes; a JSON client still gets
# the code with the service's message). Every code the OpenAPI document lists for the portal's routes has a
# sentence here (tests/unit/gateway/test_portal_customer_messages.py); any other code gets GENERIC_MESSAGE.
GENERIC_MESSAGE = "Something went wrong with this request. Please try again, or contact the seller."
CUSTOMER_MESSAGES: Mapping[str, str] = MappingProxyType(
    {
        # the link and the portal session
        "token_invalid": "This link does not work. Open the link from your email again, or ask the seller for a "
        "new one.",
        "token_expired": "This link has expired. Ask the seller for a new one.",
        # A full refund or a lost dispute ends the link too (README "Customer portal"); the keys service does
        # not tell the portal which it was, so the sentence names each.
        "token_revoked": "This link no longer works: the seller replaced or withdrew it, or the purchase was "
        "refunded. If you still need it, ask the seller for a new one.",
        "access_token_revoked": "This link no longer works: the seller replaced or withdrew it, or the purchase "
        "was refunded. If you still need it, ask the seller for a new one.",
        "no_portal_session": "Your visit has timed out. Open the link from your email again to continue.",
        "csrf_failed": "This page has expired. Reload it and try again.",
        "unavailable": "This is not working on our side right now. Please try again in a few minutes.",
        "not_found": "We could not find what you asked for. It may not be ready yet; please try again later.",
        "invoice_not_ready": "Your invoice is not ready yet. Please come back in a few minutes.",
        "invalid_json": "This request could not be read. Reload the page and try again.",
        "invalid_form": "This form could not be read. Reload the page and try again.",
        "payload_too_large": "What you sent is too large. Please shorten it and try again.",
        "uri_too_long": "This web address is too long. Open the link from your email again.",
        # the key
        "already_revealed": "Your API key was already shown once and cannot be shown again.",
        "key_revoked": "This API key has been revoked, so it cannot be shown or changed any more.",
        "key_expired": "This API key has expired, so it cannot be shown or changed any more.",
        "key_suspended": "This API key is suspended. Please contact the seller.",
        "already_rolled": "This API key was already replaced by a new one. Reload the page to see it.",
        "secret_unavailable": "Your API key cannot be shown here. Please contact the seller.",
        # the key's settings
        "invalid_scopes": "Choose at least one permission, using only the names shown.",
        "scope_not_granted": "You can only choose permissions the seller granted for this key.",
        "invalid_ip_allowlist": "Check the IP allow-list: enter address blocks such as 203.0.113.0/24, one "
        "per line (at most 32).",
        "invalid_expires_at": "Check the end date: it must be in the future and not later than the key's "
        "current end.",
        "nothing_to_change": "Change at least one setting before saving.",
        "missing_current_key": "Paste your current key to roll it.",
        "current_key_mismatch": "That is not your current key. Paste it exactly as it was shown to you.",
        "invalid_grace_period": "Choose from the list when the old key should stop working.",
        "missing_confirm": "Tick the box to confirm that the key should stop working for good.",
        # the contact form
        "contact_unavailable": "This seller does not take messages here. Please use the contact details shown.",
        "invalid_message": "Write a message to the seller.",
        "message_too_long": "Your message is too long. Please shorten it.",
        "invalid_reply_to": "Enter one valid email address, or leave the field empty.",
        "rate_limited": "That was asked too often in the last hour. Please try again later.",
        "mail_unavailable": "We could not send the email just now. Please try again later.",
        # proving the purchase's email address
        "email_proof_unavailable": "This purchase has no email address to confirm.",
        "invalid_code": "That is not the code we sent. Enter the 8 digits from our email.",
        "code_expired": "The code has expired. Ask for a new one.",
        "too_many_attempts": "Too many wrong codes were entered. Ask for a new code.",
    }
)


def customer_message(code: str) -> str:
    """The sentence a customer reads for a refusal with this stable code (GENERIC_MESSAGE for an unknown one)."""
    return CUSTOMER_MESSAGES.get(code, GENERIC_MESSAGE)


def scope_words(scopes: list[str], seller: str) -> str:
    """Permissions as a customer reads them: the scope names, or words for "*" (every scope), which means
    nothing to someone who never read the merchant's API documentation."""
    if "*" in scopes:
        return f"all of {seller}'s API" if seller else "everything"
    return ", ".join(scopes)


def refund_state(paid_minor: int, refunded_minor: int, *, refunded_in_full: bool) -> str | None:
    """What a purchase's refunds add up to: None while nothing was refunded, else "refunded" (the whole
    amount went back, as the session's own status says) or "partially refunded". Integer minor units only."""
    if refunded_minor <= 0:
        return None
    if refunded_in_full or refunded_minor >= paid_minor > 0:
        return "refunded"
    return "partially refunded"


class FormError(ValueError):
    """A form field the customer must fix: 400 with `code`, naming `field`."""

    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


_SPLIT = re.compile(r"[\s,]+")


def split_list(text: str) -> list[str]:
    """Scopes or CIDRs typed one per line or separated by commas/spaces."""
    return [item for item in _SPLIT.split(text.strip()) if item]


def parse_grace(raw: object) -> int:
    if raw is None or raw == "":
        return 0
    # isdecimal on ASCII only: "²".isdigit() is true, yet int("²") fails.
    if not isinstance(raw, str) or not (raw.isascii() and raw.isdecimal()) or len(raw) > 6:
        raise FormError(
            "invalid_grace_period", "grace period must be a whole number of seconds", "grace_period"
        )
    value = int(raw)
    if value > CUSTOMER_MAX_GRACE_SECONDS:
        raise FormError("invalid_grace_period", "grace period is at most 24 hours", "grace_period")
    return value


def parse_expiry(raw: object) -> datetime | None:
    """An `<input type="datetime-local">` value (or ISO 8601), read as UTC; empty means unchanged."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > 40:
        raise FormError("invalid_expires_at", "expires_at must be a date and time", "expires_at")
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise FormError(
            "invalid_expires_at", "expires_at must be a date and time (UTC)", "expires_at"
        ) from None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 has no UTC time in years 1..9999
        raise FormError("invalid_expires_at", "expires_at is out of range", "expires_at") from None


@dataclass(frozen=True, slots=True)
class Bar:
    x: int
    y: int
    width: int
    height: int
    day: str
    count: int


def usage_bars(
    days: list[tuple[str, int]], *, width: int = CHART_WIDTH, height: int = CHART_HEIGHT
) -> list[Bar]:
    """One bar per day, scaled to the busiest day; a day with uses is at least 1 px tall so it shows."""
    if not days:
        return []
    peak = max(count for _day, count in days) or 1
    slot = width // len(days)
    bar_width = max(1, slot - 2)
    bars = []
    for i, (day, count) in enumerate(days):
        h = 0 if count == 0 else max(1, round(count * height / peak))
        bars.append(Bar(x=i * slot, y=height - h, width=bar_width, height=h, day=day, count=count))
    return bars
