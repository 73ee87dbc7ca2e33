"""The ISO 4217 table, the asset rules, and round-trip properties of exact amounts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paygate_runtime.errors import InvalidArgument
from paygate_runtime.money import (
    ISO_4217,
    MAX_DECIMALS,
    format_major,
    parse_amount,
    validate_token_definitions,
)
from paygate_runtime.money.assets import NATIVE_COIN, NATIVE_DECIMALS
from paygate_runtime.money.currencies import ISO_RESERVED, NOT_PAYABLE, WITHDRAWN, reported_exponent
from paygate_runtime.money.stripe_minor_units import (
    STRIPE_THREE_DECIMAL,
    STRIPE_TWO_DECIMAL_WHOLE_UNITS,
    STRIPE_ZERO_DECIMAL,
    iso_minor_to_stripe,
    stripe_charge_step,
    stripe_to_iso_minor,
)

# --- ISO 4217, list one as SIX published it on 2026-01-01 -------------------------------------------------


def test_list_one_facts_that_changed_recently() -> None:
    assert "BGN" not in ISO_4217  # Bulgaria adopted the euro on 2026-01-01
    assert ISO_4217["XCG"].numeric == 532 and "ANG" in WITHDRAWN  # Caribbean guilder took ANG's number
    assert ISO_4217["ZWG"].exponent == 2 and WITHDRAWN["ZWL"] == "ZWG"
    assert ISO_4217["SLE"].exponent == 2 and WITHDRAWN["SLL"] == "SLE"
    assert {"VED", "VES"} <= set(ISO_4217)


def test_table_shape() -> None:
    assert len(ISO_4217) == 155
    assert len({c.numeric for c in ISO_4217.values()}) == len(ISO_4217)
    for code, currency in ISO_4217.items():
        assert code == currency.code and len(code) == 3 and code.isascii() and code.isupper()
        assert currency.exponent in (0, 2, 3)
    assert not set(ISO_4217) & set(NOT_PAYABLE)
    assert not set(ISO_4217) & set(WITHDRAWN)
    assert set(WITHDRAWN.values()) <= set(ISO_4217)


@pytest.mark.parametrize(
    ("code", "exponent"),
    [("ISK", 0), ("UGX", 0), ("JPY", 0), ("KRW", 0), ("CLP", 0), ("XOF", 0), ("VUV", 0), ("MGA", 2),
     ("HUF", 2), ("TWD", 2), ("EUR", 2), ("BHD", 3), ("IQD", 3), ("JOD", 3), ("KWD", 3), ("LYD", 3),
     ("OMR", 3), ("TND", 3)],
)  # fmt: skip
def test_minor_units_are_iso_not_locale_data(code: str, exponent: int) -> None:
    # CLDR (locale data) says 0 digits for HUF/TWD cash and 2 for ISK in some versions; ISO is the source.
    assert ISO_4217[code].exponent == exponent


def test_fund_codes_metals_and_units_of_account_are_not_payable() -> None:
    funds = {"BOV", "CHE", "CHW", "CLF", "COU", "MXV", "USN", "UYI", "UYW"}
    others = {
        "XAU",
        "XAG",
        "XPD",
        "XPT",
        "XDR",
        "XSU",
        "XUA",
        "XAD",
        "XBA",
        "XBB",
        "XBC",
        "XBD",
        "XTS",
        "XXX",
    }
    assert set(NOT_PAYABLE) == funds | others
    assert funds | others | {"BGN"} <= ISO_RESERVED


def test_reported_exponent_never_drops_an_event() -> None:
    assert reported_exponent("jpy") == 0
    assert reported_exponent("BGN") == 2  # not payable: only shown on the quarantined event


# --- Stripe's minor units ---------------------------------------------------------------------------------


def test_stripe_special_cases_are_iso_currencies() -> None:
    special = STRIPE_ZERO_DECIMAL | STRIPE_THREE_DECIMAL | STRIPE_TWO_DECIMAL_WHOLE_UNITS
    assert special <= set(ISO_4217)


@settings(max_examples=300, deadline=None)
@given(code=st.sampled_from(sorted(ISO_4217)), units=st.integers(min_value=0, max_value=10**24))
def test_whole_units_round_trip_through_stripe_in_every_currency(code: str, units: int) -> None:
    exponent = ISO_4217[code].exponent
    iso_minor = units * 10**exponent
    stripe_amount = iso_minor_to_stripe(iso_minor, code.lower(), exponent)
    assert stripe_amount % stripe_charge_step(code) == 0
    assert stripe_to_iso_minor(stripe_amount, code.lower(), exponent) == iso_minor


@settings(max_examples=300, deadline=None)
@given(code=st.sampled_from(sorted(ISO_4217)), stripe_amount=st.integers(min_value=0, max_value=10**24))
def test_reading_a_stripe_amount_is_exact_or_refused(code: str, stripe_amount: int) -> None:
    exponent = ISO_4217[code].exponent
    try:
        iso_minor = stripe_to_iso_minor(stripe_amount, code, exponent)
    except ValueError:
        return  # a fraction of our minor unit (ISK 10050): never rounded
    stripe_digits = 0 if code in STRIPE_ZERO_DECIMAL else 3 if code in STRIPE_THREE_DECIMAL else 2
    # Same value: iso_minor / 10**exponent == stripe_amount / 10**stripe_digits, in integers.
    assert iso_minor * 10**stripe_digits == stripe_amount * 10**exponent


# --- assets -----------------------------------------------------------------------------------------------


def test_eth_is_the_native_coin_with_18_decimals() -> None:
    assert (NATIVE_COIN, NATIVE_DECIMALS, MAX_DECIMALS) == ("ETH", 18, 18)


@pytest.mark.parametrize("decimals", [0, 6, 8, 18])
def test_token_decimals_come_from_configuration(decimals: int) -> None:
    assert validate_token_definitions({"dai": decimals}) == {"DAI": decimals}


def test_duplicate_symbols_are_refused_even_with_the_same_decimals() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_token_definitions({"usdc": 6, "USDC": 6})
    assert caught.value.code == "duplicate_token_symbol"


# --- exact amounts: parse and format are inverse ---------------------------------------------------------

WHOLE = st.integers(min_value=0, max_value=10**40).map(str)
EXPONENT = st.integers(min_value=0, max_value=MAX_DECIMALS)


@settings(max_examples=500, deadline=None)
@given(whole=WHOLE, exponent=EXPONENT, data=st.data())
def test_parse_then_format_gives_back_the_text_padded_to_the_exponent(
    whole: str, exponent: int, data: st.DataObject
) -> None:
    fraction = data.draw(st.text(alphabet="0123456789", max_size=exponent))
    text = whole if not fraction else f"{whole}.{fraction}"
    if Decimal(text) == 0:
        return
    money = parse_amount(text, "EUR", exponent, 10**60)
    padded = whole if exponent == 0 else f"{whole}.{fraction.ljust(exponent, '0')}"
    assert money.to_major_str() == padded
    assert Decimal(money.to_major_str(trim=True)) == Decimal(text)
    assert money.amount_minor == int(whole + fraction.ljust(exponent, "0"))


@settings(max_examples=500, deadline=None)
@given(minor=st.integers(min_value=-(10**40), max_value=10**40), exponent=EXPONENT)
def test_format_major_is_exact_for_any_sign(minor: int, exponent: int) -> None:
    text = format_major(minor, exponent)
    sign, unsigned = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, _, fraction = unsigned.partition(".")
    assert sign == ("-" if minor < 0 else "")
    assert len(fraction) == exponent and whole == str(int(whole))  # no leading zeros, no exponent form
    assert int(whole + fraction) == abs(minor)
    assert Decimal(format_major(minor, exponent, trim=True)) == Decimal(text)
