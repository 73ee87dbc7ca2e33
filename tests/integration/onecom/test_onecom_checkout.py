"""One.com sessions get their payment created at One.com's API (contract §11), against the test double."""

from __future__ import annotations

import json
import time

import pytest

from paygate_dev.devtools.onecom_double import OneComDouble
from support.polling import eventually
from support.stack import ServiceStack
from webhook_gateway.entrypoints.app_keys import CONFIG


async def _create(stack: ServiceStack, headers: dict[str, str], **body: object) -> tuple[int, dict]:
    payload = {"amount": "42.50", "currency": "EUR", "provider": "onecom", **body}
    return await stack.request("POST", "/v1/sessions", json=payload, headers=headers)


def _api_calls(double: OneComDouble, method: str = "POST", path: str = "/v1/payments") -> list[dict]:
    return [headers for m, p, headers in double.requests if m == method and p == path]


def _circuit(stack: ServiceStack, name: str, **labels: str) -> float | None:
    return stack.gateway.metrics.registry.get_sample_value(name, {"provider": "onecom", **labels})


async def test_onecom_session_gets_the_payment_page(
    stack: ServiceStack, double: OneComDouble, onecom_key: str, gateway_port: int
) -> None:
    merchant = await stack.create_merchant()
    status, body = await _create(stack, merchant.headers)
    assert status == 201, body
    sid = body["id"]
    [payment] = double.payments.values()
    assert body["provider_checkout_url"] == f"{double.base_url}/pay/{payment.id}"
    assert body["url"] == f"/checkout?session={sid}"
    # §11: Bearer key, Idempotency-Key = the session id, and the payment's fields.
    [headers] = _api_calls(double)
    assert headers["Authorization"] == f"Bearer {onecom_key}"
    assert headers["Idempotency-Key"] == sid
    assert (payment.amount_minor, payment.currency, payment.reference) == (4250, "EUR", sid)
    assert payment.return_url == f"http://127.0.0.1:{gateway_port}/checkout?session={sid}&result=success"
    assert payment.webhook_url == f"http://127.0.0.1:{gateway_port}/webhooks/onecom"

    status, fetched = await stack.request("GET", f"/v1/sessions/{sid}", headers=merchant.headers)
    assert status == 200 and fetched["provider_checkout_url"] == body["provider_checkout_url"]
    status, page = await stack.request("GET", f"/checkout?session={sid}")
    assert status == 200
    assert 'id="onecom-link"' in page and body["provider_checkout_url"] in page
    # The gateway remembers the payment for reconciliation, in its own schema.
    row = await stack.pools["gateway"].fetchrow(
        "SELECT provider, payment_id, state, mode FROM provider_payments WHERE session_id = $1::uuid", sid
    )
    assert dict(row) == {"provider": "onecom", "payment_id": payment.id, "state": "open", "mode": "test"}


async def test_onecom_down_keeps_the_session_and_works_after_recovery(
    stack: ServiceStack, double: OneComDouble
) -> None:
    merchant = await stack.create_merchant()
    double.outage = 503
    status, body = await _create(stack, merchant.headers)
    # Committed and answered 201 (never a 500); the missing card rail is said, not hidden.
    assert status == 201, body
    assert "provider_checkout_url" not in body
    assert body["provider_checkout_error"]["code"] == "provider_unavailable"
    sid = body["id"]
    assert len(_api_calls(double)) == 3  # retried on 503, with backoff, then given up
    status, page = await stack.request("GET", f"/checkout?session={sid}")
    assert status == 200
    assert 'id="onecom-unavailable"' in page and "unavailable" in page
    assert 'id="onecom-link"' not in page

    double.outage = None

    async def retried() -> dict | None:
        # The merchant's retry; fails fast while the circuit (opened by the outage) cools down.
        code, again = await stack.request(
            "POST", f"/v1/sessions/{sid}/provider_checkout", headers=merchant.headers
        )
        assert code in (200, 503), again
        return again if code == 200 else None

    again = await eventually(retried, timeout=20, interval=0.3, what="the payment after recovery")
    [payment] = double.payments.values()
    assert again["provider_checkout_url"] == f"{double.base_url}/pay/{payment.id}"
    status, page = await stack.request("GET", f"/checkout?session={sid}")
    assert status == 200 and 'id="onecom-link"' in page
    # Every attempt used the one Idempotency-Key: One.com holds one payment for the session.
    assert {h["Idempotency-Key"] for h in _api_calls(double)} == {sid}


async def test_circuit_opens_fails_fast_and_closes_after_recovery(
    stack: ServiceStack, double: OneComDouble
) -> None:
    merchant = await stack.create_merchant()
    assert _circuit(stack, "paygate_provider_circuit_state") == 0
    double.outage = 502
    status, body = await _create(stack, merchant.headers)  # three failed attempts: the threshold
    assert status == 201 and body["provider_checkout_error"]["code"] == "provider_unavailable"
    assert _circuit(stack, "paygate_provider_circuit_state") == 2  # open
    assert _circuit(stack, "paygate_provider_circuit_opened_total") == 1

    # Open: the next create fails at once, without a request to One.com.
    calls = len(double.requests)
    started = time.monotonic()
    status, body = await _create(stack, merchant.headers)
    assert status == 201 and body["provider_checkout_error"]["code"] == "provider_unavailable"
    assert "circuit open" in body["provider_checkout_error"]["message"]
    assert len(double.requests) == calls
    assert time.monotonic() - started < 1.0
    assert _circuit(stack, "paygate_provider_api_calls_total", operation="create", result="circuit_open") == 1

    double.outage = None
    sid = body["id"]

    async def recovered() -> bool:
        code, _ = await stack.request(
            "POST", f"/v1/sessions/{sid}/provider_checkout", headers=merchant.headers
        )
        return code == 200

    await eventually(recovered, timeout=20, interval=0.3, what="the circuit to close")
    assert _circuit(stack, "paygate_provider_circuit_state") == 0
    status, body = await _create(stack, merchant.headers)
    assert status == 201 and "provider_checkout_url" in body


async def test_merchant_expire_cancels_the_payment_at_onecom_first(
    stack: ServiceStack, double: OneComDouble
) -> None:
    merchant = await stack.create_merchant()
    _, body = await _create(stack, merchant.headers)
    sid = body["id"]
    [payment] = double.payments.values()
    status, expired = await stack.request("POST", f"/v1/sessions/{sid}/expire", headers=merchant.headers)
    assert status == 200 and expired["status"] == "expired"
    assert payment.status == "canceled"
    cancel = [h for m, p, h in double.requests if p == f"/v1/payments/{payment.id}/cancel"]
    assert cancel and cancel[0]["Idempotency-Key"] == f"cancel-{payment.id}"


async def test_merchant_expire_is_refused_when_the_customer_paid_at_onecom(
    stack: ServiceStack, double: OneComDouble
) -> None:
    merchant = await stack.create_merchant()
    _, body = await _create(stack, merchant.headers)
    sid = body["id"]
    [payment] = double.payments.values()
    assert await double.act(payment, "pay", drop_webhook=True)
    status, refused = await stack.request("POST", f"/v1/sessions/{sid}/expire", headers=merchant.headers)
    assert (status, refused["error"]["code"]) == (409, "provider_session_complete")
    status, fetched = await stack.request("GET", f"/v1/sessions/{sid}", headers=merchant.headers)
    assert fetched["status"] == "created"


async def test_other_providers_and_other_modes_never_reach_onecom(
    stack: ServiceStack, double: OneComDouble
) -> None:
    merchant = await stack.create_merchant()
    status, body = await _create(stack, merchant.headers, provider="stripe")
    assert status == 201
    status, body = await stack.request(
        "POST", "/v1/sessions", json={"amount": "5.00", "currency": "EUR"}, headers=merchant.headers
    )
    assert status == 201 and "provider_checkout_url" not in body
    live = await stack.create_merchant(name="Live", prefix="live", mode="live")
    status, body = await _create(stack, live.headers)
    # No live One.com key is configured: the live session has no One.com API (and no error either).
    assert status in (201, 409), body
    if status == 201:
        assert "provider_checkout_url" not in body and "provider_checkout_error" not in body
    assert _api_calls(double) == []


async def test_no_secret_in_the_gateway_logs(
    stack: ServiceStack, double: OneComDouble, onecom_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    merchant = await stack.create_merchant()
    caplog.set_level("DEBUG")
    double.outage = 500
    await _create(stack, merchant.headers)
    double.outage = 400
    await _create(stack, merchant.headers)
    text = "\n".join(
        f"{record.getMessage()} {json.dumps(record.__dict__, default=str)}" for record in caplog.records
    )
    assert "onecom api" in text  # the failures were logged
    assert onecom_key not in text
    assert onecom_key not in repr(stack.gateway.app[CONFIG])
