from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_service.domain.numbering import (
    NO_RESET_PERIOD,
    counter_scope,
    first_free_sequence,
    format_invoice_number,
    parse_invoice_number,
    validate_prefix,
)
from paygate_runtime.errors import InvalidArgument


def test_number_is_prefix_year_and_six_digit_sequence() -> None:
    assert format_invoice_number("INV", 2025, 42) == "INV-2025-000042"
    assert format_invoice_number("ACME2", 2026, 1) == "ACME2-2026-000001"


def test_sequence_grows_past_six_digits_without_truncation() -> None:
    assert format_invoice_number("INV", 2025, 999_999) == "INV-2025-999999"
    assert format_invoice_number("INV", 2025, 1_000_000) == "INV-2025-1000000"


@pytest.mark.parametrize("prefix", ["", "inv", "IN-V", "ÄBC", "ABCDEFGHIJKLM", " INV", "INV\n"])
def test_bad_prefix_is_refused_with_stable_code(prefix: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        validate_prefix(prefix)
    assert err.value.code == "invalid_invoice_prefix"
    assert err.value.field == "invoice_prefix"


@pytest.mark.parametrize("prefix", ["A", "INV", "X9", "ABCDEFGHIJKL"])
def test_good_prefix_is_accepted(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize("sequence", [0, -1, True])
def test_sequence_must_be_positive(sequence: int) -> None:
    with pytest.raises(InvalidArgument) as err:
        format_invoice_number("INV", 2025, sequence)
    assert err.value.code == "invalid_sequence"


@given(
    prefix=st.from_regex(r"[A-Z0-9]{1,12}", fullmatch=True),
    year=st.integers(1, 9999),
    sequence=st.integers(1, 10**12),
)
def test_parse_inverts_format(prefix: str, year: int, sequence: int) -> None:
    parsed = parse_invoice_number(format_invoice_number(prefix, year, sequence))
    assert (parsed.prefix, parsed.year, parsed.sequence) == (prefix, year, sequence)
    assert str(parsed) == format_invoice_number(prefix, year, sequence)


@pytest.mark.parametrize(
    "number",
    ["", "INV-2025-00001", "INV-2025-0000001", "INV-2025-000000", "INV-0000-000001", "inv-2025-000001",
     "INV-25-000001", "INV_2025_000001", "INV-2025-000001 ", "INV-2025-00000a"],
)  # fmt: skip
def test_parse_refuses_non_canonical_numbers(number: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_invoice_number(number)
    assert err.value.code == "invalid_invoice_number"


def test_counter_is_per_merchant_and_mode_and_ignores_year_by_default() -> None:
    jan_2025 = datetime(2025, 1, 1, tzinfo=UTC)
    dec_2026 = datetime(2026, 12, 31, tzinfo=UTC)
    live_2025 = counter_scope("m1", "live", reset_yearly=False, issued_at=jan_2025)
    assert live_2025 == counter_scope("m1", "live", reset_yearly=False, issued_at=dec_2026)
    assert live_2025.period == NO_RESET_PERIOD
    assert not live_2025.resets_yearly
    assert live_2025 != counter_scope("m1", "test", reset_yearly=False, issued_at=jan_2025)
    assert live_2025 != counter_scope("m2", "live", reset_yearly=False, issued_at=jan_2025)


def test_yearly_reset_puts_each_utc_year_on_its_own_counter() -> None:
    scope_2025 = counter_scope("m1", "live", reset_yearly=True, issued_at=datetime(2025, 6, 1, tzinfo=UTC))
    scope_2026 = counter_scope("m1", "live", reset_yearly=True, issued_at=datetime(2026, 6, 1, tzinfo=UTC))
    assert scope_2025.period == 2025
    assert scope_2026.period == 2026
    assert scope_2025.key != scope_2026.key
    assert scope_2025.resets_yearly


def test_year_is_taken_in_utc_not_in_the_callers_zone() -> None:
    # 00:30 on 1 January in Berlin is still the previous year in UTC.
    berlin = timezone(timedelta(hours=1))
    scope = counter_scope(
        "m1", "live", reset_yearly=True, issued_at=datetime(2026, 1, 1, 0, 30, tzinfo=berlin)
    )
    assert scope.period == 2025


def test_counter_scope_refuses_bad_input() -> None:
    with pytest.raises(InvalidArgument) as err:
        counter_scope("m1", "live", reset_yearly=True, issued_at=datetime(2025, 1, 1))
    assert err.value.code == "invalid_issued_at"
    with pytest.raises(InvalidArgument) as err:
        counter_scope("m1", "prod", reset_yearly=False, issued_at=datetime(2025, 1, 1, tzinfo=UTC))
    assert err.value.code == "invalid_mode"
    with pytest.raises(InvalidArgument) as err:
        counter_scope("", "live", reset_yearly=False, issued_at=datetime(2025, 1, 1, tzinfo=UTC))
    assert err.value.code == "missing_merchant_id"


def test_a_drawn_sequence_whose_number_is_free_is_kept() -> None:
    assert first_free_sequence(1, frozenset()) == 1
    assert first_free_sequence(7, frozenset({1, 2, 8})) == 7


def test_taken_numbers_are_skipped_so_a_switched_counter_carries_on_after_them() -> None:
    # Yearly numbering turned on after INV-2026-000001 was printed by the never-resetting counter.
    assert first_free_sequence(1, frozenset({1})) == 2
    # And back: the never-resetting counter (at 2) carries on after the year's 2 and 3.
    assert first_free_sequence(2, frozenset({1, 2, 3})) == 4


@given(drawn=st.integers(1, 60), taken=st.frozensets(st.integers(1, 80), max_size=40))
def test_first_free_sequence_is_the_smallest_free_one_from_the_drawn_one(
    drawn: int, taken: frozenset[int]
) -> None:
    chosen = first_free_sequence(drawn, taken)
    assert chosen >= drawn and chosen not in taken
    assert all(s in taken for s in range(drawn, chosen))  # nothing free was passed over: no gap made


@pytest.mark.parametrize("drawn", [0, -3, True])
def test_first_free_sequence_refuses_a_non_positive_start(drawn: int) -> None:
    with pytest.raises(InvalidArgument) as err:
        first_free_sequence(drawn, frozenset())
    assert err.value.code == "invalid_sequence"
