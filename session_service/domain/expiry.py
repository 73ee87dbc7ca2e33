"""When a `created` session expires.

Default 24 h; 5 min to 7 days in general. A Stripe session is held to Stripe's own Checkout window of
30 min to 24 h, because our session must not outlive (or be outlived by) the page the customer pays on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from paygate_runtime.errors import InvalidArgument

DEFAULT_EXPIRES_IN = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class ExpiryBounds:
    minimum: timedelta
    maximum: timedelta

    def __post_init__(self) -> None:
        if not timedelta(0) < self.minimum <= DEFAULT_EXPIRES_IN <= self.maximum:
            raise ValueError("bounds must contain the default lifetime")


DEFAULT_BOUNDS = ExpiryBounds(timedelta(minutes=5), timedelta(days=7))
PROVIDER_BOUNDS: dict[str, ExpiryBounds] = {
    "stripe": ExpiryBounds(timedelta(minutes=30), timedelta(hours=24)),
}


def bounds_for(provider: str) -> ExpiryBounds:
    return PROVIDER_BOUNDS.get(provider, DEFAULT_BOUNDS)


def parse_expires_in(raw: object, *, field: str = "expires_in") -> int | None:
    """Read `expires_in` (whole seconds) from a JSON body: None when absent, else a positive-looking integer.

    An integral Decimal (3600 or 3.6e3 under parse_float=Decimal) is accepted; fractions, floats, booleans
    and strings are `invalid_<field>`. Range is checked by `compute_expires_at`.
    """
    if raw is None:
        return None
    if isinstance(raw, Decimal) and raw.is_finite() and raw == raw.to_integral_value():
        if abs(raw.adjusted()) > 18:
            raise _out_of_range(field, DEFAULT_BOUNDS)
        return int(raw)
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    raise InvalidArgument(f"invalid_{field}", f"{field} must be a whole number of seconds", field=field)


def compute_expires_at(
    now: datetime, expires_in_seconds: int | None, provider: str, *, field: str = "expires_in"
) -> datetime:
    """`now` + the requested lifetime; None or 0 (the proto default) means 24 h.

    Raises InvalidArgument `expires_in_out_of_range` (field `expires_in`) outside the provider's bounds.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    bounds = bounds_for(provider)
    if not expires_in_seconds:
        return now + DEFAULT_EXPIRES_IN
    if not bounds.minimum.total_seconds() <= expires_in_seconds <= bounds.maximum.total_seconds():
        raise _out_of_range(field, bounds)
    return now + timedelta(seconds=expires_in_seconds)


def _out_of_range(field: str, bounds: ExpiryBounds) -> InvalidArgument:
    low, high = int(bounds.minimum.total_seconds()), int(bounds.maximum.total_seconds())
    return InvalidArgument(
        f"{field}_out_of_range", f"{field} must be between {low} and {high} seconds", field=field
    )


def is_due(expires_at: datetime, now: datetime) -> bool:
    """Whether the sweeper should expire a `created` session now. Pending sessions are never swept."""
    return expires_at <= now
