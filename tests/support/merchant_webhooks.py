"""Merchant webhooks seen from the receiving side, shared by the merchant-events and shared-worker tests: a real
HTTP receiver on loopback that records every delivery, the settings that make the delivery worker quick, an
endpoint created over the API, and a paid session (every merchant event starts from one)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from support.polling import eventually
from support.stack import Merchant, ServiceStack

FAST_ENV = {
    "PAYGATE_ALLOW_LOOPBACK_WEBHOOKS": "true",
    "PAYGATE_MERCHANT_WEBHOOK_POLL_MS": "100",
    "PAYGATE_MERCHANT_WEBHOOK_BACKOFF_BASE_MS": "100",
    "PAYGATE_MERCHANT_WEBHOOK_BACKOFF_CAP_MS": "200",
    "PAYGATE_OUTBOX_POLL_MS": "100",
}


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


Behaviour = Callable[[int], Awaitable[web.StreamResponse]]


async def ok(_: int) -> web.StreamResponse:
    return web.json_response({"ok": True})


@dataclass
class Receiver:
    """An aiohttp server on 127.0.0.1 recording every POST; `behaviour(n)` answers the n-th (1-based)."""

    behaviour: Behaviour = ok
    deliveries: list[Delivery] = field(default_factory=list)
    runner: web.AppRunner | None = None
    port: int = 0
    calls: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        # handler_cancellation: a sender that hangs up is no longer counted in `in_flight` from that moment
        # (aiohttp cancels the handler when it reads the close), not only at the next look below.
        self.runner = web.AppRunner(
            app, handle_signals=False, shutdown_timeout=0.5, handler_cancellation=True
        )
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        n = self.calls
        self.deliveries.append(Delivery(dict(request.headers), await request.read(), time.monotonic()))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        # The connection is watched as well, so that `in_flight` counts only what the sender still waits for.
        answer = asyncio.ensure_future(self.behaviour(n))
        try:
            while not answer.done():
                if request.transport is None or request.transport.is_closing():
                    return web.Response(status=499)
                await asyncio.wait([answer], timeout=0.05)
            return answer.result()
        finally:
            self.in_flight -= 1
            answer.cancel()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def of_type(self, event_type: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.json.get("type") == event_type]

    async def wait_for(self, event_type: str, count: int = 1, timeout: float = 20.0) -> list[Delivery]:
        """The deliveries of `event_type`, once at least `count` of them have arrived."""

        async def arrived() -> list[Delivery] | None:
            found = self.of_type(event_type)
            return found if len(found) >= count else None

        found: list[Delivery] = await eventually(
            arrived, timeout=timeout, what=f"{count} {event_type} deliveries"
        )
        return found


async def create_endpoint(
    stack: ServiceStack, merchant: Merchant, url: str, events: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    status, body = await stack.request(
        "POST",
        "/v1/webhook_endpoints",
        headers=merchant.headers,
        json={"url": url, "events": events or ["*"], **extra},
    )
    assert status == 201, body
    return body


async def paid_session(stack: ServiceStack, merchant: Merchant, amount_minor: int = 9999) -> str:
    """A test session paid through ApplyPaymentEvent (the path every provider's webhook ends in)."""
    created = await stack.session.CreateSession(
        session_pb2.CreateSessionRequest(
            merchant_id=merchant.id, amount=f"{amount_minor / 100:.2f}", mode=common_pb2.MODE_TEST
        ),
        timeout=10,
    )
    session_id = created.session.id
    await stack.session.ApplyPaymentEvent(
        session_pb2.ApplyPaymentEventRequest(
            session_id=session_id,
            provider="onecom",
            provider_event_id=f"evt_{uuid.uuid4().hex}",
            kind=session_pb2.EVENT_KIND_SUCCEEDED,
            amount=common_pb2.Money(amount_minor=str(amount_minor), currency="EUR", exponent=2),
            provider_reference=f"tx_{uuid.uuid4().hex[:8]}",
        ),
        timeout=10,
    )
    return session_id
