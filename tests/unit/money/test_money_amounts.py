"""Exact amounts and currency resolution (paygate_runtime.money); moved from the session service."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paygate_runtime.errors import InvalidArgument
from paygate_runtime.money import (
    BUILTIN_CURRENCIES,
    MAX_AMOUNT_MINOR,
    Money,
    format_major,
    max_minor_from_major,
    parse_amount,
    parse_minor,
    parse_money,
    resolve_currency,
    validate_token_definitions,
)
from paygate_runtime.money.stripe_minor_units import stripe_exponent

BIG = 10**30


def code_of(raw: object, exponent: int = 2, max_minor: int = BIG) -> str:
    with pytest.raises(InvalidArgument) as caught:
        parse_amount(raw, "EUR", exponent, max_minor)
    assert caught.value.field == "amount"
    return caught.value.code


# --- currency table ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "exponent"),
    [
        ("EUR", 2),
        ("USD", 2),
        ("GBP", 2),
        ("CHF", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("ISK", 0),
        ("CLP", 0),
        ("VND", 0),
        ("XOF", 0),
        ("BHD", 3),
        ("KWD", 3),
        ("JOD", 3),
        ("OMR", 3),
        ("TND", 3),
        ("IQD", 3),
        ("LYD", 3),
        ("MGA", 2),
        ("HUF", 2),
        ("ETH", 18),
    ],
)
def test_builtin_exponents_follow_iso_4217(code: str, exponent: int) -> None:
    assert resolve_currency(code).exponent == exponent


def test_table_is_broad_and_leaves_out_funds_and_withdrawn_codes() -> None:
    assert len(BUILTIN_CURRENCIES) > 150
    for code in ("CLF", "UYW", "XAU", "XTS", "HRK", "ZWL", "USN", "BGN", "ANG"):
        with pytest.raises(InvalidArgument) as caught:
            resolve_currency(code)
        assert caught.value.code == "unknown_currency"


def test_currency_code_is_case_insensitive_because_stripe_sends_lower_case() -> None:
    assert resolve_currency("eur").code == "EUR"


@pytest.mark.parametrize(
    "raw", ["", " EUR", "EUR ", "EUR\n", "E-UR", "ＥＵＲ", "EURO_X", None, 978, "A" * 12]
)
def test_malformed_currency_codes_are_invalid(raw: object) -> None:
    with pytest.raises(InvalidArgument) as caught:
        resolve_currency(raw)
    assert caught.value.code == "invalid_currency"
    assert caught.value.field == "currency"


def test_unknown_currency_names_the_field() -> None:
    with pytest.raises(InvalidArgument) as caught:
        resolve_currency("XYZ")
    assert (caught.value.code, caught.value.field) == ("unknown_currency", "currency")


def test_tokens_come_from_merchant_settings_with_their_decimals() -> None:
    tokens = {"USDC": 6, "wbtc": 8}
    assert resolve_currency("usdc", tokens).exponent == 6
    assert resolve_currency("WBTC", tokens).exponent == 8
    with pytest.raises(InvalidArgument):
        resolve_currency("USDC")  # not built in: decimals differ per chain


def test_a_token_cannot_change_a_builtin_exponent() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_token_definitions({"USD": 6})
    assert caught.value.code == "token_conflicts_with_currency"
    assert validate_token_definitions({"usdc": 6, "x": 0}) == {"USDC": 6, "X": 0}
    for reserved in ({"eth": 18}, {"EUR": 2}, {"BGN": 2}, {"XAU": 0}):
        with pytest.raises(InvalidArgument) as caught:
            validate_token_definitions(reserved)
        assert caught.value.code == "token_conflicts_with_currency"
    # Even an unvalidated list cannot shadow a built-in.
    assert resolve_currency("USD", {"USD": 6}).exponent == 2


@pytest.mark.parametrize("decimals", [-1, 19, True, "6", 6.0])
def test_token_decimals_must_be_a_small_integer(decimals: object) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_token_definitions({"USDC": decimals})  # type: ignore[dict-item]
    assert caught.value.code == "invalid_token_decimals"


def test_stripe_minor_units_differ_from_iso_for_a_few_currencies() -> None:
    assert stripe_exponent("isk") == 2  # ISO 0; Stripe kept it two-decimal
    assert stripe_exponent("MGA") == 0  # ISO 2; zero-decimal on Stripe
    assert stripe_exponent("JPY") == 0
    assert stripe_exponent("KWD") == 3
    assert stripe_exponent("EUR") == 2


# --- formatting -------------------------------------------------------------------------------------------


def test_formatting_is_exact() -> None:
    assert Money(9999, "EUR", 2).to_major_str() == "99.99"
    assert Money(100, "JPY", 0).to_major_str() == "100"
    assert Money(10000, "EUR", 2).to_major_str() == "100.00"
    assert Money(10000, "EUR", 2).to_major_str(trim=True) == "100"
    assert Money(5, "EUR", 2).to_major_str() == "0.05"
    assert Money(1, "ETH", 18).to_major_str(trim=True) == "0.000000000000000001"
    assert Money(1234500, "BHD", 3).to_major_str() == "1234.500"
    assert Money(10**25 + 1, "ETH", 18).to_major_str() == "10000000.000000000000000001"
    assert format_major(-150, 2) == "-1.50"


@pytest.mark.parametrize(
    "args",
    [
        (-1, "EUR", 2),
        (True, "EUR", 2),
        (1.0, "EUR", 2),
        (1, "eur", 2),
        (1, "EUR", 19),
        (1, "EUR", -1),
        (MAX_AMOUNT_MINOR + 1, "EUR", 2),
    ],
)
def test_money_refuses_invalid_values(args: tuple[object, str, int]) -> None:
    with pytest.raises(InvalidArgument):
        Money(*args)  # type: ignore[arg-type]


def test_rescale_compare_and_minus_are_exact() -> None:
    isk_on_stripe = Money(50000, "ISK", 2)
    assert isk_on_stripe.rescaled(0) == Money(500, "ISK", 0)
    with pytest.raises(ValueError):
        Money(50050, "ISK", 2).rescaled(0)
    assert Money(500, "ISK", 0).compare(isk_on_stripe) == 0
    assert Money(10001, "EUR", 2).minus(Money(9999, "EUR", 2)) == Money(2, "EUR", 2)
    assert Money(501, "ISK", 0).minus(isk_on_stripe) == Money(1, "ISK", 0)
    with pytest.raises(ValueError):
        Money(1, "EUR", 2).compare(Money(1, "USD", 2))
    with pytest.raises(ValueError):
        Money(1, "EUR", 2).minus(Money(2, "EUR", 2))


def test_from_wire_reads_the_proto_string() -> None:
    assert Money.from_wire("1000000000000000000", "ETH", 18) == Money(10**18, "ETH", 18)
    with pytest.raises(InvalidArgument) as caught:
        Money.from_wire("-5", "EUR", 2)
    assert caught.value.code == "invalid_amount_minor"


# --- parsing ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "exponent", "minor"),
    [
        ("99.99", 2, 9999),
        ("99.9", 2, 9990),
        ("100", 2, 10000),
        ("0.01", 2, 1),
        (100, 0, 100),
        (Decimal("99.99"), 2, 9999),
        (Decimal("1E+2"), 2, 10000),  # JSON allows exponent notation; the value is exact
        (Decimal("1.5E-1"), 2, 15),
        ("0.000000000000000001", 18, 1),
        ("123456789.123456789123456789", 18, 123456789123456789123456789),
        ("1.234", 3, 1234),
    ],
)
def test_parse_amount_is_exact(raw: object, exponent: int, minor: int) -> None:
    money = parse_amount(raw, "EUR", exponent, BIG)
    assert money == Money(minor, "EUR", exponent)


def test_json_numbers_parsed_with_decimal_never_touch_a_float() -> None:
    body = json.loads('{"amount": 0.1, "big": 123456789012345678.000000000000000001}', parse_float=Decimal)
    assert parse_amount(body["amount"], "EUR", 2, BIG).amount_minor == 10
    assert parse_amount(body["big"], "ETH", 18, 10**40).amount_minor == 123456789012345678000000000000000001


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("99.999", "amount_too_precise"),
        ("99.990", "amount_too_precise"),  # trailing zeros count: the client does not know the unit
        (Decimal("99.999"), "amount_too_precise"),
        ("0.001", "amount_too_precise"),
        ("0", "amount_not_positive"),
        ("0.00", "amount_not_positive"),
        (0, "amount_not_positive"),
        (Decimal("0"), "amount_not_positive"),
        (Decimal("-0"), "amount_not_positive"),
        (Decimal("0E+5"), "amount_not_positive"),
        ("-5", "amount_not_positive"),
        ("-0.01", "amount_not_positive"),
        (-1, "amount_not_positive"),
        (Decimal("-1.00"), "amount_not_positive"),
        ("NaN", "invalid_amount"),
        ("Infinity", "invalid_amount"),
        (Decimal("NaN"), "invalid_amount"),
        (Decimal("sNaN"), "invalid_amount"),
        (Decimal("Infinity"), "invalid_amount"),
        (Decimal("-Infinity"), "invalid_amount"),
        (float("nan"), "invalid_amount"),
        (float("inf"), "invalid_amount"),
        (99.99, "invalid_amount"),
        (True, "invalid_amount"),
        (False, "invalid_amount"),
        ("1e2", "invalid_amount"),
        ("1E2", "invalid_amount"),
        ("+5", "invalid_amount"),
        (" 5", "invalid_amount"),
        ("5 ", "invalid_amount"),
        ("5\n", "invalid_amount"),
        ("\t5", "invalid_amount"),
        ("1_000", "invalid_amount"),
        ("1,00", "invalid_amount"),
        ("007", "invalid_amount"),
        (".5", "invalid_amount"),
        ("5.", "invalid_amount"),
        ("١٢٣", "invalid_amount"),  # Arabic-Indic digits: Decimal() would take them
        ("５", "invalid_amount"),
        ("abc", "invalid_amount"),
        ("0x10", "invalid_amount"),
        ("1" * 101, "invalid_amount"),
        ("", "missing_amount"),
        (None, "missing_amount"),
        ([1], "invalid_amount"),
        ({"v": 1}, "invalid_amount"),
        (b"5", "invalid_amount"),
    ],
)
def test_parse_amount_refusals_have_stable_codes(raw: object, code: str) -> None:
    assert code_of(raw) == code


def test_json_nan_arrives_as_a_float_and_is_refused() -> None:
    body = json.loads('{"amount": NaN}', parse_float=Decimal)
    assert code_of(body["amount"]) == "invalid_amount"


def test_whole_numbers_in_zero_decimal_currencies() -> None:
    assert parse_amount("5000", "JPY", 0, BIG).amount_minor == 5000
    with pytest.raises(InvalidArgument) as caught:
        parse_amount("5000.0", "JPY", 0, BIG)
    assert caught.value.code == "amount_too_precise"


def test_maximum_is_inclusive_and_configurable() -> None:
    assert parse_amount("1000.00", "EUR", 2, 100000).amount_minor == 100000
    assert code_of("1000.01", max_minor=100000) == "amount_too_large"
    assert code_of(1001, max_minor=100000) == "amount_too_large"
    assert code_of(Decimal("1E+999999999")) == "amount_too_large"  # refused before building the integer
    assert code_of("9" * 90) == "amount_too_large"
    assert code_of(10**100) == "amount_too_large"


def test_field_name_flows_into_codes() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_amount("0", "EUR", 2, BIG, field="price")
    assert (caught.value.code, caught.value.field) == ("price_not_positive", "price")


def test_parse_money_resolves_currency_and_applies_max_in_its_units() -> None:
    assert parse_money("99.99", "eur", max_major=1000) == Money(9999, "EUR", 2)
    assert parse_money("0.5", "USDC", max_major=1000, tokens={"USDC": 6}) == Money(500000, "USDC", 6)
    with pytest.raises(InvalidArgument) as caught:
        parse_money("1001", "JPY", max_major=1000)
    assert caught.value.code == "amount_too_large"
    with pytest.raises(InvalidArgument) as caught:
        parse_money("1", "DOGE", max_major=1000)
    assert caught.value.code == "unknown_currency"
    assert max_minor_from_major(10**80, 18) == MAX_AMOUNT_MINOR


@pytest.mark.parametrize("raw", ["0", "1", "9999", "1" + "0" * 77])
def test_parse_minor_accepts_canonical_digits(raw: str) -> None:
    assert parse_minor(raw) == int(raw)


@pytest.mark.parametrize("raw", ["", "-1", "+1", " 1", "1 ", "01", "1.0", "1e3", "١", "1" * 79, 5, None])
def test_parse_minor_refuses_anything_else(raw: object) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_minor(raw)
    assert caught.value.code == "invalid_amount_minor"


def test_parse_minor_can_refuse_zero() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_minor("0", allow_zero=False)
    assert caught.value.code == "amount_minor_not_positive"


# --- properties -------------------------------------------------------------------------------------------

FAST = settings(max_examples=200, deadline=None)


@FAST
@given(minor=st.integers(min_value=1, max_value=10**40), exponent=st.integers(min_value=0, max_value=18))
def test_format_then_parse_round_trips(minor: int, exponent: int) -> None:
    money = Money(minor, "EUR", exponent)
    assert parse_amount(money.to_major_str(), "EUR", exponent, 10**45) == money
    assert parse_amount(Decimal(money.to_major_str()), "EUR", exponent, 10**45) == money
    assert parse_amount(money.to_major_str(trim=True), "EUR", exponent, 10**45) == money
    assert parse_minor(money.to_minor_str()) == minor


@FAST
@given(
    raw=st.one_of(
        st.text(max_size=30),
        st.decimals(allow_nan=True, allow_infinity=True),
        st.integers(),
        st.floats(),
        st.booleans(),
        st.none(),
    )
)
def test_parse_amount_only_ever_raises_invalid_argument(raw: object) -> None:
    try:
        money = parse_amount(raw, "EUR", 2, 10**12)
    except InvalidArgument as error:
        assert error.field == "amount"
        return
    assert 0 < money.amount_minor <= 10**12
    # What was accepted is exactly the value given.
    assert Decimal(money.to_major_str()) == Decimal(raw)
