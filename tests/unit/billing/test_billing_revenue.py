from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_service.domain.invoices import DocumentKind
from billing_service.domain.revenue import (
    Interval,
    RevenueRow,
    bucket_revenue,
    date_trunc_unit,
    parse_interval,
    truncate,
    validate_range,
)
from paygate_runtime.errors import FailedPrecondition, InvalidArgument

JAN = datetime(2025, 1, 1, tzinfo=UTC)
FEB = datetime(2025, 2, 1, tzinfo=UTC)
INV, CN = DocumentKind.INVOICE, DocumentKind.CREDIT_NOTE


def test_credit_note_nets_out_and_currencies_never_mix() -> None:
    buckets = bucket_revenue(
        [
            RevenueRow(JAN, "EUR", 2, INV, 3, 30_000),
            RevenueRow(JAN, "EUR", 2, CN, 1, -10_000),
            RevenueRow(JAN, "JPY", 0, INV, 1, 500),
        ]
    )
    eur, jpy = buckets
    assert (eur.currency, eur.invoice_count, eur.invoice_total) == ("EUR", 3, 30_000)
    assert (eur.credit_note_count, eur.credit_note_total, eur.net) == (1, 10_000, 20_000)
    assert (jpy.currency, jpy.exponent, jpy.net, jpy.credit_note_count) == ("JPY", 0, 500, 0)


def test_fully_credited_period_nets_to_zero() -> None:
    (bucket,) = bucket_revenue(
        [RevenueRow(JAN, "EUR", 2, INV, 1, 9_999), RevenueRow(JAN, "EUR", 2, CN, 1, -9_999)]
    )
    assert bucket.net == 0


def test_buckets_are_ordered_by_period_then_currency_and_rows_merge() -> None:
    buckets = bucket_revenue(
        [
            RevenueRow(FEB, "EUR", 2, INV, 1, 100),
            RevenueRow(JAN, "USD", 2, INV, 1, 200),
            RevenueRow(JAN, "EUR", 2, INV, 1, 300),
            RevenueRow(JAN, "EUR", 2, INV, 2, 400),
        ]
    )
    assert [(b.period_start, b.currency) for b in buckets] == [(JAN, "EUR"), (JAN, "USD"), (FEB, "EUR")]
    assert (buckets[0].invoice_count, buckets[0].invoice_total) == (3, 700)


def test_only_credit_notes_in_a_bucket_give_a_negative_net() -> None:
    (bucket,) = bucket_revenue([RevenueRow(FEB, "EUR", 2, CN, 2, -500)])
    assert (bucket.invoice_count, bucket.credit_note_total, bucket.net) == (0, 500, -500)


def test_one_currency_with_two_exponents_is_refused() -> None:
    with pytest.raises(FailedPrecondition) as err:
        bucket_revenue([RevenueRow(JAN, "EUR", 2, INV, 1, 1), RevenueRow(FEB, "EUR", 3, INV, 1, 1)])
    assert err.value.code == "currency_exponent_mismatch"


def test_kind_given_as_plain_text_is_understood() -> None:
    (bucket,) = bucket_revenue([RevenueRow(JAN, "EUR", 2, "credit_note", 1, -5)])  # type: ignore[arg-type]
    assert bucket.credit_note_count == 1


@given(
    st.lists(
        st.tuples(
            st.sampled_from([JAN, FEB]),
            st.sampled_from(["EUR", "USD"]),
            st.booleans(),
            st.integers(1, 10**12),
        ),
        max_size=30,
    )
)
def test_net_of_all_buckets_equals_the_signed_sum_of_documents(
    docs: list[tuple[datetime, str, bool, int]],
) -> None:
    rows = [
        RevenueRow(p, c, 2, CN if is_cn else INV, 1, -amount if is_cn else amount)
        for p, c, is_cn, amount in docs
    ]
    buckets = bucket_revenue(rows)
    for currency in ("EUR", "USD"):
        assert sum(b.net for b in buckets if b.currency == currency) == sum(
            r.total for r in rows if r.currency == currency
        )
    assert sum(b.invoice_count + b.credit_note_count for b in buckets) == len(docs)
    assert all(b.credit_note_total >= 0 and b.net == b.invoice_total - b.credit_note_total for b in buckets)


@pytest.mark.parametrize(
    ("text", "interval"), [("day", Interval.DAY), ("WEEK", Interval.WEEK), ("month", Interval.MONTH)]
)
def test_interval_parsing(text: str, interval: Interval) -> None:
    assert parse_interval(text) is interval
    assert date_trunc_unit(interval) == interval.value


@pytest.mark.parametrize("text", ["", "year", "hour", None, 1])
def test_unknown_interval_is_refused(text: object) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_interval(text)
    assert (err.value.code, err.value.field) == ("invalid_interval", "interval")


def test_truncate_matches_postgres_date_trunc_semantics() -> None:
    moment = datetime(2025, 3, 14, 23, 59, tzinfo=UTC)  # a Friday
    assert truncate(moment, Interval.DAY) == datetime(2025, 3, 14, tzinfo=UTC)
    assert truncate(moment, Interval.WEEK) == datetime(2025, 3, 10, tzinfo=UTC)  # ISO week starts Monday
    assert truncate(moment, Interval.MONTH) == datetime(2025, 3, 1, tzinfo=UTC)
    # Buckets are UTC: 00:30 in Berlin on 1 April is still March.
    berlin = timezone(timedelta(hours=2))
    assert truncate(datetime(2025, 4, 1, 0, 30, tzinfo=berlin), Interval.MONTH) == datetime(
        2025, 3, 1, tzinfo=UTC
    )


def test_range_must_be_ordered_aware_and_at_most_five_years() -> None:
    assert validate_range(JAN, FEB) == (JAN, FEB)
    for start, end in [
        (FEB, JAN),
        (JAN, JAN),
        (JAN, JAN + timedelta(days=5 * 366 + 1)),
        (datetime(2025, 1, 1), FEB),
    ]:
        with pytest.raises(InvalidArgument) as err:
            validate_range(start, end)
        assert err.value.code == "invalid_date_range"
    assert validate_range(JAN, JAN + timedelta(days=5 * 365))[1] == JAN + timedelta(days=5 * 365)
