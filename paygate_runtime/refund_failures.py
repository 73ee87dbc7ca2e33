"""Why a refund failed at its provider: Stripe's refund `failure_reason`, or the error code a provider's API
refused a refund with (Stripe's `code`/`decline_code`, One.com's `error.code`).

One rule for every service that carries it (the gateway reads it, the session service stores it, the
dashboard words it): a short lowercase token. Stripe may add values, so any such token is kept as is; anything
else (too long, other characters, not text) is `unknown`, so a provider's odd value never fails an event or a
write (the refunds table's CHECK, session migration 0240, holds the same bound)."""

from __future__ import annotations

import re
from typing import Final

MAX_FAILURE_REASON: Final[int] = 64
UNKNOWN: Final[str] = "unknown"
_TOKEN: Final = re.compile(r"[a-z][a-z0-9_]*")

# Stripe's documented refund failure reasons, in words a merchant understands (the dashboard's refund list).
_WORDING: Final[dict[str, str]] = {
    "charge_for_pending_refund_disputed": "The payment was disputed while the refund was pending.",
    "declined": "The customer's bank declined the refund.",
    "expired_or_canceled_card": "The customer's card expired or was canceled.",
    "insufficient_funds": "Your provider balance did not cover the refund.",
    "lost_or_stolen_card": "The customer's card was reported lost or stolen.",
    "merchant_request": "The refund was canceled on request.",
    "unknown": "The provider gave no reason.",
}


def failure_reason_of(value: object) -> str:
    """`value` when it is a short lowercase token, else `unknown`."""
    if isinstance(value, str) and len(value) <= MAX_FAILURE_REASON and _TOKEN.fullmatch(value):
        return value
    return UNKNOWN


def failure_wording(reason: str) -> str:
    """A sentence for a merchant; a code Stripe added later is shown as the code itself."""
    return _WORDING.get(reason, reason)
