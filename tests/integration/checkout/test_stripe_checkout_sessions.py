"""Stripe Checkout through the real `stripe` library against a local server in Stripe's API format."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from paygate.session.v1 import session_pb2
from support.stack import ServiceStack
from support.stripe_fake import FakeStripe

STATUS = {v: k.removeprefix("SESSION_STATUS_").lower() for k, v in session_pb2.SessionStatus.items()}


@pytest.fixture
async def fake_stripe() -> AsyncIterator[FakeStripe]:
    async with FakeStripe() as fake:
        yield fake


@pytest.fixture
def stack_env(stack_env: dict[str, str], fake_stripe: FakeStripe) -> dict[str, str]:
    return {**stack_env, **fake_stripe.env()}


def _epoch(iso: str) -> int:
    return int(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp())


async def _create(stack: ServiceStack, headers: dict[str, str], **body: object) -> tuple[int, dict]:
    payload = {"amount": "99.99", "currency": "EUR", "provider": "stripe", **body}
    return await stack.request("POST", "/v1/sessions", json=payload, headers=headers)


async def test_create_sends_stripe_the_session_and_returns_its_url(
    stack: ServiceStack, fake_stripe: FakeStripe
) -> None:
    merchant = await stack.create_merchant()
    status, body = await _create(
        stack, merchant.headers, customer_email="buyer@example.com", expires_in=7200, description="Pro plan"
    )
    assert status == 201, body
    sid = body["id"]
    [call] = fake_stripe.creates()
    cs_id = next(iter(fake_stripe.sessions))
    assert body["provider_checkout_url"] == f"https://checkout.stripe.com/c/pay/{cs_id}"
    assert body["url"] == f"/checkout?session={sid}"
    form = call.form
    assert form["mode"] == "payment"
    assert form["line_items[0][quantity]"] == "1"
    assert form["line_items[0][price_data][unit_amount]"] == "9999"
    assert form["line_items[0][price_data][currency]"] == "eur"
    assert form["line_items[0][price_data][product_data][name]"] == "Pro plan"
    assert form["client_reference_id"] == sid
    assert form["metadata[session_id]"] == sid
    assert form["payment_intent_data[metadata][session_id]"] == sid
    assert form["customer_email"] == "buyer@example.com"
    # Stripe's page closes when ours does (whole seconds), inside Stripe's 30 min..24 h window.
    assert int(form["expires_at"]) == _epoch(body["expires_at"])
    assert 1800 <= int(form["expires_at"]) - _epoch(body["created_at"]) <= 86400
    assert form["success_url"] == f"http://127.0.0.1:8080/checkout?session={sid}&result=success"
    assert form["cancel_url"] == f"http://127.0.0.1:8080/checkout?session={sid}&result=cancel"
    assert call.headers["Idempotency-Key"] == f"paygate-create-{sid}"
    assert call.headers["Authorization"] == f"Bearer {fake_stripe.api_key}"

    # The session service recorded it: the merchant sees it on GET too.
    status, fetched = await stack.request("GET", f"/v1/sessions/{sid}", headers=merchant.headers)
    assert status == 200 and fetched["provider_checkout_url"] == body["provider_checkout_url"]
    stored = await stack.session.GetSession(session_pb2.GetSessionRequest(session_id=sid), timeout=5)
    assert stored.provider_session_id == cs_id


async def test_zero_decimal_currency_and_24h_cap(stack: ServiceStack, fake_stripe: FakeStripe) -> None:
    merchant = await stack.create_merchant()
    status, body = await _create(stack, merchant.headers, amount="5000", currency="JPY", expires_in=86400)
    assert status == 201, body
    [call] = fake_stripe.creates()
    assert call.form["line_items[0][price_data][unit_amount]"] == "5000"
    assert call.form["line_items[0][price_data][currency]"] == "jpy"
    assert int(call.form["expires_at"]) - _epoch(body["created_at"]) <= 86400


async def test_other_providers_never_reach_stripe(stack: ServiceStack, fake_stripe: FakeStripe) -> None:
    merchant = await stack.create_merchant()
    status, body = await _create(stack, merchant.headers, provider="onecom")
    assert status == 201 and "provider_checkout_url" not in body
    assert fake_stripe.requests == []


async def test_stripe_down_keeps_the_session_and_the_retry_creates_one_page(
    stack: ServiceStack, fake_stripe: FakeStripe
) -> None:
    merchant = await stack.create_merchant()
    fake_stripe.down = True
    status, body = await _create(stack, merchant.headers, expires_in=3600)
    # The session is committed and answered 201; the missing Stripe page is said, not hidden.
    assert status == 201, body
    assert "provider_checkout_url" not in body
    assert body["provider_checkout_error"]["code"] == "provider_unavailable"
    sid = body["id"]
    status, again = await stack.request(
        "POST", f"/v1/sessions/{sid}/provider_checkout", headers=merchant.headers
    )
    assert (status, again["error"]["code"]) == (503, "provider_unavailable")

    # Stripe comes back, but its first reply is lost after it created the page (a timeout, for us).
    fake_stripe.down = False
    fake_stripe.lose_responses = 2  # the library's own retry loses its reply as well
    status, again = await stack.request(
        "POST", f"/v1/sessions/{sid}/provider_checkout", headers=merchant.headers
    )
    assert status == 503, again
    assert len(fake_stripe.sessions) == 1  # Stripe did create it

    status, again = await stack.request(
        "POST", f"/v1/sessions/{sid}/provider_checkout", headers=merchant.headers
    )
    assert status == 200, again
    [cs_id] = fake_stripe.sessions  # the retry got the same page back, not a second payable one
    assert again["provider_checkout_url"] == f"https://checkout.stripe.com/c/pay/{cs_id}"
    keys = {r.headers["Idempotency-Key"] for r in fake_stripe.creates()}
    assert keys == {f"paygate-create-{sid}"}
    forms = {tuple(sorted(r.form.items())) for r in fake_stripe.creates()}
    assert len(forms) == 1  # every retry sent the very same parameters, or Stripe would refuse the key


async def test_idempotency_key_replay_still_gets_one_stripe_page(
    stack: ServiceStack, fake_stripe: FakeStripe
) -> None:
    merchant = await stack.create_merchant()
    headers = {**merchant.headers, "Idempotency-Key": "order-77"}
    first = await _create(stack, headers)
    second = await _create(stack, headers)
    assert first[0] == second[0] == 201
    assert first[1] == second[1]
    assert len(fake_stripe.sessions) == 1 and len(fake_stripe.creates()) == 1


async def test_merchant_expire_closes_stripe_page_first(stack: ServiceStack, fake_stripe: FakeStripe) -> None:
    merchant = await stack.create_merchant()
    status, body = await _create(stack, merchant.headers)
    sid = body["id"]
    [cs_id] = fake_stripe.sessions
    seen_at_expire: list[str] = []

    async def look(_: str) -> None:
        session = await stack.session.GetSession(session_pb2.GetSessionRequest(session_id=sid), timeout=5)
        seen_at_expire.append(STATUS[session.status])

    fake_stripe.on_expire = look
    status, expired = await stack.request("POST", f"/v1/sessions/{sid}/expire", headers=merchant.headers)
    assert status == 200, expired
    assert expired["status"] == "expired"
    assert seen_at_expire == ["created"]  # Stripe's page was closed while ours was still open
    assert fake_stripe.sessions[cs_id]["status"] == "expired"
    [call] = fake_stripe.expires()
    assert call.path == f"/v1/checkout/sessions/{cs_id}/expire"
    assert call.headers["Idempotency-Key"] == f"paygate-expire-{cs_id}"

    # Expiring again is idempotent and does not bother Stripe.
    status, again = await stack.request("POST", f"/v1/sessions/{sid}/expire", headers=merchant.headers)
    assert (status, again["status"]) == (200, "expired")
    assert len(fake_stripe.expires()) == 1


async def test_expire_refused_when_customer_already_paid_on_stripe(
    stack: ServiceStack, fake_stripe: FakeStripe
) -> None:
    merchant = await stack.create_merchant()
    _, body = await _create(stack, merchant.headers)
    [cs_id] = fake_stripe.sessions
    fake_stripe.complete(cs_id)  # paid on Stripe's page; the webhook has not arrived yet
    status, refused = await stack.request(
        "POST", f"/v1/sessions/{body['id']}/expire", headers=merchant.headers
    )
    assert (status, refused["error"]["code"]) == (409, "provider_session_complete")
    session = await stack.session.GetSession(session_pb2.GetSessionRequest(session_id=body["id"]), timeout=5)
    assert STATUS[session.status] == "created"  # so the payment on its way is applied, not quarantined


async def test_expire_when_stripe_already_expired_its_page(
    stack: ServiceStack, fake_stripe: FakeStripe
) -> None:
    merchant = await stack.create_merchant()
    _, body = await _create(stack, merchant.headers)
    [cs_id] = fake_stripe.sessions
    fake_stripe.sessions[cs_id]["status"] = "expired"
    status, expired = await stack.request(
        "POST", f"/v1/sessions/{body['id']}/expire", headers=merchant.headers
    )
    assert (status, expired["status"]) == (200, "expired")
    assert len(fake_stripe.calls("GET", f"/v1/checkout/sessions/{cs_id}")) == 1


async def test_expire_with_stripe_down_leaves_both_open(stack: ServiceStack, fake_stripe: FakeStripe) -> None:
    merchant = await stack.create_merchant()
    _, body = await _create(stack, merchant.headers)
    [cs_id] = fake_stripe.sessions
    fake_stripe.down = True
    status, refused = await stack.request(
        "POST", f"/v1/sessions/{body['id']}/expire", headers=merchant.headers
    )
    assert (status, refused["error"]["code"]) == (503, "provider_unavailable")
    session = await stack.session.GetSession(session_pb2.GetSessionRequest(session_id=body["id"]), timeout=5)
    assert STATUS[session.status] == "created"
    assert fake_stripe.sessions[cs_id]["status"] == "open"


async def test_checkout_page_creates_the_missing_stripe_page(
    stack: ServiceStack, fake_stripe: FakeStripe
) -> None:
    merchant = await stack.create_merchant()
    fake_stripe.down = True
    _, body = await _create(stack, merchant.headers)
    assert "provider_checkout_url" not in body
    status, html = await stack.request("GET", body["url"])
    assert status == 200 and 'id="stripe-unavailable"' in html and 'id="stripe-link"' not in html
    fake_stripe.down = False
    # Within the retry pause the page does not call Stripe again.
    calls_before = len(fake_stripe.creates())
    status, html = await stack.request("GET", body["url"])
    assert status == 200 and len(fake_stripe.creates()) == calls_before
    # A merchant retry is not paused, and the page then links to the recorded page.
    status, _ = await stack.request(
        "POST", f"/v1/sessions/{body['id']}/provider_checkout", headers=merchant.headers
    )
    assert status == 200
    [cs_id] = fake_stripe.sessions
    status, html = await stack.request("GET", body["url"])
    assert f'href="https://checkout.stripe.com/c/pay/{cs_id}"' in html


async def test_live_stripe_key_is_never_used_for_test_sessions(
    stack_env: dict[str, str], clean_db: object, fake_stripe: FakeStripe
) -> None:
    fake_stripe.api_key = "sk_live_fake_key"
    env = {**stack_env, "PAYGATE_STRIPE_API_KEY": fake_stripe.api_key}
    live_stack = ServiceStack(clean_db, env)  # type: ignore[arg-type]
    await live_stack.start()
    try:
        merchant = await live_stack.create_merchant()
        status, body = await _create(live_stack, merchant.headers)
        assert status == 201
        assert body["provider_checkout_error"]["code"] == "provider_mode_mismatch"
        assert fake_stripe.requests == []
    finally:
        await live_stack.stop()
