"""Killing the session process in the middle of deliveries loses nothing, and sends again only what was in
flight (at least once); two replicas share the queue."""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from aiohttp import web
from merchant_events_support import FAST_ENV, Receiver, eventually
from standardwebhooks.webhooks import Webhook

from paygate.common.v1 import common_pb2
from paygate.session.v1 import merchant_events_pb2 as pb
from paygate.session.v1 import merchant_events_pb2_grpc, session_pb2, session_pb2_grpc
from support.processes import Replicas
from support.stack import ServiceStack

pytestmark = pytest.mark.slow

PER_ENDPOINT = 4


@pytest.fixture
async def outside_session(
    clean_db, stack_env, tmp_path: Path
) -> AsyncIterator[tuple[ServiceStack, Replicas]]:
    env = {
        **stack_env,
        **FAST_ENV,
        # A short lease so that the killed process's deliveries come back soon; the timeout stays below it.
        "PAYGATE_MERCHANT_WEBHOOK_LEASE_MS": "2500",
        "PAYGATE_MERCHANT_WEBHOOK_TIMEOUT_MS": "1500",
        "PAYGATE_MERCHANT_WEBHOOK_PER_ENDPOINT": str(PER_ENDPOINT),
    }
    stack = ServiceStack(clean_db, env)
    await stack.start(("keys", "billing"))
    replicas = Replicas(stack, tmp_path)
    try:
        yield stack, replicas
    finally:
        replicas.stop_all()
        await stack.stop()


async def _pay(stub: session_pb2_grpc.SessionServiceStub, merchant_id: str) -> str:
    created = await stub.CreateSession(
        session_pb2.CreateSessionRequest(merchant_id=merchant_id, amount="5.00", mode=common_pb2.MODE_TEST),
        timeout=10,
    )
    await stub.ApplyPaymentEvent(
        session_pb2.ApplyPaymentEventRequest(
            session_id=created.session.id,
            provider="onecom",
            provider_event_id=f"evt_{uuid.uuid4().hex}",
            kind=session_pb2.EVENT_KIND_SUCCEEDED,
            amount=common_pb2.Money(amount_minor="500", currency="EUR", exponent=2),
            provider_reference=f"tx_{uuid.uuid4().hex[:8]}",
        ),
        timeout=10,
    )
    return created.session.id


async def test_sigkill_mid_delivery_loses_nothing_and_repeats_only_what_was_in_flight(
    outside_session: tuple[ServiceStack, Replicas],
) -> None:
    stack, replicas = outside_session
    release = asyncio.Event()

    async def stall_first_ones(n: int) -> web.StreamResponse:
        # The first deliveries hang until the process that sent them is dead.
        if n <= PER_ENDPOINT:
            await release.wait()
        return web.Response(status=200)

    receiver = await Receiver(stall_first_ones).start()
    try:
        merchant = await stack.create_merchant()
        first = await replicas.spawn("session")
        channel = grpc.aio.insecure_channel(first.addr)
        events = merchant_events_pb2_grpc.MerchantEventsServiceStub(channel)
        endpoint = await events.CreateWebhookEndpoint(
            pb.CreateWebhookEndpointRequest(
                merchant_id=merchant.id, mode=common_pb2.MODE_TEST, url=receiver.url, events=["session.paid"]
            ),
            timeout=10,
        )
        sessions = session_pb2_grpc.SessionServiceStub(channel)
        paid = [await _pay(sessions, merchant.id) for _ in range(20)]
        # Deliveries are in flight (and stalled) when the process dies.
        await eventually(lambda: _value(receiver.calls >= PER_ENDPOINT))
        first.kill()
        await channel.close()
        release.set()

        second = await replicas.spawn("session")
        async with grpc.aio.insecure_channel(second.addr) as channel2:
            events2 = merchant_events_pb2_grpc.MerchantEventsServiceStub(channel2)

            async def all_delivered() -> bool:
                ids = {d.json["data"]["object"]["id"] for d in receiver.deliveries}
                return ids >= set(paid)

            await eventually(all_delivered, timeout=60)
            for delivery in receiver.deliveries:
                Webhook(endpoint.secret).verify(delivery.body, delivery.headers)
            per_event = collections.Counter(d.headers["webhook-id"] for d in receiver.deliveries)
            assert len(per_event) == 20
            repeated = [event for event, count in per_event.items() if count > 1]
            # Only what the dead process had in flight is sent twice, never more than twice.
            assert len(repeated) <= PER_ENDPOINT and max(per_event.values()) <= 2, per_event

            # The log says delivered for every event, and the listing has all 20.
            reply = await events2.ListMerchantEvents(
                pb.ListMerchantEventsRequest(
                    merchant_id=merchant.id, mode=common_pb2.MODE_TEST, type="session.paid", limit=100
                ),
                timeout=10,
            )
            assert len(reply.events) == 20

            async def logged_delivered() -> bool:
                log = await events2.ListWebhookDeliveries(
                    pb.ListWebhookDeliveriesRequest(
                        merchant_id=merchant.id, mode=common_pb2.MODE_TEST, endpoint_id=endpoint.id, limit=100
                    ),
                    timeout=10,
                )
                return {a.event_id for a in log.attempts if a.delivered} == set(per_event)

            await eventually(logged_delivered, timeout=30)
    finally:
        await receiver.stop()


async def _value(value: object) -> object:
    return value


async def test_two_replicas_share_the_queue_once_and_the_per_endpoint_cap(
    outside_session: tuple[ServiceStack, Replicas],
) -> None:
    stack, replicas = outside_session

    async def hang(_: int) -> web.StreamResponse:
        await asyncio.sleep(30)
        return web.Response(status=200)

    fast = await Receiver().start()
    hanging = await Receiver(hang).start()
    try:
        merchant = await stack.create_merchant()
        first, second = await asyncio.gather(replicas.spawn("session"), replicas.spawn("session"))
        channels = [grpc.aio.insecure_channel(r.addr) for r in (first, second)]
        events = merchant_events_pb2_grpc.MerchantEventsServiceStub(channels[0])
        for url in (fast.url, hanging.url):
            await events.CreateWebhookEndpoint(
                pb.CreateWebhookEndpointRequest(
                    merchant_id=merchant.id, mode=common_pb2.MODE_TEST, url=url, events=["session.paid"]
                ),
                timeout=10,
            )
        stubs = [session_pb2_grpc.SessionServiceStub(c) for c in channels]
        paid = await asyncio.gather(*(_pay(stubs[i % 2], merchant.id) for i in range(30)))

        async def all_fast() -> bool:
            return {d.json["data"]["object"]["id"] for d in fast.deliveries} >= set(paid)

        await eventually(all_fast, timeout=60)
        per_event = collections.Counter(d.headers["webhook-id"] for d in fast.deliveries)
        # Both replicas delivered, and none twice: leases and SKIP LOCKED share the queue.
        assert len(per_event) == 30 and max(per_event.values()) == 1, per_event
        # The hanging endpoint (retried after each 1.5 s timeout) never had more than its cap in flight per
        # replica: each claim counts every replica's committed leases, so two claims at the same instant are
        # the only way past one cap.
        await asyncio.sleep(3.0)
        assert hanging.calls > PER_ENDPOINT, hanging.calls
        assert hanging.max_in_flight <= 2 * PER_ENDPOINT, hanging.max_in_flight
        for channel in channels:
            await channel.close()
    finally:
        await fast.stop()
        await hanging.stop()
