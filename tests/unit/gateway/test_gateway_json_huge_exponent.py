"""A JSON number whose exponent is beyond what Decimal can hold (`1e99999999999999999999`) is invalid JSON, never
a 500. json and msgspec hand the number's text to Decimal (parse_float / float_hook), which raises
decimal.InvalidOperation, an ArithmeticError rather than the ValueError a malformed body raises. Found walking
README "Currencies and tokens": `POST /v1/sessions` with such an `amount`, and a signed Stripe event with such an
`amount_total`, were both answered 500 internal_error."""

from __future__ import annotations

import pytest

from webhook_gateway.entrypoints.http_errors import ApiError
from webhook_gateway.entrypoints.request_body import parse_json_object as parse_request_body
from webhook_gateway.providers.errors import WebhookRejected
from webhook_gateway.providers.payload import parse_json_object as parse_webhook_body

# Decimal's exponent limit is about 10**18; each of these goes past it (positive, negative, with a fraction).
HUGE_EXPONENTS = (
    "1e99999999999999999999",
    "1E-99999999999999999999",
    "1.5e1000000000000000000",
    "-2e+" + "9" * 5000,
)


@pytest.mark.parametrize("number", HUGE_EXPONENTS)
def test_a_request_body_number_past_decimals_exponent_limit_is_invalid_json(number: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_request_body(f'{{"amount": {number}, "currency": "EUR"}}'.encode())
    assert (caught.value.status_code, caught.value.code) == (400, "invalid_json")


@pytest.mark.parametrize("number", HUGE_EXPONENTS)
def test_a_webhook_body_number_past_decimals_exponent_limit_is_invalid_json(number: str) -> None:
    with pytest.raises(WebhookRejected) as caught:
        parse_webhook_body(f'{{"data": {{"object": {{"amount_total": {number}}}}}}}')
    assert caught.value.code == "invalid_json"


def test_a_large_exponent_decimal_can_hold_still_parses() -> None:
    # 1e999999999999999999 is within Decimal's limits: a number, refused later by the amount rules, not here.
    assert parse_request_body(b'{"amount": 1e999999999999999999}')["amount"].adjusted() == 999999999999999999
    assert parse_webhook_body('{"a": 1e999999999999999999}')["a"].adjusted() == 999999999999999999
