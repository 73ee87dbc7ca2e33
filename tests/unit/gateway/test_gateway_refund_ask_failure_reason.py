"""A refusal by a provider's refund API records the provider's own error code as the refund's failure reason
(refund_asks.ask_provider): bounded like a webhook's reason, matched case-blind, empty when it sent none."""

from __future__ import annotations

from typing import Any

import pytest

from paygate.session.v1 import session_pb2
from webhook_gateway.adapters.provider_errors import ProviderError
from webhook_gateway.adapters.refund_asks_repository import RefundAsk
from webhook_gateway.service_layer.refund_asks import ask_provider


class _Refusing:
    def __init__(self, provider_code: str | None) -> None:
        self.provider_code = provider_code

    async def refund(self, *args: Any, **kwargs: Any) -> str:
        raise ProviderError(
            "provider_rejected", "refused", transient=False, provider_code=self.provider_code, http_status=422
        )


class _Sessions:
    def __init__(self) -> None:
        self.requests: list[session_pb2.AttachProviderRefundRequest] = []

    async def AttachProviderRefund(  # the gRPC stub's name
        self, request: session_pb2.AttachProviderRefundRequest
    ) -> session_pb2.RefundSessionResponse:
        self.requests.append(request)
        return session_pb2.RefundSessionResponse()


ASK = RefundAsk("r1", "m1", "test", "s1", "onecom", "pay_1", 500, "EUR", 2)


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("amount_too_large", "amount_too_large"),
        ("CARD_DECLINED", "card_declined"),
        ("x" * 65, "unknown"),
        ("bad code!", "unknown"),
        (None, ""),
        ("", ""),
    ],
)
async def test_the_refusal_code_is_the_failure_reason(code: str | None, reason: str) -> None:
    sessions = _Sessions()
    asked = await ask_provider(_Refusing(code), sessions, ASK)  # type: ignore[arg-type]
    [request] = sessions.requests
    assert (request.status, request.failure_reason) == ("failed", reason)
    assert asked.provider_error == {"code": "provider_rejected", "message": "refused"}
