"""Exactly-once fulfilment through the outbox, against the real billing and keys services.

Crashes are real: the billing service is stopped while a session becomes paid, the dispatcher is cancelled
in the middle of its IssueInvoice call, and a session-service subprocess is SIGKILLed mid-call.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from session_itest_support import STATUS, admin_val, apply, create_session, eur, eventually

from paygate.session.v1 import session_pb2
from support.stack import ServiceStack, free_port


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {
        **stack_env,
        "PAYGATE_OUTBOX_POLL_MS": "100",
        "PAYGATE_FULFILMENT_BACKOFF_BASE_MS": "50",
        "PAYGATE_FULFILMENT_BACKOFF_CAP_MS": "300",
        "PAYGATE_OUTBOX_LEASE_MS": "3000",
    }


async def _session(stack: ServiceStack, session_id: str) -> session_pb2.Session:
    return await stack.session.GetSession(session_pb2.GetSessionRequest(session_id=session_id), timeout=5)


async def _fulfilled(stack: ServiceStack, session_id: str) -> session_pb2.Session | None:
    got = await _session(stack, session_id)
    return got if got.fulfilment_status == "done" else None


async def _invoices_for(stack: ServiceStack, session_id: str) -> int:
    return await admin_val(
        stack,
        "SELECT count(*) FROM billing.invoices WHERE session_id::text = $1 AND kind = 'invoice'",
        session_id,
    )


async def _keys_for(stack: ServiceStack, session_id: str) -> int:
    return await admin_val(
        stack, "SELECT count(*) FROM keys.api_keys WHERE session_id::text = $1", session_id
    )


async def test_paid_session_is_fulfilled_once_with_ids_stored(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(
        stack, merchant.id, customer_email="buyer@example.com", description="Pro plan"
    )
    reply = await apply(stack, session.id, "succeeded", amount=eur(9999))
    # The reply comes at commit time; fulfilment follows in the dispatcher.
    assert STATUS[reply.session.status] == "paid" and reply.session.fulfilment_status == "pending"
    done = await eventually(lambda: _fulfilled(stack, session.id))
    assert done.invoice_id and done.invoice_number and done.api_key_id and done.access_token_id
    assert await _invoices_for(stack, session.id) == 1
    assert await _keys_for(stack, session.id) == 1
    status, body = await stack.request("GET", f"/v1/sessions/{session.id}", headers=merchant.headers)
    assert status == 200 and body["invoice_id"] == done.invoice_id
    assert body["access_url"] and "/access?token=" in body["access_url"]
    actions = await admin_val(
        stack,
        "SELECT array_agg(action ORDER BY id) FROM session.audit_log WHERE session_id = $1",
        uuid.UUID(session.id),
    )
    assert {"invoice_issued", "customer_key_issued", "access_token_issued", "fulfilment_done"} <= set(actions)
    # Mail is off in this stack (no PAYGATE_SMTP_HOST): the mail row is marked skipped, not retried forever.
    mail = await eventually(
        lambda: admin_val(
            stack, "SELECT status FROM session.outbox WHERE kind = 'email' AND status <> 'pending'"
        )
    )
    assert mail == "skipped"


async def test_billing_down_between_move_and_fulfilment(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant.id)
    await stack.stop_service("billing")
    reply = await apply(stack, session.id, "succeeded", amount=eur(9999))
    assert STATUS[reply.session.status] == "paid"
    await eventually(
        lambda: admin_val(stack, "SELECT attempts >= 2 FROM session.outbox WHERE kind = 'fulfil'"), timeout=10
    )
    pending = await _session(stack, session.id)
    assert STATUS[pending.status] == "paid" and pending.fulfilment_status == "pending"
    assert not pending.invoice_id
    last_error = await admin_val(stack, "SELECT last_error FROM session.outbox WHERE kind = 'fulfil'")
    assert "UNAVAILABLE" in last_error
    await stack.start_service("billing")
    done = await eventually(lambda: _fulfilled(stack, session.id), timeout=20)
    assert done.invoice_id
    assert await _invoices_for(stack, session.id) == 1
    assert await _keys_for(stack, session.id) == 1


class _SlowProxy:
    """A gRPC proxy in front of billing that forwards each call at once but holds the REPLY back: the
    invoice exists downstream while the dispatcher still waits, which is the worst moment to die."""

    def __init__(self, target: str, hold_s: float) -> None:
        self.target = target
        self.hold_s = hold_s
        self.forwarded = asyncio.Event()
        self.server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        channel = grpc.aio.insecure_channel(self.target)
        proxy = self

        class Handler(grpc.GenericRpcHandler):
            def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
                method = details.method
                call = channel.unary_unary(method)

                async def forward(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
                    reply = await call(request, timeout=10)
                    proxy.forwarded.set()
                    await asyncio.sleep(proxy.hold_s)
                    return reply

                return grpc.unary_unary_rpc_method_handler(forward)

        self.server = grpc.aio.server()
        self.server.add_generic_rpc_handlers([Handler()])
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        self._channel = channel

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(0)
        await self._channel.close()


@pytest.fixture
async def slow_billing(stack: ServiceStack) -> AsyncIterator[_SlowProxy]:
    proxy = _SlowProxy(stack.addr("billing"), hold_s=30)
    await proxy.start()
    yield proxy
    await proxy.stop()


async def test_dispatcher_cancelled_mid_call_then_restarted(
    stack: ServiceStack, slow_billing: _SlowProxy
) -> None:
    merchant = await stack.create_merchant()
    # Restart the session service with billing behind the slow proxy.
    await stack.stop_service("session")
    real_billing = stack.ports["billing"]
    stack.ports["billing"] = slow_billing.port
    await stack.start_service("session")
    stack.ports["billing"] = real_billing
    session = await create_session(stack, merchant.id)
    await apply(stack, session.id, "succeeded", amount=eur(9999))
    await asyncio.wait_for(slow_billing.forwarded.wait(), timeout=10)
    assert await _invoices_for(stack, session.id) == 1  # issued downstream, not yet recorded here
    await stack.stop_service("session")  # cancels the dispatcher inside its IssueInvoice call
    assert (await admin_val(stack, "SELECT fulfilment_status FROM session.sessions")) == "pending"
    await stack.start_service("session")  # talks to the real billing now
    done = await eventually(lambda: _fulfilled(stack, session.id), timeout=20)
    assert await _invoices_for(stack, session.id) == 1
    invoice_id = await admin_val(
        stack,
        "SELECT id::text FROM billing.invoices WHERE session_id::text = $1 AND kind = 'invoice'",
        session.id,
    )
    assert done.invoice_id == invoice_id
    assert await _keys_for(stack, session.id) == 1


@pytest.mark.slow
async def test_session_process_killed_mid_call(stack: ServiceStack, slow_billing: _SlowProxy) -> None:
    merchant = await stack.create_merchant()
    await stack.stop_service("session")
    env = {**os.environ, **stack.service_env("session")}
    port = free_port()
    env.update({"PAYGATE_GRPC_PORT": str(port), "PAYGATE_BILLING_ADDR": f"127.0.0.1:{slow_billing.port}"})
    child = subprocess.Popen(
        [sys.executable, "-m", "paygate_runtime.cli.main", "serve", "session"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        await asyncio.wait_for(channel.channel_ready(), timeout=20)
        from paygate.session.v1 import session_pb2_grpc

        remote = session_pb2_grpc.SessionServiceStub(channel)
        created = await remote.CreateSession(
            session_pb2.CreateSessionRequest(merchant_id=merchant.id, amount="99.99", mode=1), timeout=10
        )
        session_id = created.session.id
        await remote.ApplyPaymentEvent(
            session_pb2.ApplyPaymentEventRequest(
                session_id=session_id,
                provider="onecom",
                provider_event_id="evt_kill",
                kind=session_pb2.EVENT_KIND_SUCCEEDED,
                amount=eur(9999),
                provider_reference="tx_kill",
            ),
            timeout=10,
        )
        await asyncio.wait_for(slow_billing.forwarded.wait(), timeout=15)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        await channel.close()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert await _invoices_for(stack, session_id) == 1
    # The killed process held a lease; a fresh service takes the row once the lease (3 s) runs out.
    await stack.start_service("session")
    done = await eventually(lambda: _fulfilled(stack, session_id), timeout=30)
    assert await _invoices_for(stack, session_id) == 1
    assert await _keys_for(stack, session_id) == 1
    assert done.invoice_id
