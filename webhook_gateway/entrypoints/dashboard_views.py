"""Pure helpers of the merchant dashboard: display formats, the revenue chart's geometry, CSV, filters.

No I/O here. Money stays in integer minor units until it is turned into a display string; the chart's
coordinates are the only floats, and they never flow back into an amount.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypedDict

from paygate_runtime.money import format_major

# Every route of the dashboard: HTML for browsers, not part of the JSON API (openapi_document lists them as
# undocumented, as it does /metrics).
ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", "/dashboard"),
    ("GET", "/dashboard/"),
    ("GET", "/dashboard/sign-in"),
    ("POST", "/dashboard/sign-in"),
    ("POST", "/dashboard/sign-out"),
    ("GET", "/dashboard/sessions"),
    ("GET", "/dashboard/sessions/{id}"),
    ("POST", "/dashboard/sessions/{id}/access/revoke/confirm"),
    ("POST", "/dashboard/sessions/{id}/access/revoke"),
    ("POST", "/dashboard/sessions/{id}/access/reissue"),
    ("POST", "/dashboard/sessions/{id}/refund/confirm"),
    ("POST", "/dashboard/sessions/{id}/refund"),
    ("GET", "/dashboard/revenue"),
    ("GET", "/dashboard/revenue.csv"),
    ("GET", "/dashboard/invoices"),
    ("GET", "/dashboard/invoices/{id}/pdf"),
    ("GET", "/dashboard/invoices/{id}/void"),
    ("POST", "/dashboard/invoices/{id}/void"),
    ("GET", "/dashboard/keys"),
    ("POST", "/dashboard/keys/{id}/roll"),
    ("POST", "/dashboard/keys/{id}/revoke/confirm"),
    ("POST", "/dashboard/keys/{id}/revoke"),
    ("POST", "/dashboard/merchant-keys"),
    ("POST", "/dashboard/merchant-keys/{id}/roll"),
    ("POST", "/dashboard/merchant-keys/{id}/revoke/confirm"),
    ("POST", "/dashboard/merchant-keys/{id}/revoke"),
    ("GET", "/dashboard/quarantine"),
    ("POST", "/dashboard/quarantine/{id}/resolve"),
    ("GET", "/dashboard/events"),
    ("POST", "/dashboard/events/{id}/replay"),
    ("GET", "/dashboard/webhooks"),
    ("POST", "/dashboard/webhooks"),
    ("POST", "/dashboard/webhooks/{id}/status"),
    ("POST", "/dashboard/webhooks/{id}/roll"),
    ("POST", "/dashboard/webhooks/{id}/delete/confirm"),
    ("POST", "/dashboard/webhooks/{id}/delete"),
    ("POST", "/dashboard/merchant-events/{id}/redeliver"),
    ("GET", "/dashboard/static/{name}"),
)

# Contract §7, in its order: the event types an endpoint can subscribe to (none chosen: all of them).
MERCHANT_EVENT_TYPES = (
    "session.paid",
    "session.failed",
    "session.expired",
    "session.refunded",
    "refund.succeeded",
    "refund.failed",
    "refund.canceled",
    "invoice.issued",
    "credit_note.issued",
    "customer_key.revoked",
    "quarantine.created",
    "dispute.created",
    "dispute.updated",
    "dispute.closed",
)

INTERVALS = ("day", "week", "month")
# A chart with more bars than this is drawn from the buckets that have data only (no zero-filled gaps).
MAX_FILLED_PERIODS = 400
_SAFE_CODE = re.compile(r"^[a-z0-9_]{1,64}$")


def money_text(amount_minor: int, exponent: int, currency: str) -> str:
    return f"{format_major(amount_minor, exponent)} {currency}".strip()


def when_text(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def safe_code(value: str | None) -> str | None:
    """A message code taken from a query string, only if it looks like one of ours (never free text)."""
    if value and _SAFE_CODE.match(value):
        return value
    return None


MAX_REFUSAL_CHARS = 400


def refusal_text(code: str, message: str, own_words: Mapping[str, str]) -> str:
    """What the merchant reads of a refused action: the dashboard's own words for a code it has them for,
    else the service's message (whitespace folded, cut at MAX_REFUSAL_CHARS); always with the code. The
    template escapes it; it is shown on the page that answers the action, never carried in a URL."""
    own = own_words.get(code)
    if own:
        return f"{own} ({code})"
    readable = " ".join(message.split())[:MAX_REFUSAL_CHARS].rstrip(". ")
    if not readable or readable == code:
        return f"The action was refused ({code})."
    return f"The action was refused: {readable} ({code})."


# --- revenue -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    period_start: datetime
    currency: str
    exponent: int
    invoice_count: int
    invoice_total_minor: int
    credit_note_count: int
    credit_note_total_minor: int
    net_minor: int


def period_start(moment: datetime, interval: str) -> datetime:
    """Start of the UTC day, ISO week (Monday) or month that holds `moment` (as PostgreSQL's date_trunc)."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def next_period(start: datetime, interval: str) -> datetime:
    if interval == "day":
        return start + timedelta(days=1)
    if interval == "week":
        return start + timedelta(days=7)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start.replace(year=year, month=month, day=1)


def periods(start: datetime, end: datetime, interval: str) -> list[datetime]:
    """Every period start from the one holding `start` up to (excluding) `end`; empty if too many."""
    out: list[datetime] = []
    current = period_start(start, interval)
    while current < end:
        out.append(current)
        if len(out) > MAX_FILLED_PERIODS:
            return []
        current = next_period(current, interval)
    return out


def period_label(start: datetime, interval: str) -> str:
    if interval == "month":
        return start.strftime("%b %Y")
    if interval == "week":
        return "Week of " + start.strftime("%d %b %Y")
    return start.strftime("%d %b %Y")


def _short_label(start: datetime, interval: str) -> str:
    if interval == "month":
        return start.strftime("%b %y")
    return start.strftime("%d %b")


@dataclass
class Bar:
    label: str
    short_label: str
    net_minor: int
    invoice_total_minor: int
    credit_note_total_minor: int
    x: float
    width: float
    y: float
    height: float
    negative: bool
    title: str


@dataclass
class Chart:
    currency: str
    exponent: int
    interval: str
    bars: list[Bar] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    x_labels: list[tuple[float, str]] = field(default_factory=list)
    zero_y: float = 0.0
    width: int = 720
    height: int = 260
    plot_left: int = 72
    plot_right: int = 712
    plot_top: int = 12
    plot_bottom: int = 228
    total_net_minor: int = 0
    total_invoices_minor: int = 0
    total_credit_notes_minor: int = 0
    invoice_count: int = 0
    credit_note_count: int = 0

    @property
    def total_net(self) -> str:
        return money_text(self.total_net_minor, self.exponent, self.currency)

    @property
    def total_invoices(self) -> str:
        return money_text(self.total_invoices_minor, self.exponent, self.currency)

    @property
    def total_credit_notes(self) -> str:
        return money_text(self.total_credit_notes_minor, self.exponent, self.currency)


def _nice_step(span: int) -> int:
    """A round step (1, 2 or 5 times a power of ten) that cuts `span` into about four parts."""
    if span <= 0:
        return 1
    raw = span / 4
    power = 1
    while power * 10 <= raw:
        power *= 10
    for factor in (1, 2, 5, 10):
        if power * factor >= raw:
            return power * factor
    return power * 10


# Two drawings of each chart: a wide one for desktops and a narrow one for phones (an SVG scaled down to a
# phone's width would shrink its labels to nothing). CSS shows one of them.
class ChartSize(TypedDict):
    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int


WIDE: ChartSize = {
    "width": 960,
    "height": 280,
    "plot_left": 76,
    "plot_right": 950,
    "plot_top": 12,
    "plot_bottom": 248,
}
NARROW: ChartSize = {
    "width": 360,
    "height": 240,
    "plot_left": 52,
    "plot_right": 352,
    "plot_top": 10,
    "plot_bottom": 210,
}


def revenue_charts(
    buckets: Sequence[Bucket], start: datetime, end: datetime, interval: str, size: ChartSize = WIDE
) -> list[Chart]:
    """One bar chart of net revenue per currency, every period of the range present (zero where no bucket)."""
    by_currency: dict[str, dict[datetime, Bucket]] = {}
    exponents: dict[str, int] = {}
    for bucket in buckets:
        by_currency.setdefault(bucket.currency, {})[bucket.period_start] = bucket
        exponents[bucket.currency] = bucket.exponent
    filled = periods(start, end, interval)
    charts = []
    for currency in sorted(by_currency):
        rows = by_currency[currency]
        starts = sorted(set(filled) | set(rows)) if filled else sorted(rows)
        charts.append(_chart(currency, exponents[currency], interval, starts, rows, size))
    return charts


def _chart(
    currency: str,
    exponent: int,
    interval: str,
    starts: list[datetime],
    rows: dict[datetime, Bucket],
    size: ChartSize,
) -> Chart:
    chart = Chart(currency=currency, exponent=exponent, interval=interval, **size)
    values = [rows[s].net_minor if s in rows else 0 for s in starts]
    top = max([0, *values])
    bottom = min([0, *values])
    step = _nice_step(top - bottom)
    top = -(-top // step) * step if top > 0 else 0
    bottom = (bottom // step) * step if bottom < 0 else 0
    if top == bottom:
        top = step
    plot_h = chart.plot_bottom - chart.plot_top
    plot_w = chart.plot_right - chart.plot_left

    def y_of(value: int) -> float:
        return chart.plot_top + (top - value) * plot_h / (top - bottom)

    chart.zero_y = round(y_of(0), 2)
    tick = bottom
    while tick <= top:
        chart.ticks.append((round(y_of(tick), 2), format_major(tick, exponent)))
        tick += step
    slot = plot_w / max(1, len(starts))
    bar_w = max(1.0, min(48.0, slot * 0.7))
    label_every = max(1, math.ceil(len(starts) / (8 if chart.width > 500 else 4)))
    for index, begin in enumerate(starts):
        bucket = rows.get(begin)
        net = bucket.net_minor if bucket else 0
        invoices = bucket.invoice_total_minor if bucket else 0
        credits = bucket.credit_note_total_minor if bucket else 0
        x = chart.plot_left + slot * index + (slot - bar_w) / 2
        y_value = y_of(net)
        y = min(y_value, chart.zero_y)
        height = abs(chart.zero_y - y_value)
        label = period_label(begin, interval)
        chart.bars.append(
            Bar(
                label=label,
                short_label=_short_label(begin, interval),
                net_minor=net,
                invoice_total_minor=invoices,
                credit_note_total_minor=credits,
                x=round(x, 2),
                width=round(bar_w, 2),
                y=round(y, 2),
                # A zero bar is drawn as a hairline so that the period is visibly there.
                height=round(max(height, 0.75), 2),
                negative=net < 0,
                title=f"{label}: net {money_text(net, exponent, currency)}",
            )
        )
        if index % label_every == 0:
            chart.x_labels.append((round(x + bar_w / 2, 2), _short_label(begin, interval)))
        if bucket:
            chart.total_net_minor += net
            chart.total_invoices_minor += invoices
            chart.total_credit_notes_minor += credits
            chart.invoice_count += bucket.invoice_count
            chart.credit_note_count += bucket.credit_note_count
    return chart


CSV_HEADER = (
    "period_start",
    "currency",
    "invoice_count",
    "invoice_total",
    "credit_note_count",
    "credit_note_total",
    "net",
)


def revenue_csv(buckets: Iterable[Bucket]) -> str:
    """The buckets as `GET /v1/revenue` has them, one row each, amounts as exact major-unit decimals."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for b in buckets:
        writer.writerow(
            (
                b.period_start.isoformat().replace("+00:00", "Z"),
                b.currency,
                b.invoice_count,
                format_major(b.invoice_total_minor, b.exponent),
                b.credit_note_count,
                format_major(b.credit_note_total_minor, b.exponent),
                format_major(b.net_minor, b.exponent),
            )
        )
    return out.getvalue()


# --- session list filters ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionFilter:
    """The Sessions page's filters as the form has them (days, major-unit amounts). The session service
    applies them in SQL (ListSessionsRequest); `list_fields` turns them into that request's fields."""

    status: str = ""
    provider: str = ""
    email: str = ""
    created_from: date | None = None
    created_to: date | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    currency: str = ""
    errors: tuple[str, ...] = ()

    @property
    def has_amount(self) -> bool:
        return self.amount_min is not None or self.amount_max is not None

    def query(self) -> dict[str, str]:
        pairs = {
            "status": self.status,
            "provider": self.provider,
            "email": self.email,
            "from": self.created_from.isoformat() if self.created_from else "",
            "to": self.created_to.isoformat() if self.created_to else "",
            "min": str(self.amount_min) if self.amount_min is not None else "",
            "max": str(self.amount_max) if self.amount_max is not None else "",
            "currency": self.currency,
        }
        return {k: v for k, v in pairs.items() if v}

    def list_fields(self, exponent: int | None) -> tuple[dict[str, Any], list[str]]:
        """ListSessionsRequest fields (timestamps as datetimes; the caller stamps them) and the errors that
        stop the list. `exponent` is the minor unit of `currency` (None: unknown), needed by an amount."""
        fields: dict[str, Any] = {}
        errors: list[str] = []
        if self.provider:
            fields["provider"] = self.provider
        if self.email:
            fields["customer_email"] = self.email
        if self.created_from:
            fields["created_from"] = datetime.combine(self.created_from, datetime.min.time(), UTC)
        if self.created_to and self.created_to < date.max:
            # `to` is a day the range includes: the list ends at the next midnight (exclusive).
            next_day = self.created_to + timedelta(days=1)
            fields["created_to"] = datetime.combine(next_day, datetime.min.time(), UTC)
        if self.created_from and self.created_to and self.created_to < self.created_from:
            errors.append("Created to must not be before Created from.")
        if self.currency:
            fields["currency"] = self.currency
        if self.has_amount:
            if not self.currency or exponent is None:
                errors.append("Choose a currency to filter by amount: each session is priced in its own.")
                return fields, errors
            for name, value, label in (
                ("amount_min_minor", self.amount_min, "Amount from"),
                ("amount_max_minor", self.amount_max, "Amount to"),
            ):
                if value is None:
                    continue
                minor = to_minor(value, exponent)
                if minor is None:
                    errors.append(f"{label} has more decimals than {self.currency} has ({exponent}).")
                elif len(str(minor)) > MAX_MINOR_DIGITS:
                    errors.append(f"{label} is larger than any session can be.")
                else:
                    fields[name] = str(minor)
            if (
                self.amount_min is not None
                and self.amount_max is not None
                and self.amount_max < self.amount_min
            ):
                errors.append("Amount to must not be below Amount from.")
        return fields, errors


MAX_MINOR_DIGITS = 78  # NUMERIC(78,0): the largest amount a session can hold


def to_minor(amount: Decimal, exponent: int) -> int | None:
    """An exact major-unit amount in minor units, or None when it has more decimals than the currency."""
    scaled = amount.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        return None
    return int(scaled)


STATUSES = ("created", "pending", "paid", "failed", "expired", "refunded")
PROVIDERS = ("stripe", "onecom", "web3", "card")


def parse_session_filter(query: Any) -> SessionFilter:
    errors: list[str] = []
    status = query.get("status", "")
    if status not in ("", *STATUSES):
        errors.append("Unknown status.")
        status = ""
    provider = query.get("provider", "")
    if provider not in ("", *PROVIDERS):
        errors.append("Unknown provider.")
        provider = ""
    email = query.get("email", "").strip()
    if len(email) > 254 or any(ord(c) < 32 or ord(c) == 127 for c in email):
        errors.append("Customer email must be an email address.")
        email = ""

    def day(name: str, label: str) -> date | None:
        raw = query.get(name, "").strip()
        if not raw:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            errors.append(f"{label} must be a date like 2026-01-31.")
            return None

    def amount(name: str, label: str) -> Decimal | None:
        raw = query.get(name, "").strip()
        if not raw:
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            value = None
        # The magnitude bound keeps exponent notation ("1e999999") from overflowing the minor-unit scaling.
        if (
            value is None
            or not value.is_finite()
            or value < 0
            or len(raw) > 30
            or not -40 < value.adjusted() < 79
        ):
            errors.append(f"{label} must be a positive amount like 10.50.")
            return None
        return value

    currency = query.get("currency", "").strip().upper()
    if currency and not (currency.isascii() and currency.isalnum() and len(currency) <= 11):
        errors.append("Currency must be a code like EUR or a token symbol like USDC.")
        currency = ""
    return SessionFilter(
        status=status,
        provider=provider,
        email=email,
        currency=currency,
        created_from=day("from", "From"),
        created_to=day("to", "To"),
        amount_min=amount("min", "Amount from"),
        amount_max=amount("max", "Amount to"),
        errors=tuple(errors),
    )
