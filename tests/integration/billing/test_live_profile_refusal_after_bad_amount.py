"""README "Invoices and e-invoices": a live key whose live billing profile is incomplete gets 409
`billing_profile_incomplete` "only to a request without faults of its own (a `"mode": "test"` or a malformed
amount is its 400 first)".

Found on a running stack: the gateway checked only the amount's JSON type before the 409, so `"x"`, `"-1"`
or `"1.001"` EUR got the 409 (the account's state) and only after completing the profile the 400 the same
body gets from a test key. A request's own faults come first, with the codes the session service gives them.
"""

from __future__ import annotations

from typing import Any

import pytest

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from support.stack import Merchant, ServiceStack


async def _live_key_without_profile(stack: ServiceStack) -> Merchant:
    test = await stack.create_merchant("Firstshop", "firstshop", mode="test")
    reply = await stack.keys.CreateMerchantSecretKey(
        keys_pb2.CreateMerchantSecretKeyRequest(merchant_id=test.id, mode=common_pb2.MODE_LIVE), timeout=5
    )
    return Merchant(test.id, reply.secret_key, "Firstshop")


async def _create(stack: ServiceStack, key: Merchant, body: dict[str, Any]) -> tuple[int, str]:
    status, reply = await stack.request("POST", "/v1/sessions", json=body, headers=key.headers)
    return status, reply["error"]["code"] if status >= 400 else ""


@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [
        ("x", "EUR", "invalid_amount"),
        ("-1", "EUR", "amount_not_positive"),
        ("0", "EUR", "amount_not_positive"),
        ("1.001", "EUR", "amount_too_precise"),
        ("1.5", "JPY", "amount_too_precise"),
    ],
)
async def test_a_malformed_amount_is_its_400_before_the_profile_409(
    stack: ServiceStack, amount: str, currency: str, code: str
) -> None:
    live = await _live_key_without_profile(stack)
    body = {"amount": amount, "currency": currency, "provider": "stripe"}
    assert await _create(stack, live, body) == (400, code)

    # The same fault with a key of a complete profile: the same answer, so the 400 above is the real one.
    complete = await stack.create_merchant("Readyshop", "readyshop", mode="live")
    assert await _create(stack, complete, body) == (400, code)


async def test_a_sound_amount_still_gets_the_409(stack: ServiceStack) -> None:
    live = await _live_key_without_profile(stack)
    for amount, currency in (("10.00", "EUR"), ("10", "JPY"), ("10.00", None)):
        body: dict[str, Any] = {"amount": amount, "provider": "stripe"}
        if currency:
            body["currency"] = currency
        assert await _create(stack, live, body) == (409, "billing_profile_incomplete"), body
