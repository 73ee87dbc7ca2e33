"""Two faults a developer's first integration met in `POST /v1/sessions`.

1. Order of refusals. What is wrong with the request itself (400: `mode_mismatch`, a malformed amount or
   currency, bad JSON) is said before the merchant's account state (409 `billing_profile_incomplete` for a
   live key whose live billing profile is incomplete), and neither refusal is stored under the
   Idempotency-Key: the same key works once the request and the profile are right.
2. Card sessions (no `provider`, contract §6a) must be payable by at least one card rail this gateway has
   for the session's mode. With Stripe as the only one, an amount Stripe cannot charge (KWD 1.234: three
   decimals only in steps of 10; MGA 5.50: Stripe charges MGA in whole units) is refused at create exactly as
   a `provider: "stripe"` session is (400 `amount_not_chargeable`, same message). With One.com beside it the
   session is accepted and its checkout page offers One.com only. With no card rail of the mode nothing
   changes (the page says the seller has not set up card payments).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate.session.v1 import session_pb2
from support.database import TestDatabase
from support.onecom import new_onecom_key, running_onecom_double
from support.stack import Merchant, ServiceStack, running_stack
from support.stripe_fake import FakeStripe

HTML = {"Accept": "text/html"}


async def _post(
    stack: ServiceStack, key: Merchant, body: Any, idempotency_key: str | None = None, **kwargs: Any
) -> tuple[int, Any]:
    headers = dict(key.headers)
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    if isinstance(body, str):
        headers["Content-Type"] = "application/json"
        return await stack.request("POST", "/v1/sessions", data=body, headers=headers, **kwargs)
    return await stack.request("POST", "/v1/sessions", json=body, headers=headers, **kwargs)


async def _live_key_without_profile(stack: ServiceStack) -> Merchant:
    """A merchant's live key; the merchant has no live billing profile yet."""
    test = await stack.create_merchant("Firstrun", "firstrun", mode="test")
    reply = await stack.keys.CreateMerchantSecretKey(
        keys_pb2.CreateMerchantSecretKeyRequest(merchant_id=test.id, mode=common_pb2.MODE_LIVE), timeout=5
    )
    return Merchant(test.id, reply.secret_key, "Firstrun")


def _code(status: int, body: Any) -> tuple[int, str]:
    return status, body["error"]["code"]


# ---- 1. the request's own faults come before the account's state ---------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"amount": "10.00", "mode": "test"}, "mode_mismatch"),
        ({"amount": "10.00", "mode": "sandbox"}, "invalid_mode"),
        ({"amount": True}, "invalid_amount"),
        ({"currency": "EUR"}, "missing_amount"),
        ({"amount": "10.00", "currency": ""}, "invalid_currency"),
        ({"amount": "10.00", "currency": "US D"}, "invalid_currency"),
        # ISO codes no merchant can price in (withdrawn, fund, metal): wrong whatever the account's state.
        ({"amount": "10.00", "currency": "BGN"}, "unknown_currency"),
        ({"amount": "10.00", "currency": "xau", "provider": "web3"}, "unknown_currency"),
        ({"amount": "10.00", "provider": "paypal"}, "invalid_provider"),
        ({"amount": "10.00", "scopes": []}, "invalid_scopes"),
        ('{"amount": "10.00",', "invalid_json"),
    ],
)
async def test_a_live_key_learns_what_is_wrong_with_its_request_before_the_profile(
    stack: ServiceStack, body: Any, code: str
) -> None:
    live = await _live_key_without_profile(stack)
    status, reply = await _post(stack, live, body)
    assert _code(status, reply) == (400, code), reply


async def test_a_sound_live_request_gets_the_409_and_no_refusal_is_stored(stack: ServiceStack) -> None:
    live = await _live_key_without_profile(stack)
    status, reply = await _post(stack, live, {"amount": "10.00"})
    assert _code(status, reply) == (409, "billing_profile_incomplete"), reply

    # Neither refusal is kept under the Idempotency-Key: once the profile is complete, the same key creates
    # the session (a stored 400 would answer idempotency_conflict for the corrected body).
    status, reply = await _post(stack, live, {"amount": "10.00", "mode": "test"}, "first-run-1")
    assert _code(status, reply) == (400, "mode_mismatch"), reply
    status, reply = await _post(stack, live, {"amount": "10.00", "mode": "live"}, "first-run-1")
    assert _code(status, reply) == (409, "billing_profile_incomplete"), reply
    await stack.complete_billing_profile(live.id, "Firstrun")
    status, created = await _post(stack, live, {"amount": "10.00", "mode": "live"}, "first-run-1")
    assert status == 201, created
    assert created["mode"] == "live"


# ---- 2. a card session must be chargeable by a card rail of its mode -------------------------------------


@pytest.fixture
async def fake_stripe() -> AsyncIterator[FakeStripe]:
    async with FakeStripe() as fake:
        yield fake


@pytest.fixture
async def stripe_only(
    clean_db: TestDatabase, stack_env: dict[str, str], fake_stripe: FakeStripe
) -> AsyncIterator[ServiceStack]:
    """Stripe (a test key) is this gateway's only card rail."""
    async with running_stack(clean_db, {**stack_env, **fake_stripe.env()}) as services:
        yield services


@pytest.fixture
async def both_rails(
    clean_db: TestDatabase, stack_env: dict[str, str], fake_stripe: FakeStripe
) -> AsyncIterator[ServiceStack]:
    """Stripe and One.com, each with a test key."""
    onecom_key = new_onecom_key()
    async with running_onecom_double(onecom_key, stack_env["PAYGATE_ONECOM_WEBHOOK_SECRETS"]) as double:
        env = {
            **stack_env,
            **fake_stripe.env(),
            "PAYGATE_ONECOM_API_BASE": double.base_url,
            "PAYGATE_ONECOM_API_KEY_TEST": onecom_key,
        }
        async with running_stack(clean_db, env) as services:
            yield services


async def _checkout_rails(stack: ServiceStack, session_id: str) -> list[str]:
    """The card rails the session's checkout page offers, in page order."""
    status, html = await stack.request("GET", f"/checkout?session={session_id}", headers=HTML)
    assert status == 200, html
    return re.findall(r'<button[^>]*name="provider" value="([a-z]+)"', html)


@pytest.mark.parametrize(("amount", "currency"), [("1.234", "KWD"), ("5.50", "MGA")])
async def test_with_stripe_alone_a_card_session_stripe_cannot_charge_is_refused_as_a_stripe_one(
    stripe_only: ServiceStack, fake_stripe: FakeStripe, amount: str, currency: str
) -> None:
    merchant = await stripe_only.create_merchant()
    status, stripe_refusal = await _post(
        stripe_only, merchant, {"amount": amount, "currency": currency, "provider": "stripe"}
    )
    assert _code(status, stripe_refusal) == (400, "amount_not_chargeable"), stripe_refusal
    status, card_refusal = await _post(stripe_only, merchant, {"amount": amount, "currency": currency})
    assert (status, card_refusal) == (400, stripe_refusal)
    status, listed = await stripe_only.request("GET", "/v1/sessions", headers=merchant.headers)
    assert (status, listed["data"]) == (200, []), listed
    assert not fake_stripe.creates()


async def test_with_stripe_alone_the_default_currency_is_checked_too(stripe_only: ServiceStack) -> None:
    merchant = await stripe_only.create_merchant()
    await stripe_only.session.UpdatePaymentSettings(
        session_pb2.UpdatePaymentSettingsRequest(
            settings=session_pb2.PaymentSettings(merchant_id=merchant.id, default_currency="KWD")
        ),
        timeout=5,
    )
    status, reply = await _post(stripe_only, merchant, {"amount": "1.234"})
    assert _code(status, reply) == (400, "amount_not_chargeable"), reply
    status, created = await _post(stripe_only, merchant, {"amount": "1.230"})
    assert status == 201, created
    assert (created["currency"], created["provider"]) == ("KWD", "card")


async def test_with_stripe_alone_a_chargeable_card_session_is_created_and_offers_stripe(
    stripe_only: ServiceStack, fake_stripe: FakeStripe
) -> None:
    merchant = await stripe_only.create_merchant()
    status, created = await _post(stripe_only, merchant, {"amount": "1.230", "currency": "KWD"})
    assert status == 201, created
    assert await _checkout_rails(stripe_only, created["id"]) == ["stripe"]
    # The value checks of the session service keep their own codes (it decides the amount's precision).
    status, reply = await _post(stripe_only, merchant, {"amount": "1.2345", "currency": "KWD"})
    assert _code(status, reply) == (400, "amount_too_precise"), reply
    # A live card session: this gateway has no live card rail, so there is nothing to check it against (its
    # page says the seller has not set up card payments, as before).
    live = await stripe_only.create_merchant("Live Shop", "live", mode="live")
    status, created = await _post(stripe_only, live, {"amount": "1.234", "currency": "KWD"})
    assert status == 201, created
    assert not fake_stripe.creates()


async def test_with_onecom_beside_stripe_the_card_session_is_created_and_offers_onecom_only(
    both_rails: ServiceStack, fake_stripe: FakeStripe
) -> None:
    merchant = await both_rails.create_merchant()
    status, created = await _post(both_rails, merchant, {"amount": "1.234", "currency": "KWD"})
    assert status == 201, created
    assert created["provider"] == "card"
    assert await _checkout_rails(both_rails, created["id"]) == ["onecom"]
    status, created = await _post(both_rails, merchant, {"amount": "1.230", "currency": "KWD"})
    assert status == 201, created
    assert sorted(await _checkout_rails(both_rails, created["id"])) == ["onecom", "stripe"]
    assert not fake_stripe.creates()
