"""Rolling an endpoint's signing secret (contract §7): `expires_in` 0 retires the old secret at once (a merchant
retiring a leaked secret), left out it keeps signing for the default 24 h, and the bounds (0..604800) agree in
the refusal, the OpenAPI document and the session service called directly. Real services, a real loopback
receiver, signatures checked with the reference `standardwebhooks` library."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from merchant_events_support import FAST_ENV, Receiver, create_endpoint, eventually, paid_session
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from paygate.common.v1 import common_pb2
from paygate.session.v1 import merchant_events_pb2 as pb
from paygate.session.v1 import merchant_events_pb2_grpc
from paygate_runtime.grpc_errors import error_code
from support.stack import ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **FAST_ENV}


def _events(stack: ServiceStack) -> merchant_events_pb2_grpc.MerchantEventsServiceStub:
    return merchant_events_pb2_grpc.MerchantEventsServiceStub(stack.channel("session"))


def _seconds_ahead(stamp: str) -> float:
    return (datetime.fromisoformat(stamp) - datetime.now(UTC)).total_seconds()


async def _roll(stack: ServiceStack, merchant: Any, endpoint_id: str, **body: Any) -> tuple[int, Any]:
    return await stack.request(
        "POST", f"/v1/webhook_endpoints/{endpoint_id}/roll_secret", headers=merchant.headers, json=body
    )


async def _async(value: Any) -> Any:
    return value


async def test_expires_in_zero_retires_the_old_secret_at_once(
    stack: ServiceStack, receiver: Receiver
) -> None:
    merchant = await stack.create_merchant()
    endpoint = await create_endpoint(stack, merchant, receiver.url, ["session.paid"])
    status, rolled = await _roll(stack, merchant, endpoint["id"], expires_in=0)
    assert status == 200, rolled
    assert rolled["secret"] != endpoint["secret"]
    ends = rolled["previous_secret_expires_at"]
    assert ends is None or _seconds_ahead(ends) <= 0, rolled
    status, shown = await stack.request(
        "GET", f"/v1/webhook_endpoints/{endpoint['id']}", headers=merchant.headers
    )
    assert status == 200 and shown["previous_secret_expires_at"] == ends, shown

    # The next delivery is signed with the new secret only: the leaked one verifies nothing.
    await paid_session(stack, merchant)
    await eventually(lambda: _async(receiver.of_type("session.paid")))
    delivery = receiver.of_type("session.paid")[0]
    assert len(delivery.headers["webhook-signature"].split(" ")) == 1, delivery.headers
    Webhook(rolled["secret"]).verify(delivery.body, delivery.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(delivery.body, delivery.headers)


async def test_left_out_the_old_secret_keeps_signing_for_24_hours_and_the_bounds_agree(
    stack: ServiceStack,
) -> None:
    merchant = await stack.create_merchant()
    endpoint = await create_endpoint(stack, merchant, "http://127.0.0.1:9/hook", ["session.paid"])
    status, rolled = await _roll(stack, merchant, endpoint["id"])
    assert status == 200, rolled
    assert 86_390 < _seconds_ahead(rolled["previous_secret_expires_at"]) <= 86_400, rolled
    # The endpoint shows the latest end of any previous secret still signing: each roll's own end shows once
    # a roll with 0 has ended the earlier ones.
    status, rolled = await _roll(stack, merchant, endpoint["id"], expires_in=0)
    assert status == 200 and rolled["previous_secret_expires_at"] is None, rolled
    status, rolled = await _roll(stack, merchant, endpoint["id"], expires_in=10)
    assert status == 200 and 0 < _seconds_ahead(rolled["previous_secret_expires_at"]) <= 10, rolled
    status, rolled = await _roll(stack, merchant, endpoint["id"], expires_in=604_800)
    assert status == 200 and 604_790 < _seconds_ahead(rolled["previous_secret_expires_at"]) <= 604_800

    status, document = await stack.request("GET", "/openapi.json")
    assert status == 200
    schema = document["components"]["schemas"]["RollWebhookSecret"]["properties"]["expires_in"]
    assert (schema["minimum"], schema["maximum"], schema.get("default")) == (0, 604_800, 86_400), schema
    for bad in (-5, 604_801, 1.5, "10", True, None):
        status, body = await _roll(stack, merchant, endpoint["id"], expires_in=bad)
        assert status == 400 and body["error"]["code"] == "invalid_expires_in", (bad, body)
        assert "0..604800" in body["error"]["message"], body

    # The session service checks the same bounds when the gateway is bypassed, with the same words.
    for overlap in (-5, 604_801):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _events(stack).RollWebhookSecret(
                pb.RollWebhookSecretRequest(
                    merchant_id=merchant.id,
                    mode=common_pb2.MODE_TEST,
                    endpoint_id=endpoint["id"],
                    overlap_seconds=overlap,
                ),
                timeout=5,
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_code(refused.value) == "invalid_expires_in"
        assert "0..604800" in (refused.value.details() or "")
    # Over gRPC too, 0 set is "now" and not set is the default.
    now = await _events(stack).RollWebhookSecret(
        pb.RollWebhookSecretRequest(
            merchant_id=merchant.id, mode=common_pb2.MODE_TEST, endpoint_id=endpoint["id"], overlap_seconds=0
        ),
        timeout=5,
    )
    assert not now.HasField("previous_secret_expires_at") or (
        now.previous_secret_expires_at.ToDatetime(UTC) <= datetime.now(UTC)
    )
    default = await _events(stack).RollWebhookSecret(
        pb.RollWebhookSecretRequest(
            merchant_id=merchant.id, mode=common_pb2.MODE_TEST, endpoint_id=endpoint["id"]
        ),
        timeout=5,
    )
    ahead = (default.previous_secret_expires_at.ToDatetime(UTC) - datetime.now(UTC)).total_seconds()
    assert 86_390 < ahead <= 86_400
