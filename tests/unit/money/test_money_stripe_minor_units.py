"""Stripe's minor units against ISO 4217 (paygate_runtime.money.stripe_minor_units); moved from the gateway."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paygate_runtime.money.currencies import ISO_4217, iso_exponent
from paygate_runtime.money.stripe_minor_units import (
    STRIPE_MINIMUM_CHARGE,
    STRIPE_TWO_DECIMAL_WHOLE_UNITS,
    iso_minor_to_stripe,
    stripe_charge_refusal,
    stripe_charge_step,
    stripe_currency_exponent,
    stripe_exponent,
    stripe_to_iso_minor,
)


@pytest.mark.parametrize(
    ("currency", "expected"),
    [
        ("EUR", 2),
        ("usd", 2),
        ("JPY", 0),
        ("krw", 0),
        ("MGA", 0),
        ("VND", 0),
        ("XOF", 0),
        ("BHD", 3),
        ("KWD", 3),
        ("TND", 3),
        # Zero-decimal for people, but two-decimal in Stripe's API for backwards compatibility.
        ("ISK", 2),
        ("UGX", 2),
        ("HUF", 2),
        ("TWD", 2),
    ],
)
def test_stripe_exponent_follows_stripes_table(currency: str, expected: int) -> None:
    assert stripe_exponent(currency) == expected


@pytest.mark.parametrize(
    ("currency", "expected"),
    [
        ("EUR", 2),
        ("JPY", 0),
        ("ISK", 0),
        ("UGX", 0),
        ("MGA", 2),
        ("HUF", 2),
        ("BHD", 3),
        ("IQD", 3),
        ("xcg", 2),
    ],
)
def test_iso_exponent(currency: str, expected: int) -> None:
    assert iso_exponent(currency) == expected


@pytest.mark.parametrize("currency", ["CLF", "UYW", "XAU", "BGN", "ANG", "ZZZ", "ETH"])
def test_iso_exponent_refuses_codes_that_are_not_payable_currencies(currency: str) -> None:
    with pytest.raises(LookupError):
        iso_exponent(currency)


def test_a_stripe_event_in_a_code_no_session_uses_keeps_stripes_units() -> None:
    # BGN was withdrawn on 2026-01-01; an event in it must still reach the session (and be quarantined as a
    # currency mismatch), so its amount is kept as Stripe wrote it rather than refused as malformed.
    assert stripe_currency_exponent("bgn") == 2
    assert stripe_currency_exponent("isk") == 0  # payable: ISO's exponent, converted from Stripe's 2
    assert stripe_currency_exponent("mga") == 2


def test_isk_stripe_units_are_hundredths_of_a_krona() -> None:
    assert stripe_to_iso_minor(10000, "isk", 0) == 100
    assert iso_minor_to_stripe(100, "ISK", 0) == 10000


def test_isk_fraction_of_a_krona_is_refused() -> None:
    with pytest.raises(ValueError, match="not a whole number"):
        stripe_to_iso_minor(10050, "ISK", 0)


def test_ugx_is_like_isk() -> None:
    assert stripe_to_iso_minor(500, "UGX", 0) == 5
    assert iso_minor_to_stripe(5, "UGX", 0) == 500
    with pytest.raises(ValueError):
        stripe_to_iso_minor(501, "UGX", 0)


def test_huf_and_twd_keep_two_decimals_for_charges() -> None:
    assert stripe_to_iso_minor(1045, "HUF", 2) == 1045
    assert iso_minor_to_stripe(1045, "TWD", 2) == 1045


def test_mga_is_zero_decimal_at_stripe_but_two_in_iso() -> None:
    assert stripe_to_iso_minor(5, "MGA", 2) == 500
    assert iso_minor_to_stripe(500, "MGA", 2) == 5
    with pytest.raises(ValueError):
        iso_minor_to_stripe(550, "MGA", 2)


def test_three_decimal_amounts_must_end_in_zero_when_charging() -> None:
    assert stripe_charge_step("KWD") == 10
    assert iso_minor_to_stripe(5120, "KWD", 3) == 5120
    with pytest.raises(ValueError, match="multiples of 10"):
        iso_minor_to_stripe(5124, "KWD", 3)
    # Stripe may still report such an amount (older charges); reading it is exact.
    assert stripe_to_iso_minor(5124, "KWD", 3) == 5124


def test_jpy_and_eur_are_identical_in_both_systems() -> None:
    assert stripe_to_iso_minor(500, "JPY", 0) == 500
    assert stripe_to_iso_minor(9999, "EUR", 2) == 9999


@pytest.mark.parametrize("amount", [-1, 1.5, True, "100", None])
def test_non_integer_or_negative_amounts_are_refused(amount: object) -> None:
    with pytest.raises(ValueError):
        stripe_to_iso_minor(amount, "EUR", 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        iso_minor_to_stripe(amount, "EUR", 2)  # type: ignore[arg-type]


@pytest.mark.parametrize("currency", ["EU", "EURO", "€€€", "E1R", ""])
def test_bad_currency_codes_are_refused(currency: str) -> None:
    with pytest.raises(ValueError):
        stripe_exponent(currency)


@given(
    st.sampled_from(["EUR", "JPY", "ISK", "UGX", "MGA", "BHD", "HUF", "KRW", "KWD"]),
    st.integers(min_value=0, max_value=10**30),
)
def test_round_trip_is_exact_for_chargeable_amounts(currency: str, whole_units: int) -> None:
    exponent = iso_exponent(currency)
    # Whole units are chargeable in every currency, so the round trip must give back the same amount.
    iso_amount = whole_units * 10**exponent
    assert (
        stripe_to_iso_minor(iso_minor_to_stripe(iso_amount, currency, exponent), currency, exponent)
        == iso_amount
    )


@pytest.mark.parametrize(
    ("currency", "exponent"), sorted((c, ISO_4217[c].exponent) for c in STRIPE_MINIMUM_CHARGE)
)
def test_a_charge_below_stripes_minimum_is_refused_and_the_minimum_itself_is_not(
    currency: str, exponent: int
) -> None:
    minimum = stripe_to_iso_minor(STRIPE_MINIMUM_CHARGE[currency], currency, exponent)
    assert stripe_charge_refusal(minimum, currency, exponent) is None
    below = minimum - (100 if currency in STRIPE_TWO_DECIMAL_WHOLE_UNITS else 1)
    reason = stripe_charge_refusal(below, currency, exponent)
    assert reason is not None and "minimum" in reason and currency in reason


def test_the_minimums_are_stripes_stated_figures() -> None:
    # https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts
    assert stripe_charge_refusal(49, "USD", 2) == "Stripe's minimum charge in USD is 0.50 USD"
    assert stripe_charge_refusal(29, "gbp", 2) == "Stripe's minimum charge in GBP is 0.30 GBP"
    assert stripe_charge_refusal(49, "JPY", 0) == "Stripe's minimum charge in JPY is 50 JPY"
    assert stripe_charge_refusal(17_499, "HUF", 2) == "Stripe's minimum charge in HUF is 175.00 HUF"
    # No stated minimum: only exactness counts (Stripe converts to the settlement currency's minimum itself).
    assert stripe_charge_refusal(1, "ISK", 0) is None
    assert stripe_charge_refusal(10, "KWD", 3) is None
