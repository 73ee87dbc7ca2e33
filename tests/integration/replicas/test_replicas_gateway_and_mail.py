"""Two gateway processes share one inbox, and two session replicas mail each customer once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest
from aiosmtpd.controller import Controller

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2, session_pb2_grpc
from paygate_dev.devtools.signing import stripe_delivery
from paygate_dev.devtools.stripe_fixtures import build_stripe_event
from support.polling import eventually
from support.processes import Replicas
from support.stack import ServiceStack, free_port

pytestmark = pytest.mark.slow

FAST_RELAY = {
    "PAYGATE_WEBHOOK_RELAY_INTERVAL_MS": "50",
    "PAYGATE_WEBHOOK_RETRY_BASE_MS": "50",
    "PAYGATE_WEBHOOK_RETRY_MAX_MS": "300",
    "PAYGATE_WEBHOOK_LEASE_MS": "3000",
}


@pytest.fixture
async def services(clean_db, stack_env, tmp_path: Path) -> AsyncIterator[tuple[ServiceStack, Replicas]]:
    stack = ServiceStack(clean_db, {**stack_env, **FAST_RELAY, "PAYGATE_OUTBOX_POLL_MS": "50"})
    await stack.start(("keys", "billing", "session"))
    replicas = Replicas(stack, tmp_path)
    try:
        yield stack, replicas
    finally:
        replicas.stop_all()
        await stack.stop()


async def _create_sessions(stack: ServiceStack, merchant_id: str, n: int, email: str = "") -> list[str]:
    ids = []
    for _ in range(n):
        reply = await stack.session.CreateSession(
            session_pb2.CreateSessionRequest(
                merchant_id=merchant_id,
                mode=common_pb2.MODE_TEST,
                amount="12.00",
                provider="stripe",
                customer_email=email,
            ),
            timeout=10,
        )
        ids.append(reply.session.id)
    return ids


async def test_two_gateways_relay_every_kept_event_once(services) -> None:
    stack, replicas = services
    merchant = await stack.create_merchant()
    session_ids = await _create_sessions(stack, merchant.id, 20)
    gateways = await asyncio.gather(replicas.spawn("gateway"), replicas.spawn("gateway"))
    # The session service is down while the events arrive: both gateways keep them and their relays compete
    # for the same inbox rows once it is back.
    await stack.stop_service("session")
    secret = stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"]
    async with aiohttp.ClientSession() as http:
        for i, session_id in enumerate(session_ids):
            event = build_stripe_event("payment_intent.succeeded", session_id, 1200, "EUR")
            raw, headers = stripe_delivery(event, secret, int(time.time()))
            url = f"http://127.0.0.1:{gateways[i % 2].port}/webhooks/stripe"
            async with http.post(url, data=raw, headers=headers) as response:
                assert response.status == 200
    await stack.start_service("session")
    conn = await stack.db.admin()
    try:

        async def all_applied() -> bool:
            counts = await conn.fetch(
                "SELECT status, count(*) AS n FROM gateway.inbox_events GROUP BY status"
            )
            return {r["status"]: r["n"] for r in counts} == {"applied": 20}

        await eventually(all_applied, timeout=40.0, interval=0.1, what="every event applied")
        paid = await conn.fetchval(
            "SELECT count(*) FROM session.session_history WHERE to_status = 'paid' AND session_id = ANY($1::uuid[])",
            session_ids,
        )
        assert paid == 20
        # Whichever relay won each row, every event is recorded once, with the outcome `applied`.
        outcomes = await conn.fetch(
            "SELECT outcome, count(*) AS n FROM session.processed_events GROUP BY outcome"
        )
        assert {r["outcome"]: r["n"] for r in outcomes} == {"applied": 20}
    finally:
        await conn.close()


class _Sink:
    def __init__(self) -> None:
        self.recipients: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls this hook by name
        self.recipients.extend(envelope.rcpt_tos)
        return "250 OK"


async def test_two_session_replicas_mail_each_customer_once(clean_db, stack_env, tmp_path: Path) -> None:
    sink = _Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    env = {
        **stack_env,
        "PAYGATE_SMTP_HOST": "127.0.0.1",
        "PAYGATE_SMTP_PORT": str(port),
        "PAYGATE_OUTBOX_POLL_MS": "50",
    }
    stack = ServiceStack(clean_db, env)
    await stack.start(("keys", "billing"))
    replicas = Replicas(stack, tmp_path)
    try:
        first, second = await asyncio.gather(replicas.spawn("session"), replicas.spawn("session"))
        merchant = await stack.create_merchant()
        channels = [grpc.aio.insecure_channel(r.addr) for r in (first, second)]
        stubs = [session_pb2_grpc.SessionServiceStub(c) for c in channels]
        ids = []
        for i in range(10):
            reply = await stubs[i % 2].CreateSession(
                session_pb2.CreateSessionRequest(
                    merchant_id=merchant.id,
                    mode=common_pb2.MODE_TEST,
                    amount="3.00",
                    customer_email=f"buyer{i}@example.com",
                ),
                timeout=10,
            )
            ids.append(reply.session.id)
        for i, session_id in enumerate(ids):
            await stubs[i % 2].ApplyPaymentEvent(
                session_pb2.ApplyPaymentEventRequest(
                    session_id=session_id,
                    provider="onecom",
                    provider_event_id=f"evt_mail_{i}",
                    kind=session_pb2.EVENT_KIND_SUCCEEDED,
                    provider_reference=f"tx_mail_{i}",
                    amount=common_pb2.Money(amount_minor="300", currency="EUR", exponent=2),
                ),
                timeout=10,
            )

        async def all_mailed() -> bool:
            return len(sink.recipients) >= 10

        await eventually(all_mailed, timeout=40.0, interval=0.1, what="all_mailed")
        await asyncio.sleep(1.0)  # a second copy, if any replica were to send one, would arrive by now
        assert sorted(sink.recipients) == sorted(f"buyer{i}@example.com" for i in range(10))
        for channel in channels:
            await channel.close()
    finally:
        replicas.stop_all()
        await stack.stop()
        controller.stop()
