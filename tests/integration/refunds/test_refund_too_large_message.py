"""A merchant's walk over the HTTP API: a 9.99 EUR session, 7.39 refunded outside paygate, then a refund of
2.61 is refused with 400 `amount_too_large`, and the message names what is left in major units and the
currency, as the merchant writes amounts ("2.60 EUR"), not a count of minor units."""

from __future__ import annotations

from support.refund_flows import paid_session, refund
from support.stack import ServiceStack


async def test_amount_too_large_says_what_is_left_in_major_units(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, "9.99")
    status, first = await refund(stack, merchant, paid.id, {"amount": "7.39"}, key="walk-1")
    assert status == 202 and first["status"] == "succeeded", first
    status, body = await refund(stack, merchant, paid.id, {"amount": "2.61"})
    assert status == 400, body
    assert body["error"] == {
        "code": "amount_too_large",
        "message": "at most 2.60 EUR can still be refunded",
    }
    # What is left can still be refunded, to the cent.
    status, last = await refund(stack, merchant, paid.id, {"amount": "2.60"})
    assert status == 202 and last["session"]["status"] == "refunded", last
