"""Refunds of One.com sessions through One.com's API (contract §8, §11), against the One.com test double: the
refund is asked at `POST /v1/payments/{id}/refunds` and settled by the double's `payment.refunded` webhook."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from paygate.keys.v1 import keys_pb2
from paygate_dev.devtools.onecom_double import OneComDouble
from support import polling
from support.database import TestDatabase
from support.merchant_webhooks import FAST_ENV, Receiver, create_endpoint
from support.metrics_page import metrics_port, sample
from support.onecom import new_onecom_key, running_onecom_double
from support.refund_flows import credit_notes, fulfilled, refund, session_json, wait_credit_notes
from support.stack import ServiceStack, free_port, running_stack

WAITING = "paygate_provider_refund_asks_waiting"
OLDEST = "paygate_provider_refund_asks_oldest_age_seconds"


@pytest.fixture
def gateway_port() -> int:
    return free_port()


@pytest.fixture
def onecom_key() -> str:
    return new_onecom_key()


@pytest.fixture
async def double(stack_env: dict[str, str], onecom_key: str) -> AsyncIterator[OneComDouble]:
    async with running_onecom_double(onecom_key, stack_env["PAYGATE_ONECOM_WEBHOOK_SECRETS"]) as fake:
        yield fake


@pytest.fixture
async def stack(
    clean_db: TestDatabase,
    stack_env: dict[str, str],
    double: OneComDouble,
    onecom_key: str,
    gateway_port: int,
) -> AsyncIterator[ServiceStack]:
    env = {
        **stack_env,
        # Merchant events reach a receiver on this host at once (the refusal's refund.failed).
        **FAST_ENV,
        # The double's webhooks must reach this gateway.
        "PAYGATE_PUBLIC_URL": f"http://127.0.0.1:{gateway_port}",
        "PAYGATE_ONECOM_API_BASE": double.base_url,
        "PAYGATE_ONECOM_API_KEY": onecom_key,
        "PAYGATE_ONECOM_TIMEOUT_MS": "3000",
        # An outage opens One.com's circuit: a short cooldown lets the ask again through soon after it ends.
        "PAYGATE_ONECOM_BREAKER_COOLDOWN_MS": "1500",
        "PAYGATE_WEBHOOK_RELAY_INTERVAL_MS": "200",
        # The reconciliation's cadence, which refunds the provider could not be asked for share.
        "PAYGATE_RECONCILE_INTERVAL_MS": "200",
    }
    async with running_stack(clean_db, env, gateway_port=gateway_port) as services:
        yield services


async def test_onecom_refund_goes_through_its_api_and_settles_on_its_webhook(
    stack: ServiceStack, double: OneComDouble
) -> None:
    merchant = await stack.create_merchant()
    status, body = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": "42.50", "currency": "EUR", "provider": "onecom"},
        headers=merchant.headers,
    )
    assert status == 201, body
    sid = body["id"]
    [payment] = double.payments.values()
    assert await double.act(payment, "pay")
    session = await fulfilled(stack, merchant, sid)
    secret = (
        await stack.keys.RevealCustomerKey(
            keys_pb2.RevealCustomerKeyRequest(session_id=sid, access_token_id=session["access_token_id"]),
            timeout=5,
        )
    ).secret

    status, body = await refund(stack, merchant, sid, {"amount": "1.00", "provider_refund_id": "rf_manual"})
    assert status == 409 and body["error"]["code"] == "use_provider", body
    status, body = await refund(stack, merchant, sid, {"amount": "42.51"})
    assert status == 400 and body["error"]["code"] == "amount_too_large", body

    status, partial = await refund(stack, merchant, sid, {"amount": "12.50"}, key="onecom-refund-1")
    assert status == 202, partial
    assert partial["status"] in ("pending", "succeeded") and partial["provider_refund_id"].startswith("re_")
    assert payment.refunded_minor == 1250
    await wait_credit_notes(stack, merchant, sid, 1250, 1)
    status, rest = await refund(stack, merchant, sid, {}, key="onecom-refund-2")
    assert status == 202 and rest["amount"] == "30.00", rest
    await wait_credit_notes(stack, merchant, sid, 4250, 2)

    async def refunded() -> bool:
        return (await session_json(stack, merchant, sid))["status"] == "refunded"

    await polling.eventually(refunded, timeout=15, what="session refunded")
    after = await session_json(stack, merchant, sid)
    assert after["amount_refunded"] == "42.50"
    # One.com's webhook may overtake its own API answer: then the request's record gives way to the one the
    # webhook made (canceled, crediting nothing), and each refund is still counted once.
    statuses = [r["status"] for r in after["refunds"]]
    assert statuses.count("succeeded") == 2 and set(statuses) <= {"succeeded", "canceled"}, statuses
    assert sum(r["credited_minor"] for r in after["refunds"]) == 4250
    assert len(await credit_notes(stack, merchant, sid)) == 2
    status, verified = await stack.request(
        "POST", "/v1/api_keys/verify", json={"key": secret}, headers=merchant.headers
    )
    assert status == 200 and verified["code"] == "REVOKED"


async def _paid_onecom_session(
    stack: ServiceStack, double: OneComDouble, merchant: Any, amount: str
) -> tuple[str, Any]:
    status, body = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": amount, "currency": "EUR", "provider": "onecom"},
        headers=merchant.headers,
    )
    assert status == 201, body
    [payment] = [p for p in double.payments.values() if p.reference == body["id"]]
    assert await double.act(payment, "pay")
    await fulfilled(stack, merchant, body["id"])
    return body["id"], payment


async def _settled_once(stack: ServiceStack, merchant: Any, sid: str, minor: int) -> dict[str, Any]:
    await wait_credit_notes(stack, merchant, sid, minor, 1)
    after = await session_json(stack, merchant, sid)
    assert after["amount_refunded"] == f"{minor / 100:.2f}", after
    statuses = [r["status"] for r in after["refunds"]]
    assert statuses.count("succeeded") == 1 and set(statuses) <= {"succeeded", "canceled"}, after["refunds"]
    assert not [r for r in after["refunds"] if r["status"] == "pending"]
    return after


async def test_a_refund_the_provider_could_not_be_asked_for_is_asked_again_once_it_answers(
    stack: ServiceStack, double: OneComDouble
) -> None:
    """One.com is down when the merchant refunds: 503, and the refund stays pending with its amount reserved.
    Before, it stayed pending for good (nothing asked One.com again), so that amount could never be refunded;
    now paygate asks again under the same idempotency key once One.com answers, and its webhook settles it."""
    merchant = await stack.create_merchant()
    sid, payment = await _paid_onecom_session(stack, double, merchant, "20.00")
    double.outage = 503
    status, body = await refund(stack, merchant, sid, {"amount": "5.00"})
    assert status == 503 and body["error"]["code"] == "provider_unavailable", body
    assert "Do not send a new refund" in body["error"]["message"]
    [pending] = (await session_json(stack, merchant, sid))["refunds"]
    assert pending["status"] == "pending" and pending["amount"] == "5.00"
    double.outage = None
    await _settled_once(stack, merchant, sid, 500)
    assert payment.refunded_minor == 500


async def test_a_refund_whose_answer_was_lost_is_made_once_at_the_provider(
    stack: ServiceStack, double: OneComDouble
) -> None:
    """One.com makes the refund but answers too late (the gateway's call times out): the request reached it.
    Asking again under the same idempotency key gets that same refund back, and its webhook is merged with
    paygate's refund: the customer is refunded once, and the merchant's books show one refund."""
    merchant = await stack.create_merchant()
    sid, payment = await _paid_onecom_session(stack, double, merchant, "20.00")
    double.delay_s = 4.0  # past the gateway's 3 s timeout: every attempt reaches One.com, no answer returns
    status, body = await refund(stack, merchant, sid, {"amount": "5.00"})
    assert status == 503 and body["error"]["code"] == "provider_unavailable", body
    double.delay_s = 0.0
    await _settled_once(stack, merchant, sid, 500)
    assert payment.refunded_minor == 500


async def test_a_refund_waiting_for_the_provider_shows_on_the_metrics_port(
    stack: ServiceStack, double: OneComDouble
) -> None:
    """Refunds the gateway could not ask the provider for (`provider_refund_asks`) show on its metrics port:
    how many wait, by provider, and how long the oldest has waited (alert `PaygateRefundAskWaiting`). Before,
    nothing showed a provider outage that outlasted the asks: the customer unrefunded, the amount reserved."""
    async with metrics_port(stack.gateway.metrics) as scrape:
        # Both providers a refund can be asked of have a series from the start (0: nothing waits).
        page = await scrape()
        for provider in ("stripe", "onecom"):
            assert sample(page, WAITING, provider=provider) == 0, page
            assert sample(page, OLDEST, provider=provider) == 0, page

        merchant = await stack.create_merchant()
        sid, payment = await _paid_onecom_session(stack, double, merchant, "20.00")
        double.outage = 503  # One.com stays down: the refund waits, asked again with backoff
        status, body = await refund(stack, merchant, sid, {"amount": "5.00"})
        assert status == 503 and body["error"]["code"] == "provider_unavailable", body

        async def waiting_a_while() -> tuple[float, float] | None:
            page = await scrape()
            waiting, oldest = (
                sample(page, WAITING, provider="onecom"),
                sample(page, OLDEST, provider="onecom"),
            )
            return (waiting, oldest) if waiting == 1 and oldest is not None and oldest >= 1 else None

        waiting, oldest = await polling.eventually(
            waiting_a_while, timeout=15, what="the waiting-refund gauges"
        )
        assert waiting == 1 and 1 <= oldest < 60
        assert sample(await scrape(), WAITING, provider="stripe") == 0

        # One.com answers again: the refund is asked for, leaves the table, and the gauges go back to 0.
        double.outage = None

        async def drained() -> bool:
            page = await scrape()
            return (
                sample(page, WAITING, provider="onecom") == 0 and sample(page, OLDEST, provider="onecom") == 0
            )

        await polling.eventually(drained, timeout=30, what="the waiting-refund gauges back to 0")
        assert payment.refunded_minor == 500


async def test_a_refusal_by_onecoms_api_records_its_error_code(
    stack: ServiceStack, double: OneComDouble, receiver: Receiver
) -> None:
    """A refund One.com's API refuses fails with One.com's error code as its `failure_reason`, in the API and in
    the `refund.failed` merchant event."""
    merchant = await stack.create_merchant()
    await create_endpoint(stack, merchant, receiver.url, ["refund.failed"])
    status, body = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": "20.00", "currency": "EUR", "provider": "onecom"},
        headers=merchant.headers,
    )
    assert status == 201, body
    sid = body["id"]
    [payment] = double.payments.values()
    assert await double.act(payment, "pay")
    await fulfilled(stack, merchant, sid)
    # One.com counts the payment as refunded already (a refund in its own dashboard): it refuses paygate's
    # refund with 422 {"error": {"code": "amount_too_large"}}.
    payment.refunded_minor = payment.amount_minor

    status, refused = await refund(stack, merchant, sid, {"amount": "5.00"}, key="onecom-refused")
    assert status < 500, refused
    assert refused["status"] == "failed", refused
    assert refused["failure_reason"] == "amount_too_large", refused
    [shown] = [r for r in (await session_json(stack, merchant, sid))["refunds"] if r["id"] == refused["id"]]
    assert shown["failure_reason"] == "amount_too_large", shown
    [event] = await receiver.wait_for("refund.failed")
    assert event.json["data"]["object"]["failure_reason"] == "amount_too_large", event.json
