"""Pure helpers of the customer portal's pages: form parsing and the server-rendered usage chart (no JS).

Nothing here does I/O; routes_portal calls the services and renders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

MAX_FORM_SCOPES = 32
CUSTOMER_MAX_GRACE_SECONDS = 24 * 3600
CHART_WIDTH = 300
CHART_HEIGHT = 80


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
