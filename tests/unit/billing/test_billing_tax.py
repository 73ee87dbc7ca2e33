from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_service.domain.tax import divide_half_even, format_rate, split_tax, tax_share, validate_tax_rate
from paygate_runtime.errors import InvalidArgument

totals = st.integers(min_value=-(10**30), max_value=10**30)
rates = st.integers(min_value=0, max_value=10_000)


@given(total=totals, rate=rates)
def test_net_plus_tax_is_exactly_the_total(total: int, rate: int) -> None:
    split = split_tax(total, rate)
    assert split.net + split.tax == total
    assert split.total == total


@given(total=totals)
def test_zero_rate_means_zero_tax(total: int) -> None:
    assert tax_share(total, 0) == 0


@given(total=totals, rate=rates)
def test_net_is_the_exact_quotient_rounded_half_to_even(total: int, rate: int) -> None:
    # Python's round() on a Fraction is exact banker's rounding: an independent oracle.
    exact_net = Fraction(total * 10_000, 10_000 + rate)
    assert split_tax(total, rate).net == round(exact_net)


@given(total=st.integers(min_value=0, max_value=10**30), rate=rates)
def test_tax_of_a_positive_total_is_between_zero_and_half(total: int, rate: int) -> None:
    tax = tax_share(total, rate)
    # rate <= 100 % means the tax share is at most half the gross, up to one minor unit of rounding.
    assert 0 <= tax <= total // 2 + 1


@given(total=totals, rate=rates)
def test_negating_the_total_negates_the_split(total: int, rate: int) -> None:
    # A credit note is the exact negation of its invoice; half-even rounding is symmetric around zero.
    positive, negative = split_tax(total, rate), split_tax(-total, rate)
    assert (negative.net, negative.tax) == (-positive.net, -positive.tax)


@pytest.mark.parametrize(
    ("total", "rate", "tax"),
    [
        (11_900, 1_900, 1_900),  # 119.00 gross at 19 % is 100.00 + 19.00
        (9_999, 1_900, 1_596),  # 99.99 / 1.19 = 84.025..., net 84.03
        (100, 700, 7),  # 1.00 / 1.07 = 0.934..., net 0.93
        (1, 10_000, 1),  # 0.5 rounds to even 0: the whole cent is tax
        (3, 10_000, 1),  # 1.5 rounds to even 2
        (5, 10_000, 3),  # 2.5 rounds to even 2
        (10**18, 2_000, 166_666_666_666_666_667),  # 1 ETH at 20 %: no float precision loss
    ],
)
def test_known_splits(total: int, rate: int, tax: int) -> None:
    assert tax_share(total, rate) == tax


@pytest.mark.parametrize("rate", [-1, 10_001, True, "1900", 19.0])
def test_rate_outside_0_to_10000_bps_is_refused(rate: object) -> None:
    with pytest.raises(InvalidArgument) as err:
        validate_tax_rate(rate)  # type: ignore[arg-type]
    assert err.value.code == "invalid_tax_rate"
    assert err.value.field == "tax_rate_bps"


def test_float_amount_is_refused() -> None:
    with pytest.raises(InvalidArgument) as err:
        split_tax(99.99, 1900)  # type: ignore[arg-type]
    assert err.value.code == "invalid_amount"


@given(numerator=st.integers(-(10**20), 10**20), denominator=st.integers(1, 10**6))
def test_divide_half_even_matches_fraction_rounding(numerator: int, denominator: int) -> None:
    assert divide_half_even(numerator, denominator) == round(Fraction(numerator, denominator))


@pytest.mark.parametrize(
    ("rate", "text"), [(0, "0"), (1900, "19"), (750, "7.5"), (5, "0.05"), (10_000, "100")]
)
def test_rate_is_formatted_as_an_exact_percentage(rate: int, text: str) -> None:
    assert format_rate(rate) == text
