"""The One.com API client against the test double over real HTTP: retries, idempotency, the circuit breaker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from paygate_dev.devtools.onecom_double import OneComDouble
from webhook_gateway.adapters.onecom_api import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    CircuitBreaker,
    OneComApiSettings,
    OneComClient,
    ProviderMetrics,
)
from webhook_gateway.adapters.payment_providers import OneComProvider, StripeProvider
from webhook_gateway.adapters.provider_errors import ProviderError
from webhook_gateway.adapters.stripe_checkout import StripeCheckout, StripeCheckoutSettings

KEY = "onecom_test_client"
SESSION = "7d4a1a52-5b7e-4a43-9a3e-0d1f8f0e2a11"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def double() -> AsyncIterator[OneComDouble]:
    fake = await OneComDouble({KEY: "whsec_" + "A" * 44}).start()
    try:
        yield fake
    finally:
        await fake.stop()


def _client(
    double: OneComDouble, clock: Clock | None = None, **settings: object
) -> tuple[OneComClient, ProviderMetrics]:
    metrics = ProviderMetrics(CollectorRegistry())
    options = {"timeout_s": 1.0, "backoff_base_s": 0.01, "breaker_threshold": 3, "breaker_cooldown_s": 5.0}
    options.update(settings)
    client = OneComClient(
        OneComApiSettings(api_base=double.base_url, api_keys={"test": KEY}, **options),  # type: ignore[arg-type]
        metrics,
        clock=clock or Clock(),
    )
    return client, metrics


async def _create(client: OneComClient, session_id: str = SESSION) -> object:
    return await client.create_payment(
        "test",
        session_id=session_id,
        amount_minor=1000,
        currency="EUR",
        return_url="http://127.0.0.1:1/checkout",
        webhook_url="http://127.0.0.1:1/webhooks/onecom",
    )


async def test_create_is_idempotent_on_the_session_id(double: OneComDouble) -> None:
    client, _ = _client(double)
    try:
        first = await _create(client)
        second = await _create(client)
        assert first == second and len(double.payments) == 1
        read = await client.get_payment("test", first.id)  # type: ignore[attr-defined]
        assert (read.status, read.amount_minor, read.currency, read.reference) == (
            "requires_action",
            1000,
            "EUR",
            SESSION,
        )
    finally:
        await client.close()


async def test_4xx_is_final_and_not_retried(double: OneComDouble) -> None:
    client, _metrics = _client(double)
    try:
        with pytest.raises(ProviderError) as caught:
            await client.get_payment("test", "pay_missing")
        assert (caught.value.code, caught.value.provider_code, caught.value.transient) == (
            "provider_rejected",
            "payment_not_found",
            False,
        )
        assert len(double.requests) == 1
        assert client.breaker.state == CLOSED  # One.com answered: it is up
    finally:
        await client.close()


async def test_5xx_and_timeouts_are_retried_then_unavailable(double: OneComDouble) -> None:
    client, _metrics = _client(double, breaker_threshold=100)
    try:
        double.outage = 503
        with pytest.raises(ProviderError) as caught:
            await _create(client)
        assert (caught.value.code, caught.value.transient) == ("provider_unavailable", True)
        assert len(double.requests) == 3
        double.outage = None
        double.delay_s = 1.5  # longer than the client's 1 s timeout
        with pytest.raises(ProviderError) as caught:
            await _create(client)
        assert caught.value.code == "provider_unavailable" and "TimeoutError" in caught.value.message
        assert len(double.requests) == 6
        double.delay_s = 0
        payment = await _create(client)
        # Every try of the create carried the same Idempotency-Key, so the timed-out ones made no second payment.
        assert len(double.payments) == 1 and payment.id in double.payments  # type: ignore[attr-defined]
        assert {h.get("Idempotency-Key") for _, _, h in double.requests} == {SESSION}
    finally:
        await client.close()


async def test_wrong_key_is_rejected_not_retried(double: OneComDouble) -> None:
    metrics = ProviderMetrics(CollectorRegistry())
    client = OneComClient(OneComApiSettings(api_base=double.base_url, api_keys={"test": "nope"}), metrics)
    try:
        with pytest.raises(ProviderError) as caught:
            await _create(client)
        assert caught.value.provider_code == "invalid_api_key" and len(double.requests) == 1
        with pytest.raises(ProviderError) as caught:
            await client.get_payment("live", "pay_x")  # no live key configured
        assert caught.value.code == "provider_not_configured"
        assert "nope" not in repr(client.settings)
    finally:
        await client.close()


async def test_breaker_opens_fails_fast_half_opens_and_closes(double: OneComDouble) -> None:
    clock = Clock()
    client, metrics = _client(double, clock, max_attempts=1)

    def state() -> float:
        [family] = metrics.circuit_state.collect()
        [sample] = [s for s in family.samples if s.labels == {"provider": "onecom"}]
        return sample.value

    try:
        double.outage = 500
        for _ in range(3):
            with pytest.raises(ProviderError):
                await _create(client)
        assert client.breaker.state == OPEN and state() == 2
        calls = len(double.requests)
        with pytest.raises(ProviderError, match="circuit open"):
            await _create(client)
        assert len(double.requests) == calls  # failed fast

        clock.now += 5.0  # the cooldown passed: one trial call; it fails, so open again
        assert client.breaker.state == HALF_OPEN
        with pytest.raises(ProviderError):
            await _create(client)
        assert len(double.requests) == calls + 1 and client.breaker.state == OPEN

        double.outage = None
        clock.now += 5.0
        await _create(client)  # the trial succeeds: closed
        assert client.breaker.state == CLOSED and state() == 0
        assert metrics.circuit_opened.labels("onecom")._value.get() == 2
    finally:
        await client.close()


def test_a_scrape_reads_the_circuit_as_it_is_now_not_as_the_last_call_left_it() -> None:
    """After an outage the breaker lets a trial call out once the cooldown has passed; with no call coming
    (a quiet hour), the gauge must say so, not show `open` until the next call happens to move it."""
    registry = CollectorRegistry()
    clock = Clock()
    breaker = CircuitBreaker(
        "onecom", threshold=1, cooldown_s=30.0, metrics=ProviderMetrics(registry), clock=clock
    )

    def exported() -> float | None:
        return registry.get_sample_value("paygate_provider_circuit_state", {"provider": "onecom"})

    assert exported() == 0
    breaker.failed()
    assert exported() == 2
    clock.now += 29.0
    assert exported() == 2
    clock.now += 1.0
    assert exported() == 1  # half-open: the next call is the trial
    breaker.before_call()
    breaker.succeeded()
    assert exported() == 0


def test_half_open_lets_one_trial_through_at_a_time() -> None:
    clock = Clock()
    breaker = CircuitBreaker("onecom", threshold=1, cooldown_s=1.0, clock=clock)
    breaker.failed()
    clock.now += 1.0
    breaker.before_call()  # the trial
    with pytest.raises(ProviderError):
        breaker.before_call()  # a second caller meanwhile fails fast
    breaker.abandoned()  # the trial was cancelled: the next caller may try
    breaker.before_call()
    breaker.succeeded()
    assert breaker.state == CLOSED


async def test_refund_through_the_provider_interface(double: OneComDouble) -> None:
    client, _ = _client(double)
    provider = OneComProvider(client, "http://127.0.0.1:1")
    try:
        payment = await _create(client)
        stored = double.payments[payment.id]  # type: ignore[attr-defined]
        stored.webhook_url = "http://127.0.0.1:1/unreachable"  # no gateway here: the webhook just fails
        with pytest.raises(ProviderError) as caught:
            await provider.refund("test", stored.id, 500, "EUR", 2, "refund-1")
        assert caught.value.provider_code == "payment_not_refundable"
        assert await double.act(stored, "pay")
        refund_id = await provider.refund("test", stored.id, 500, "EUR", 2, "refund-1")
        again = await provider.refund("test", stored.id, 500, "EUR", 2, "refund-1")
        assert refund_id == again and refund_id.startswith("re_")
        assert stored.refunded_minor == 500  # the retried refund was one refund
        calls = [h for m, p, h in double.requests if p.endswith("/refunds")]
        assert {h["Idempotency-Key"] for h in calls} == {"refund-1"}
    finally:
        await client.close()


async def test_stripe_refund_through_the_provider_interface() -> None:
    """Stripe's refund: a PaymentIntent, the amount in Stripe's units, one idempotency key per refund."""
    seen: list[tuple[dict[str, str], dict[str, str]]] = []

    async def refunds(request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        seen.append((form, dict(request.headers)))
        return web.json_response(
            {"id": "re_1", "object": "refund", "amount": int(form["amount"]), "status": "pending"}
        )

    app = web.Application()
    app.router.add_post("/v1/refunds", refunds)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    provider = StripeProvider(
        StripeCheckout(
            StripeCheckoutSettings(
                api_key="sk_test_x", public_url="http://127.0.0.1:1", api_base=f"http://127.0.0.1:{port}"
            )
        )
    )
    try:
        assert await provider.refund("test", "pi_1", 1999, "EUR", 2, "refund-7") == "re_1"
        [(form, headers)] = seen
        assert form == {"payment_intent": "pi_1", "amount": "1999"}
        assert headers["Idempotency-Key"] == "refund-7"
    finally:
        await provider.close()
        await runner.cleanup()
