"""A Stripe session is priced only in an amount Stripe can charge. Stripe's payment partners take three-decimal
currencies (BHD, JOD, KWD, OMR, TND) only in multiples of 10 of their minor unit, and ISK and UGX only in whole
units: `{"amount": "1.234", "currency": "KWD", "provider": "stripe"}` was accepted, and its Checkout Session could
never be created. Such an amount is refused at creation with `amount_not_chargeable`; other rails keep it, and a
card session (either rail) simply offers no Stripe button for it."""

from __future__ import annotations

import pytest

from support.stack import ServiceStack


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("1.234", "KWD"), ("0.005", "BHD"), ("12.001", "TND")],
)
async def test_an_amount_stripe_cannot_charge_is_refused_for_a_stripe_session(
    stack: ServiceStack, amount: str, currency: str
) -> None:
    merchant = await stack.create_merchant()
    body = {"amount": amount, "currency": currency, "provider": "stripe"}
    status, reply = await stack.request("POST", "/v1/sessions", json=body, headers=merchant.headers)
    assert (status, reply["error"]["code"]) == (400, "amount_not_chargeable"), reply
    assert currency in reply["error"]["message"]


async def test_amounts_stripe_can_charge_and_other_rails_are_accepted(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    for body in (
        {"amount": "1.230", "currency": "KWD", "provider": "stripe"},
        {"amount": "5", "currency": "ISK", "provider": "stripe"},
        {"amount": "1234", "currency": "JPY", "provider": "stripe"},
        {"amount": "1.234", "currency": "KWD", "provider": "onecom"},
        {"amount": "1.234", "currency": "KWD"},
    ):
        status, reply = await stack.request("POST", "/v1/sessions", json=body, headers=merchant.headers)
        assert status == 201, (body, reply)


@pytest.mark.parametrize(
    ("amount", "currency", "minimum"),
    [
        ("0.49", "USD", "0.50 USD"),
        ("0.01", "EUR", "0.50 EUR"),
        ("0.29", "GBP", "0.30 GBP"),
        ("49", "JPY", "50 JPY"),
    ],
)
async def test_an_amount_below_stripes_minimum_charge_is_refused_for_a_stripe_session(
    stack: ServiceStack, amount: str, currency: str, minimum: str
) -> None:
    """Stripe refuses a Checkout Session below its minimum charge (0.50 USD, 0.30 GBP, 50 JPY, ...): such a
    session could only ever fail at its checkout page, so it is refused when it is created."""
    merchant = await stack.create_merchant()
    body = {"amount": amount, "currency": currency, "provider": "stripe"}
    status, reply = await stack.request("POST", "/v1/sessions", json=body, headers=merchant.headers)
    assert (status, reply["error"]["code"]) == (400, "amount_not_chargeable"), reply
    assert minimum in reply["error"]["message"]
    # The refusal made nothing.
    status, listed = await stack.request("GET", "/v1/sessions", headers=merchant.headers)
    assert (status, listed["data"]) == (200, []), listed
    # At the minimum it is taken, and One.com keeps the smaller amount.
    minimum_amount = minimum.split()[0]
    for ok in ({**body, "amount": minimum_amount}, {**body, "provider": "onecom"}):
        status, reply = await stack.request("POST", "/v1/sessions", json=ok, headers=merchant.headers)
        assert status == 201, (ok, reply)
