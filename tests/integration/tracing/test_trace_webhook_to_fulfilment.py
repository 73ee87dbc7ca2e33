"""One trace from a Stripe webhook to the customer's mail, across four `paygate serve` processes.

The four services run as separate OS processes with OTEL_EXPORTER_OTLP_ENDPOINT pointing at an OTLP/HTTP
receiver this test runs (it decodes opentelemetry-proto ExportTraceServiceRequest messages), so the trace
context really crosses HTTP, gRPC metadata and the two database hops (gateway inbox row -> relay apply,
session outbox row -> dispatcher -> billing/keys -> mail). `paygate trace` then prints the same session's
timeline from the database.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from paygate_dev.devtools.signing import stripe_delivery
from paygate_dev.devtools.stripe_fixtures import build_stripe_event
from support.polling import eventually
from support.processes import Replicas
from support.stack import ServiceStack, free_port

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Span:
    service: str
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int


@dataclass
class OtlpReceiver:
    """A minimal OTLP/HTTP trace receiver: POST /v1/traces with a protobuf ExportTraceServiceRequest."""

    spans: list[Span] = field(default_factory=list)
    requests: int = 0
    runner: web.AppRunner | None = None
    port: int = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/traces", self._export)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _export(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        message = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        self.requests += 1
        for resource_spans in message.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            service = attributes.get("service.name", "")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        Span(
                            service,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            span.name,
                            span.kind,
                        )
                    )
        reply = trace_service_pb2.ExportTraceServiceResponse()
        return web.Response(body=reply.SerializeToString(), content_type="application/x-protobuf")

    def trace(self, trace_id: str) -> list[Span]:
        return [s for s in self.spans if s.trace_id == trace_id]


class _Sink:
    def __init__(self) -> None:
        self.recipients: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls this hook by name
        self.recipients.extend(envelope.rcpt_tos)
        return "250 OK"


@dataclass
class TracedStack:
    stack: ServiceStack
    replicas: Replicas
    receiver: OtlpReceiver
    sink: _Sink
    logs: dict[str, Path]
    metrics_ports: dict[str, int]


@pytest.fixture
async def traced(
    clean_db, stack_env, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[TracedStack]:
    receiver = OtlpReceiver()
    await receiver.start()
    sink = _Sink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    env = {
        **stack_env,
        "PAYGATE_SMTP_HOST": "127.0.0.1",
        "PAYGATE_SMTP_PORT": str(smtp_port),
        "PAYGATE_OUTBOX_POLL_MS": "50",
        "PAYGATE_WEBHOOK_RELAY_INTERVAL_MS": "50",
        # A test may add variables (indirect parametrisation).
        **getattr(request, "param", {}),
    }
    otel = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        # Export within a fraction of a second, so the test does not wait for the default 5 s batches.
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    stack = ServiceStack(clean_db, env)
    replicas = Replicas(stack, tmp_path)
    logs: dict[str, Path] = {}
    metrics_ports: dict[str, int] = {}
    try:
        # Each service starts after the peers it calls, as `paygate up` does; the stack's ports tell the next
        # one where they are.
        for service in ("keys", "billing", "session", "gateway"):
            metrics_ports[service] = free_port()
            process = await replicas.spawn(
                service,
                {**otel, "PAYGATE_LOG_LEVEL": "DEBUG", "PAYGATE_METRICS_PORT": str(metrics_ports[service])},
            )
            stack.ports[service] = process.port
            logs[service] = process.log
        yield TracedStack(stack, replicas, receiver, sink, logs, metrics_ports)
    finally:
        replicas.stop_all()
        await stack.stop()
        controller.stop()
        await receiver.stop()


async def _paid_session(
    traced: TracedStack, merchant_id: str | None = None, email: str = "buyer@example.com"
) -> tuple[str, str]:
    """Create a session, deliver its Stripe payment to the gateway; returns (session id, event id)."""
    stack = traced.stack
    if merchant_id is None:
        merchant_id = (await stack.create_merchant()).id
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
    session_id = reply.session.id
    event = build_stripe_event("payment_intent.succeeded", session_id, 1200, "EUR")
    raw, headers = stripe_delivery(event, stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"], int(time.time()))
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{stack.ports['gateway']}/webhooks/stripe"
        async with http.post(url, data=raw, headers=headers) as response:
            assert response.status == 200, await response.text()
    return session_id, event["id"]


async def test_one_trace_covers_webhook_relay_session_outbox_billing_keys_and_mail(
    traced: TracedStack,
) -> None:
    session_id, event_id = await _paid_session(traced)
    await eventually(
        lambda: _async(traced.sink.recipients == ["buyer@example.com"]), timeout=60, interval=0.1, what="mail"
    )

    conn = await traced.stack.db.admin()
    try:
        inbox_traceparent = await conn.fetchval(
            "SELECT traceparent FROM gateway.inbox_events WHERE event_id = $1", event_id
        )
        outbox = {
            r["kind"]: r["traceparent"]
            for r in await conn.fetch(
                "SELECT kind, traceparent FROM session.outbox WHERE session_id = $1", session_id
            )
        }
    finally:
        await conn.close()
    # The trace context was stored with each row of the two asynchronous hops.
    assert inbox_traceparent and inbox_traceparent.startswith("00-")
    trace_id = inbox_traceparent.split("-")[1]
    assert set(outbox) == {"fulfil", "email"}
    assert all(value and value.split("-")[1] == trace_id for value in outbox.values()), outbox

    wanted_names = {"paygate.inbox.apply", "paygate.outbox.fulfil", "paygate.outbox.email"}
    wanted_services = {"paygate-gateway", "paygate-session", "paygate-billing", "paygate-keys"}

    async def complete() -> bool:
        spans = traced.receiver.trace(trace_id)
        return wanted_names <= {s.name for s in spans} and wanted_services <= {s.service for s in spans}

    await eventually(complete, timeout=30, interval=0.2, what="the whole trace at the receiver")
    await asyncio.sleep(1.0)  # spans of calls still finishing (the mail's) arrive in the next batch
    spans = traced.receiver.trace(trace_id)
    by_id = {s.span_id: s for s in spans}

    # Parent links are intact: exactly one root (the gateway's webhook request), every other span's parent
    # was exported in the same trace.
    roots = [s for s in spans if not s.parent_id]
    assert len(roots) == 1, roots
    assert roots[0].service == "paygate-gateway" and "/webhooks/stripe" in roots[0].name, roots[0]
    orphans = [s for s in spans if s.parent_id and s.parent_id not in by_id]
    assert not orphans, orphans

    def ancestors(span: Span) -> list[Span]:
        chain = []
        while span.parent_id:
            span = by_id[span.parent_id]
            chain.append(span)
        return chain

    def only(name: str) -> Span:
        found = [s for s in spans if s.name == name]
        assert len(found) == 1, (name, found)
        return found[0]

    # inbox row -> relay apply: the apply's parent is the webhook request's span, in the gateway.
    apply = only("paygate.inbox.apply")
    assert apply.service == "paygate-gateway" and by_id[apply.parent_id] == roots[0]
    # ... its ApplyPaymentEvent call reaches the session service as a child of the apply.
    session_apply = [
        s for s in spans if s.service == "paygate-session" and s.name.endswith("/ApplyPaymentEvent")
    ]
    assert session_apply and apply in ancestors(session_apply[0])
    # outbox row -> dispatcher: fulfil continues the trace of the session service's ApplyPaymentEvent.
    fulfil = only("paygate.outbox.fulfil")
    assert fulfil.service == "paygate-session" and session_apply[0] in ancestors(fulfil)
    # -> billing and keys: their server spans descend from the fulfilment (one batched call each, issue 16).
    for service, method in (
        ("paygate-billing", "/IssueInvoices"),
        ("paygate-keys", "/IssueCustomerAccess"),
    ):
        served = [s for s in spans if s.service == service and s.name.endswith(method)]
        assert served, (service, method, sorted({(s.service, s.name) for s in spans}))
        assert fulfil in ancestors(served[0])
    # -> mail: the email row continues the fulfilment's trace.
    email = only("paygate.outbox.email")
    assert fulfil in ancestors(email)
    # The mail's link came with the fulfilment's IssueCustomerAccess reply: no GetAccessLink of its own.
    assert not [s for s in spans if s.service == "paygate-keys" and s.name.endswith("/GetAccessLink")]
    # Database queries are spans of the operations that ran them (asyncpg instrumentation).
    assert any(s.service == "paygate-session" and fulfil in ancestors(s) and s.kind == 3 for s in spans)

    # Log lines written inside a span carry its trace id.
    traced_lines = [
        json.loads(line)
        for path in traced.logs.values()
        for line in path.read_text().splitlines()
        if line.startswith("{") and f'"trace_id": "{trace_id}"' in line
    ]
    assert traced_lines, "no log line carried the trace id"
    assert all(len(line["span_id"]) == 16 for line in traced_lines)

    # The dashboard's payments-per-second and paid-to-fulfilled panels read this histogram.
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{traced.metrics_ports['session']}/metrics"
        async with http.get(url) as response:
            metrics_text = await response.text()
    assert 'paygate_fulfilment_seconds_count{mode="test",provider="stripe"} 1.0' in metrics_text

    # `paygate trace` prints the same session's timeline from the database, with the stored trace id.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "paygate_runtime.cli.main",
        "trace",
        session_id,
        "--database-url",
        traced.stack.db.admin_dsn,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    for expected in (
        "session created",
        "stripe event received",
        "event applied",
        "status created -> paid",
        "outbox fulfil done",
        "invoice issued",
        "customer_key_issued",
        "access_token_issued",
        "outbox email done",
        "email_sent",
        f"[trace {trace_id}]",
    ):
        assert expected in text, (expected, text)
    missing = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "paygate_runtime.cli.main",
        "trace",
        "7d8e1f7c-0000-4000-8000-000000000000",
        "--database-url",
        traced.stack.db.admin_dsn,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, missing_err = await asyncio.wait_for(missing.communicate(), timeout=60)
    assert missing.returncode == 1 and b"no session" in missing_err
    stamps = [line.split()[0] for line in text.splitlines()]
    assert stamps == sorted(stamps), "the timeline is in time order"
    print(text)


@pytest.mark.parametrize("traced", [{"PAYGATE_WEBHOOK_BUSY_IN_FLIGHT": "0"}], indirect=True)
async def test_events_applied_in_one_batched_call_each_keep_their_own_trace(traced: TracedStack) -> None:
    """Every webhook counts as a burst here, so the relay applies them, several per ApplyPaymentEvents call
    (one call's metadata carries one trace): each event's session-side apply, and the fulfilment behind it,
    must still be in that event's own trace, below its own `paygate.inbox.apply`."""
    merchant_id = (await traced.stack.create_merchant()).id
    paid = await asyncio.gather(
        *(_paid_session(traced, merchant_id, f"buyer-{n}@example.com") for n in range(6))
    )
    await eventually(
        lambda: _async(len(traced.sink.recipients) == 6), timeout=60, interval=0.1, what="six mails"
    )
    conn = await traced.stack.db.admin()
    try:
        trace_ids = {
            row["event_id"]: row["traceparent"].split("-")[1]
            for row in await conn.fetch("SELECT event_id, traceparent FROM gateway.inbox_events")
        }
    finally:
        await conn.close()
    assert len(set(trace_ids.values())) == 6

    def complete(trace_id: str) -> bool:
        names = {s.name for s in traced.receiver.trace(trace_id)}
        return {"paygate.inbox.apply", "paygate.outbox.fulfil"} <= names

    await eventually(
        lambda: _async(all(complete(t) for t in trace_ids.values())), timeout=30, interval=0.2, what="traces"
    )
    batched = 0
    for _, event_id in paid:
        spans = traced.receiver.trace(trace_ids[event_id])
        by_id = {s.span_id: s for s in spans}

        def ancestors(span: Span, by_id: dict[str, Span] = by_id) -> list[Span]:
            chain = []
            while span.parent_id in by_id:
                span = by_id[span.parent_id]
                chain.append(span)
            return chain

        (apply,) = [s for s in spans if s.name == "paygate.inbox.apply"]
        # The session service's apply of this event: the batched item's span, or the single call's.
        session_apply = [
            s
            for s in spans
            if s.service == "paygate-session"
            and (s.name == "paygate.session.apply_event" or s.name.endswith("/ApplyPaymentEvent"))
        ]
        assert len(session_apply) == 1, sorted((s.service, s.name) for s in spans)
        assert apply in ancestors(session_apply[0])
        batched += session_apply[0].name == "paygate.session.apply_event"
        (fulfil,) = [s for s in spans if s.name == "paygate.outbox.fulfil"]
        assert session_apply[0] in ancestors(fulfil)
    # The relay claims 4 at a time during a burst: at least one claim went as a batch.
    assert batched >= 2


async def _async(value: object) -> object:
    return value
