"""The published OpenAPI amount schema says exactly which strings `parse_amount` reads.

A client that validates its request against `GET /openapi.json` must never send an amount string the parser
then calls `invalid_amount`, and a string the schema refuses must never be accepted. The value rules (more
decimals than the currency has, zero or negative, too large) are separate codes that the schema cannot say
per currency, so the property is: conforms to the published string schema <=> not `invalid_amount` (nor
`missing_amount`, the empty string). JSON numbers in any exact notation (`1e3`, `2.50E-1`) are the number
branch of the same schema; they are never `invalid_amount` either.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paygate_runtime.errors import InvalidArgument
from paygate_runtime.money import format_major, parse_amount
from paygate_runtime.money.amounts import MAX_AMOUNT_MINOR, plain_decimal_text
from webhook_gateway.entrypoints.openapi_document import build_document

FAST = settings(max_examples=600, deadline=None)
EXPONENTS = (0, 2, 3, 18)
SHAPE_CODES = ("invalid_amount", "missing_amount")


def _amount_branches(schema_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    amount = build_document()["components"]["schemas"][schema_name]["properties"]["amount"]
    [text] = [s for s in amount["oneOf"] if s.get("type") == "string"]
    [number] = [s for s in amount["oneOf"] if s.get("type") == "number"]
    return text, number


TEXT_SCHEMA, NUMBER_SCHEMA = _amount_branches("CreateSession")
# An ECMA-262 style validator, as a client would use: `$` is the end of the text, never before a last "\n".
TEXT_VALIDATOR = jsonschema_rs.validator_for(TEXT_SCHEMA)


def _outcome(raw: object, exponent: int) -> str:
    try:
        parse_amount(raw, "XTS", exponent, MAX_AMOUNT_MINOR)
    except InvalidArgument as error:
        return error.code
    return "ok"


_DIGITS = st.text("0123456789", min_size=1, max_size=6)
AMOUNT_STRINGS = st.one_of(
    # The shapes the old published pattern allowed, leading zeros included ("00001.00", "-007").
    st.from_regex(r"-?[0-9]{1,6}(\.[0-9]{1,20})?", fullmatch=True),
    # The published pattern itself.
    st.from_regex(TEXT_SCHEMA["pattern"]),
    # Near-misses: exponents, signs, spaces, separators, bare points, a final newline, non-ASCII digits.
    st.text(alphabet="0123456789.-+eE _\n\u0660\uff11", max_size=14),
    st.builds(
        lambda a, sep, b: a + sep + b,
        _DIGITS,
        st.sampled_from(["e", "E", "e-", "_", " ", ".", ".."]),
        _DIGITS,
    ),
    # Around the length limit.
    st.builds(
        lambda n, fraction: "1" * n + fraction,
        st.integers(90, 110),
        st.sampled_from(["", ".5", ".00", ".000000000000000001"]),
    ),
    st.text(max_size=20),
)


@FAST
@given(raw=AMOUNT_STRINGS, exponent=st.sampled_from(EXPONENTS))
def test_a_string_conforms_to_the_published_schema_iff_the_parser_reads_its_shape(
    raw: str, exponent: int
) -> None:
    code = _outcome(raw, exponent)
    if TEXT_VALIDATOR.is_valid(raw):
        # Only the value rules may refuse it, each with its own code.
        assert code in ("ok", "amount_too_precise", "amount_not_positive", "amount_too_large"), (raw, code)
    else:
        assert code in SHAPE_CODES, (raw, code)


@pytest.mark.parametrize(
    ("raw", "conforms"),
    [
        ("99.99", True),
        ("0.5", True),
        ("0", True),  # not_positive, a value rule
        ("-5", True),  # not_positive, a value rule
        ("00001.00", False),
        ("007", False),
        ("-007", False),
        ("1e3", False),
        ("1.", False),
        (".5", False),
        (" 1", False),
        ("1\n", False),
        ("1" * 100, True),  # too_large, a value rule
        ("1" * 101, False),
    ],
)
def test_published_amount_string_examples(raw: str, conforms: bool) -> None:
    assert TEXT_VALIDATOR.is_valid(raw) is conforms
    assert (_outcome(raw, 2) not in SHAPE_CODES) is conforms


@FAST
@given(
    value=st.decimals(allow_nan=False, allow_infinity=False, places=None)
    | st.integers(-(10**80), 10**80).map(Decimal)
    | st.builds(Decimal, st.from_regex(r"-?[0-9]{1,4}(\.[0-9]{1,4})?[eE][+-]?[0-9]{1,3}", fullmatch=True)),
    exponent=st.sampled_from(EXPONENTS),
)
def test_exact_json_numbers_in_any_notation_are_never_a_shape_error(value: Decimal, exponent: int) -> None:
    """JSON allows `1e3`; parsed with parse_float=Decimal it is exact, so it is read as the number it is (the
    gateway forwards it as plain text, which reads the same)."""
    direct = _outcome(value, exponent)
    assert direct not in SHAPE_CODES, (value, direct)
    forwarded = plain_decimal_text(value)
    assert TEXT_VALIDATOR.is_valid(forwarded), forwarded
    assert _outcome(forwarded, exponent) == direct


def test_json_number_in_exponent_notation_is_accepted_and_the_string_is_not() -> None:
    assert parse_amount(Decimal("1e3"), "EUR", 2, MAX_AMOUNT_MINOR).amount_minor == 100_000
    assert _outcome("1e3", 2) == "invalid_amount"
    assert not TEXT_VALIDATOR.is_valid("1e3")
    assert "exponent" in NUMBER_SCHEMA.get("description", "").lower()


@FAST
@given(
    minor=st.integers(-MAX_AMOUNT_MINOR, MAX_AMOUNT_MINOR), exponent=st.integers(0, 18), trim=st.booleans()
)
def test_every_amount_paygate_shows_conforms_to_the_published_pattern(
    minor: int, exponent: int, trim: bool
) -> None:
    """Replies use the same DECIMAL schema (refund totals may be negative), so what format_major writes
    must conform too."""
    shown = format_major(minor, exponent, trim=trim)
    assert TEXT_VALIDATOR.is_valid(shown), shown


def test_refund_amounts_publish_the_same_string_schema() -> None:
    text, number = _amount_branches("RefundRequest")
    assert text == TEXT_SCHEMA and number == NUMBER_SCHEMA
