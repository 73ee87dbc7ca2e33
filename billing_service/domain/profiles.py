"""A merchant's billing profile: who the seller is, how invoices are numbered, which tax rate applies.

One per (merchant, mode) (contract §6a): the test world's profile never prints on a live invoice, and a test key
can neither read nor change the live one."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from paygate_runtime.errors import InvalidArgument

from .invoices import MAX_EMAIL_LENGTH, Mode, Party, parse_mode, validate_party
from .numbering import DEFAULT_PREFIX, validate_prefix
from .tax import validate_tax_rate

_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# Shown to customers as a link: http(s) only (never javascript: or data:), no whitespace or quotes.
_SUPPORT_URL_RE = re.compile(r"https?://[^\s\"'<>]+")


@dataclass(frozen=True, slots=True)
class BillingProfile:
    merchant_id: str
    # Internal callers that name no mode get the test world's profile; merchant requests always name theirs.
    mode: Mode = Mode.TEST
    seller: Party = field(default_factory=Party)
    invoice_prefix: str = DEFAULT_PREFIX
    tax_rate_bps: int = 0
    reset_numbering_yearly: bool = False
    support_email: str = ""
    support_url: str = ""


def contact_email(profile: BillingProfile) -> str:
    """Where a customer reaches the merchant: its support address, else the seller's email that its invoices
    already show; "" when it has neither. A customer who answers the access mail or writes from the portal
    then reaches the merchant rather than nobody."""
    return profile.support_email or profile.seller.email or ""


def default_profile(merchant_id: str, mode: Mode) -> BillingProfile:
    """What applies to a merchant that never set a profile in this mode: prefix INV, no tax, one endless
    sequence."""
    return BillingProfile(merchant_id=merchant_id, mode=mode)


def validate_profile(profile: BillingProfile) -> BillingProfile:
    """Check every field; raises InvalidArgument naming the field (seller_*, invoice_prefix, ...)."""
    if not isinstance(profile.merchant_id, str) or not profile.merchant_id.strip():
        raise InvalidArgument("missing_merchant_id", "merchant_id is required", field="merchant_id")
    if len(profile.merchant_id) > 200:
        raise InvalidArgument("invalid_merchant_id", "merchant_id is too long", field="merchant_id")
    email = profile.support_email.strip() if isinstance(profile.support_email, str) else None
    if email is None or (email and (len(email) > MAX_EMAIL_LENGTH or _EMAIL_RE.fullmatch(email) is None)):
        raise InvalidArgument(
            "invalid_support_email", "support_email is not an email address", field="support_email"
        )
    url = profile.support_url.strip() if isinstance(profile.support_url, str) else None
    if url is None or (url and (len(url) > 500 or _SUPPORT_URL_RE.fullmatch(url) is None)):
        raise InvalidArgument(
            "invalid_support_url",
            "support_url must be an http(s) URL of at most 500 characters",
            field="support_url",
        )
    if not isinstance(profile.reset_numbering_yearly, bool):
        raise InvalidArgument(
            "invalid_reset_numbering_yearly",
            "reset_numbering_yearly must be true or false",
            field="reset_numbering_yearly",
        )
    return BillingProfile(
        merchant_id=profile.merchant_id,
        mode=parse_mode(profile.mode),
        seller=validate_party(profile.seller, "seller"),
        invoice_prefix=validate_prefix(profile.invoice_prefix),
        tax_rate_bps=validate_tax_rate(profile.tax_rate_bps),
        reset_numbering_yearly=profile.reset_numbering_yearly,
        support_email=email,
        support_url=url,
    )
