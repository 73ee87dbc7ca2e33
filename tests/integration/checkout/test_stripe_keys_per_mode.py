"""One Stripe API key per mode: a test session's Checkout Session, refund and charge lookup go to Stripe with the
test key, a live session's with the live key (Stripe's API faked by a local HTTP server that records the key of
every request and, like Stripe, knows a charge only under the key of its own mode)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate_dev.devtools.stripe_fixtures import build_stripe_event, stripe_id
from support import polling
from support.refund_flows import (
    FakeStripeRefunds,
    applied,
    refund,
    refund_object,
    send_stripe,
    shape,
    stripe_envelope,
)
from support.stack import Merchant, ServiceStack
from support.stripe_fake import Recorded

LIVE_KEY = "rk_live_fake_0123456789abcdef"


@dataclass
class TwoModeStripe(FakeStripeRefunds):
    """Stripe's API for an account with a test key (`api_key`) and a live key (`live_key`)."""

    live_key: str = LIVE_KEY
    # charge id -> the mode it was made in: a key of the other mode gets Stripe's 404, as at Stripe.
    charge_modes: dict[str, str] = field(default_factory=dict)
    # Which variables carry the keys: the suffixed pair, or the live key unsuffixed beside _TEST.
    layout: str = "suffixed"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in super().env().items() if k != "PAYGATE_STRIPE_API_KEY"}
        if self.layout == "suffixed":
            return {
                **env,
                "PAYGATE_STRIPE_API_KEY_TEST": self.api_key,
                "PAYGATE_STRIPE_API_KEY_LIVE": self.live_key,
            }
        return {**env, "PAYGATE_STRIPE_API_KEY_TEST": self.api_key, "PAYGATE_STRIPE_API_KEY": self.live_key}

    def mode_of(self, call: Recorded) -> str | None:
        """The mode of the key a request was made with."""
        return {f"Bearer {self.api_key}": "test", f"Bearer {self.live_key}": "live"}.get(
            call.headers.get("Authorization", "")
        )

    async def _record(self, request: web.Request) -> Recorded | web.Response:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        recorded = Recorded(request.method, request.path, dict(request.headers), form)
        self.requests.append(recorded)
        if self.mode_of(recorded) is None:
            return self._error(401, "invalid_request_error", "Invalid API Key provided")
        if self.down:
            return self._error(500, "api_error", "Stripe is having a bad day")
        return recorded

    async def _charge(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        if isinstance(recorded, web.Response):
            return recorded
        charge_id = request.match_info["id"]
        intent = self.charges.get(charge_id)
        if intent is None or self.charge_modes.get(charge_id) != self.mode_of(recorded):
            return self._error(
                404, "invalid_request_error", f"No such charge: '{charge_id}'", "resource_missing"
            )
        obj = shape("charge")
        obj.update(id=charge_id, amount=self.payments.get(intent, 0), currency="eur", payment_intent=intent)
        obj["livemode"] = self.charge_modes[charge_id] == "live"
        return web.json_response(obj)


@pytest.fixture(params=["suffixed", "unsuffixed-live"])
async def fake_stripe(request: pytest.FixtureRequest) -> AsyncIterator[TwoModeStripe]:
    async with TwoModeStripe(layout=request.param) as fake:
        yield fake


@pytest.fixture
def stack_env(stack_env: dict[str, str], fake_stripe: TwoModeStripe) -> dict[str, str]:
    return {
        **stack_env,
        **fake_stripe.env(),
        "PAYGATE_WEBHOOK_RETRY_BASE_MS": "50",
        "PAYGATE_WEBHOOK_RETRY_MAX_MS": "300",
    }


async def two_mode_merchant(stack: ServiceStack) -> dict[str, Merchant]:
    test = await stack.create_merchant("Acme", "acme", mode="test")
    reply = await stack.keys.CreateMerchantSecretKey(
        keys_pb2.CreateMerchantSecretKeyRequest(merchant_id=test.id, mode=common_pb2.MODE_LIVE), timeout=5
    )
    await stack.complete_billing_profile(test.id, "Acme")  # live sessions need it (contract §9)
    return {"test": test, "live": Merchant(test.id, reply.secret_key, "Acme")}


async def stripe_session(stack: ServiceStack, merchant: Merchant, amount: str = "25.00") -> dict[str, Any]:
    status, body = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": amount, "currency": "EUR", "provider": "stripe", "expires_in": 3600},
        headers=merchant.headers,
    )
    assert status == 201, body
    return body


async def test_each_mode_creates_its_checkout_session_with_its_own_key(
    stack: ServiceStack, fake_stripe: TwoModeStripe
) -> None:
    merchant = await two_mode_merchant(stack)
    for mode in ("test", "live"):
        body = await stripe_session(stack, merchant[mode])
        assert body["mode"] == mode
        assert "provider_checkout_error" not in body, body
        assert body["provider_checkout_url"].startswith("https://checkout.stripe.com/c/pay/cs_")
        [call] = [c for c in fake_stripe.creates() if c.form["client_reference_id"] == body["id"]]
        assert fake_stripe.mode_of(call) == mode
    assert len(fake_stripe.creates()) == 2


async def paid(stack: ServiceStack, merchant: Merchant, mode: str, amount: str) -> tuple[str, str]:
    """A `stripe` session of `mode`, paid by Stripe's webhook of that mode and fulfilled; (id, PaymentIntent)."""
    session = await stripe_session(stack, merchant, amount)
    payment_intent = stripe_id("pi")
    event = build_stripe_event(
        "checkout.session.completed",
        session["id"],
        session["amount_minor"],
        "EUR",
        payment_intent,
        livemode=mode == "live",
    )
    assert await applied(stack, "stripe", (await send_stripe(stack, event))["event_id"]) == "applied"

    async def fulfilled() -> bool:
        status, body = await stack.request("GET", f"/v1/sessions/{session['id']}", headers=merchant.headers)
        assert status == 200, body
        return body["status"] == "paid" and body["fulfilment_status"] == "done"

    await polling.eventually(fulfilled, timeout=30, interval=0.1, what=f"{mode} session fulfilled")
    return session["id"], payment_intent


@pytest.mark.parametrize("fake_stripe", ["suffixed"], indirect=True)
async def test_refunds_and_charge_lookups_use_the_key_of_the_mode(
    stack: ServiceStack, fake_stripe: TwoModeStripe
) -> None:
    merchant = await two_mode_merchant(stack)
    sessions = {mode: await paid(stack, merchant[mode], mode, "30.00") for mode in ("live", "test")}
    for mode, (_, payment_intent) in sessions.items():
        fake_stripe.payments[payment_intent] = 3000

    # The merchant refunds the live session: Stripe's refund is asked for with the live key, and the test
    # session's with the test key.
    for mode in ("live", "test"):
        sid, payment_intent = sessions[mode]
        status, body = await refund(stack, merchant[mode], sid, {"amount": "10.00"}, key=f"refund-{mode}")
        assert status == 202, body
        [call] = [c for c in fake_stripe.refund_calls() if c.form["payment_intent"] == payment_intent]
        assert fake_stripe.mode_of(call) == mode

    # A test refund event naming only a charge: the charge is looked up with the test key and matched.
    _, test_intent = sessions["test"]
    fake_stripe.charges["ch_test_only"] = test_intent
    fake_stripe.charge_modes["ch_test_only"] = "test"
    made = stripe_envelope("refund.created", refund_object("re_test_charge_only", 500, None, "ch_test_only"))
    assert await applied(stack, "stripe", (await send_stripe(stack, made))["event_id"]) == "applied"
    [lookup] = fake_stripe.charge_calls()
    assert (lookup.path, fake_stripe.mode_of(lookup)) == ("/v1/charges/ch_test_only", "test")

    # A live event naming the same charge is not answered from what the test key was told: it asks Stripe
    # with the live key (which does not know a test charge).
    live = stripe_envelope("refund.created", refund_object("re_live_charge_only", 500, None, "ch_test_only"))
    live["livemode"] = True
    await send_stripe(stack, live)

    async def asked_live() -> bool:
        return any(fake_stripe.mode_of(c) == "live" for c in fake_stripe.charge_calls())

    await polling.eventually(asked_live, timeout=10, interval=0.05, what="a charge lookup with the live key")
    assert [fake_stripe.mode_of(c) for c in fake_stripe.charge_calls()][:2] == ["test", "live"]
