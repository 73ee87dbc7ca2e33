"""Pure helpers of the merchant dashboard: the revenue chart's geometry, its CSV, the session filters."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

from webhook_gateway.entrypoints import dashboard_views as views


def _bucket(day: int, net: int, *, currency: str = "EUR", credits: int = 0, month: int = 3) -> views.Bucket:
    return views.Bucket(
        period_start=datetime(2026, month, day, tzinfo=UTC),
        currency=currency,
        exponent=2,
        invoice_count=1,
        invoice_total_minor=net + credits,
        credit_note_count=1 if credits else 0,
        credit_note_total_minor=credits,
        net_minor=net,
    )


def test_every_day_of_the_range_is_a_bar_and_the_bars_carry_the_exact_figures() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    end = datetime(2026, 3, 8, tzinfo=UTC)
    (chart,) = views.revenue_charts([_bucket(2, 4900), _bucket(5, 12000)], start, end, "day")
    assert [b.net_minor for b in chart.bars] == [0, 4900, 0, 0, 12000, 0, 0]
    assert chart.total_net == "169.00 EUR" and chart.invoice_count == 2
    tallest = max(chart.bars, key=lambda b: b.height)
    assert tallest.net_minor == 12000 and tallest.y >= chart.plot_top
    assert all(chart.plot_left <= b.x and b.x + b.width <= chart.plot_right for b in chart.bars)
    assert all(abs(b.y + b.height - chart.zero_y) < 0.01 for b in chart.bars if b.net_minor > 0)


def test_negative_net_hangs_below_the_axis_and_currencies_get_their_own_chart() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    end = datetime(2026, 3, 3, tzinfo=UTC)
    charts = views.revenue_charts(
        [_bucket(1, -500, credits=1500), _bucket(2, 2000), _bucket(1, 7, currency="USD")], start, end, "day"
    )
    assert [c.currency for c in charts] == ["EUR", "USD"]
    eur = charts[0]
    negative = eur.bars[0]
    assert negative.negative and abs(negative.y - eur.zero_y) < 0.01
    assert eur.total_net_minor == 1500 and eur.total_credit_notes == "15.00 EUR"


def test_weeks_start_on_monday_and_months_on_the_first() -> None:
    moment = datetime(2026, 12, 5, 17, 40, tzinfo=UTC)  # a Saturday
    assert views.period_start(moment, "week") == datetime(2026, 11, 30, tzinfo=UTC)
    assert views.period_start(moment, "month") == datetime(2026, 12, 1, tzinfo=UTC)
    assert views.next_period(datetime(2026, 12, 1, tzinfo=UTC), "month") == datetime(2027, 1, 1, tzinfo=UTC)
    starts = views.periods(datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC), "month")
    assert [s.month for s in starts] == [1, 2, 3]


def test_too_many_periods_draw_only_the_buckets() -> None:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    end = datetime(2026, 1, 1, tzinfo=UTC)
    (chart,) = views.revenue_charts([_bucket(1, 100), _bucket(2, 200)], start, end, "day")
    assert len(chart.bars) == 2


def test_csv_has_the_json_figures_as_exact_decimals() -> None:
    text = views.revenue_csv([_bucket(2, 4900, credits=100)])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(views.CSV_HEADER)
    assert rows[1] == ["2026-03-02T00:00:00Z", "EUR", "1", "50.00", "1", "1.00", "49.00"]


def test_session_filter_becomes_the_list_request_fields() -> None:
    f = views.parse_session_filter(
        {
            "provider": "onecom",
            "email": " Ann@Example.com ",
            "from": "2026-03-01",
            "to": "2026-03-31",
            "min": "10",
            "max": "50.5",
            "currency": "eur",
        }
    )
    assert not f.errors and f.currency == "EUR"
    fields, errors = f.list_fields(2)
    assert not errors
    assert fields == {
        "provider": "onecom",
        "customer_email": "Ann@Example.com",
        "created_from": datetime(2026, 3, 1, tzinfo=UTC),
        # `to` is a day the range includes: up to the next midnight, exclusive.
        "created_to": datetime(2026, 4, 1, tzinfo=UTC),
        "currency": "EUR",
        "amount_min_minor": "1000",
        "amount_max_minor": "5050",
    }
    assert f.query() == {
        "provider": "onecom",
        "email": "Ann@Example.com",
        "from": "2026-03-01",
        "to": "2026-03-31",
        "min": "10",
        "max": "50.5",
        "currency": "EUR",
    }
    assert f.amount_min == Decimal("10") and f.created_from == date(2026, 3, 1)
    # The same major amount is another number of minor units in another currency (JPY has none).
    assert (
        views.parse_session_filter({"min": "1000", "currency": "JPY"}).list_fields(0)[0]["amount_min_minor"]
        == "1000"
    )


def test_an_amount_needs_a_currency_and_fits_its_minor_unit() -> None:
    assert views.parse_session_filter({"min": "10"}).list_fields(None)[1]
    fields, errors = views.parse_session_filter({"min": "10.005", "currency": "EUR"}).list_fields(2)
    assert errors and "amount_min_minor" not in fields
    fields, errors = views.parse_session_filter({"min": "5", "max": "4", "currency": "EUR"}).list_fields(2)
    assert errors
    # The last day a date input can hold has no next midnight: no upper bound rather than an overflow.
    fields, errors = views.parse_session_filter({"to": "9999-12-31"}).list_fields(None)
    assert not errors and "created_to" not in fields


def test_bad_filters_are_named_not_raised() -> None:
    f = views.parse_session_filter(
        {
            "status": "bogus",
            "from": "yesterday",
            "min": "-1",
            "max": "NaN",
            "email": "a\x00@b",
            "currency": "€",
        }
    )
    assert len(f.errors) == 6 and not f.has_amount and f.status == "" and f.email == "" and f.currency == ""
    assert views.parse_session_filter({"min": "1e999999"}).errors


def test_only_our_message_codes_come_from_a_query_string() -> None:
    assert views.safe_code("key_revoked") == "key_revoked"
    assert (
        views.safe_code("<script>") is None
        and views.safe_code("a" * 65) is None
        and views.safe_code("") is None
    )


def test_a_refusal_reads_in_the_services_words_with_its_code() -> None:
    own = {"last_key": "This is the last active secret key of this mode."}
    assert views.refusal_text(
        "invoice_partially_credited", "refunds already credited this invoice, in part or in full", own
    ) == (
        "The action was refused: refunds already credited this invoice, in part or in full "
        "(invoice_partially_credited)."
    )
    assert views.refusal_text("last_key", "cannot revoke", own) == (
        "This is the last active secret key of this mode. (last_key)"
    )
    assert views.refusal_text("odd", "", own) == "The action was refused (odd)."
    assert views.refusal_text("odd", "odd", own) == "The action was refused (odd)."
    long = views.refusal_text("x", "word\n" * 500, own)
    assert "\n" not in long and len(long) < views.MAX_REFUSAL_CHARS + 40


def test_the_dashboard_templates_escape_a_refusal() -> None:
    from aiohttp import web

    from webhook_gateway.entrypoints import browser_session
    from webhook_gateway.entrypoints.routes_dashboard import TEMPLATES

    app = web.Application()
    browser_session.setup_templates(app, TEMPLATES)
    text = views.refusal_text("bad", "<img src=x onerror=alert(1)> & more", {})
    html = (
        app[TEMPLATES]
        .get_template("dashboard/message.html")
        .render(nav=(), ctx=None, title="Refused", message=text)
    )
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt; &amp; more (bad)" in html
