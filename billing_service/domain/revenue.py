"""Revenue figures: per period and currency, counts and totals of invoices and credit notes, and the net.

The database aggregates (GROUP BY date_trunc(unit, issued_at), currency, exponent, kind); this module turns
those rows into buckets. Currencies are never converted or mixed: each bucket holds one currency.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from paygate_runtime.errors import FailedPrecondition, InvalidArgument

from .invoices import DocumentKind

# A dashboard charting five years of daily buckets is already ~1,800 points per currency; anything wider
# is a mistake or an attempt to make the database scan everything.
MAX_RANGE = timedelta(days=5 * 366)


class Interval(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO week, starting Monday (UTC)
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class RevenueRow:
    """One aggregated row: documents of one kind, in one currency, issued in one period."""

    period_start: datetime
    currency: str
    exponent: int
    kind: DocumentKind
    count: int
    total: int  # signed sum as stored: credit notes are negative


@dataclass(frozen=True, slots=True)
class RevenueBucket:
    period_start: datetime
    currency: str
    exponent: int
    invoice_count: int
    invoice_total: int
    credit_note_count: int
    credit_note_total: int  # positive
    net: int  # invoice_total - credit_note_total


def parse_interval(value: object) -> Interval:
    """ "day" | "week" | "month" (case-insensitive) or an Interval; anything else is `invalid_interval`."""
    try:
        # Not a string (an Interval is one): no interval, refused below.
        return Interval(value.lower() if isinstance(value, str) else "")
    except ValueError:
        raise InvalidArgument(
            "invalid_interval", "interval must be day, week or month", field="interval"
        ) from None


def date_trunc_unit(interval: Interval) -> str:
    """The PostgreSQL date_trunc unit for the interval; Postgres' 'week' is the ISO week starting Monday."""
    return parse_interval(interval).value


def validate_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """Check a [start, end) range and return it in UTC; refuses naive, empty, reversed or over-wide ranges."""
    for moment, name in ((start, "from"), (end, "to")):
        if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
            raise InvalidArgument(
                "invalid_date_range", f"{name} must be a time-zone aware timestamp", field=name
            )
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        raise InvalidArgument("invalid_date_range", "to must be after from", field="to")
    if end - start > MAX_RANGE:
        raise InvalidArgument("invalid_date_range", "the range may span at most five years", field="to")
    return start, end


def truncate(moment: datetime, interval: Interval) -> datetime:
    """Start of the UTC day, ISO week or month containing `moment`, like date_trunc(unit, moment AT UTC)."""
    interval = parse_interval(interval)
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if interval is Interval.DAY:
        return day
    if interval is Interval.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def bucket_revenue(rows: Iterable[RevenueRow]) -> list[RevenueBucket]:
    """Fold aggregated rows into one bucket per (period, currency), ordered by period then currency.

    Rows for the same key and kind are added up, so the caller may pass finer-grained rows. A credit note's
    total counts as a positive credit whatever its stored sign.
    """
    acc: dict[tuple[datetime, str], list[int]] = {}
    exponents: dict[str, int] = {}
    for row in rows:
        if exponents.setdefault(row.currency, row.exponent) != row.exponent:
            # One currency with two exponents means stored amounts are not comparable; summing them would
            # silently misstate revenue by orders of magnitude.
            raise FailedPrecondition(
                "currency_exponent_mismatch", f"{row.currency} appears with two exponents", field="currency"
            )
        key = (row.period_start.astimezone(UTC), row.currency)
        counts = acc.setdefault(key, [0, 0, 0, 0])
        if row.kind == DocumentKind.INVOICE:
            counts[0] += row.count
            counts[1] += row.total
        elif row.kind == DocumentKind.CREDIT_NOTE:
            counts[2] += row.count
            counts[3] += abs(row.total)
        else:
            raise InvalidArgument("invalid_kind", f"unknown document kind {row.kind!r}", field="kind")
    return [
        RevenueBucket(
            period_start=period,
            currency=currency,
            exponent=exponents[currency],
            invoice_count=inv_count,
            invoice_total=inv_total,
            credit_note_count=cn_count,
            credit_note_total=cn_total,
            net=inv_total - cn_total,
        )
        for (period, currency), (inv_count, inv_total, cn_count, cn_total) in sorted(acc.items())
    ]
