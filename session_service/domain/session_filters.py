"""The optional filters of a session list (ListSessions): checked here, applied in SQL by the repository.

Pure: no I/O. Amounts stay decimal integer strings of minor units (NUMERIC(78,0) holds a uint256 token amount,
far beyond int64), compared in the database as numerics; they are never floats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from paygate_runtime.errors import InvalidArgument
from paygate_runtime.money import normalise_code

# Every provider a session can carry: the three rails and a card session not yet bound to one.
LIST_PROVIDERS = ("stripe", "onecom", "web3", "card")
MAX_EMAIL = 254
_MINOR = re.compile(r"[0-9]{1,78}")


@dataclass(frozen=True, slots=True)
class SessionListFilter:
    """As received; `checked()` returns the normalised filter or raises InvalidArgument naming the field."""

    provider: str = ""
    customer_email: str = ""
    created_from: datetime | None = None
    created_to: datetime | None = None
    amount_min_minor: str = ""
    amount_max_minor: str = ""
    currency: str = ""

    def checked(self) -> SessionListFilter:
        if self.provider and self.provider not in LIST_PROVIDERS:
            raise InvalidArgument(
                "invalid_provider", "provider must be stripe, onecom, web3 or card", field="provider"
            )
        email = self.customer_email.strip()
        if len(email) > MAX_EMAIL or any(ord(c) < 32 or ord(c) == 127 for c in email):
            raise InvalidArgument(
                "invalid_customer_email", "customer_email must be an email address", field="customer_email"
            )
        if self.created_from and self.created_to and self.created_to <= self.created_from:
            raise InvalidArgument(
                "invalid_created_to", "created_to must be after created_from", field="created_to"
            )
        low = _minor(self.amount_min_minor, "amount_min_minor")
        high = _minor(self.amount_max_minor, "amount_max_minor")
        if low is not None and high is not None and high < low:
            raise InvalidArgument(
                "invalid_amount_max_minor",
                "amount_max_minor must not be below amount_min_minor",
                field="amount_max_minor",
            )
        currency = normalise_code(self.currency, field="currency") if self.currency else ""
        return SessionListFilter(
            provider=self.provider,
            customer_email=email.lower(),
            created_from=self.created_from,
            created_to=self.created_to,
            amount_min_minor=str(low) if low is not None else "",
            amount_max_minor=str(high) if high is not None else "",
            currency=currency,
        )


def _minor(raw: str, field: str) -> int | None:
    if not raw:
        return None
    if not _MINOR.fullmatch(raw):
        raise InvalidArgument(
            f"invalid_{field}", f"{field} must be a non-negative whole number of minor units", field=field
        )
    return int(raw)
