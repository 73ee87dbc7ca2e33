"""Tracing (paygate_runtime.tracing): off it installs nothing and costs nothing measurable; on, the W3C trace
context crosses a real gRPC call and the database hops, and log lines carry the trace and span ids."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import grpc
import pytest
from aiohttp import web
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from paygate.session.v1 import session_pb2, session_pb2_grpc
from paygate_runtime import tracing
from paygate_runtime.errors import NotFound
from paygate_runtime.grpc_client import open_channel
from paygate_runtime.grpc_errors import error_code
from paygate_runtime.grpc_server import GrpcServiceSpec, start_grpc_server
from paygate_runtime.logs import JsonFormatter

SESSION_ID = "5f0c5a52-7c5e-4a32-9d8e-0a1f0e9b2a11"
SERVICE = "paygate.session.v1.SessionService"


class _Sessions(session_pb2_grpc.SessionServiceServicer):
    """GetSession only: the smallest real RPC, through the same wrapper (guarded_rpc) as every service."""

    def __init__(self) -> None:
        self.log_lines: list[dict[str, Any]] = []
        self.formatter = JsonFormatter("session")

    async def GetSession(self, request: Any, context: Any) -> Any:
        if request.session_id == "missing":
            raise NotFound("session_not_found", "no such session")
        record = logging.LogRecord("test", logging.INFO, __file__, 1, "serving", (), None)
        self.log_lines.append(json.loads(self.formatter.format(record)))
        return session_pb2.Session(id=request.session_id, merchant_id="m")


def _spec(servicer: _Sessions) -> GrpcServiceSpec:
    return GrpcServiceSpec(
        name="session", servicers=[(session_pb2_grpc.add_SessionServiceServicer_to_server, servicer, SERVICE)]
    )


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    assert tracing.setup("test", {}, exporter=spans)
    try:
        yield spans
    finally:
        tracing.shutdown()
    assert not tracing.ENABLED


def _finished(spans: InMemorySpanExporter) -> list[Any]:
    tracing.force_flush()
    return list(spans.get_finished_spans())


# ---------------------------------------------------------------------------------------------- off
def test_off_without_the_endpoint() -> None:
    assert not tracing.setup("session", {})
    assert not tracing.setup("session", {"OTEL_EXPORTER_OTLP_ENDPOINT": "  "})
    assert not tracing.setup(
        "session", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}
    )
    assert not tracing.ENABLED
    assert tracing.grpc_server_interceptors() is None
    assert tracing.grpc_client_interceptors() is None
    assert tracing.current_traceparent() is None
    assert tracing.log_ids() is None
    # The manual hops get one shared no-op context manager: no allocation per row.
    assert tracing.continued("00-" + "a" * 32 + "-" + "b" * 16 + "-01", "x") is tracing.continued(None, "y")


async def test_off_installs_no_interceptor_and_patches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[dict[str, Any]] = []
    real_server = grpc.aio.server

    def recording_server(*args: Any, **kwargs: Any) -> Any:
        created.append(kwargs)
        return real_server(*args, **kwargs)

    monkeypatch.setattr(grpc.aio, "server", recording_server)
    application_class, execute = web.Application, asyncpg.Connection.execute
    running = await start_grpc_server(_spec(_Sessions()), run_background=False)
    channel = open_channel(f"127.0.0.1:{running.port}")
    try:
        assert created[0].get("interceptors") is None
        # grpc.aio keeps the client interceptors on the channel; with none, no interceptor layer per call.
        assert not getattr(channel._channel, "_unary_unary_interceptors", None)
        reply = await session_pb2_grpc.SessionServiceStub(channel).GetSession(
            session_pb2.GetSessionRequest(session_id=SESSION_ID)
        )
        assert reply.id == SESSION_ID
    finally:
        await channel.close()
        await running.stop(0)
    # Neither aiohttp nor asyncpg was instrumented.
    assert web.Application is application_class
    assert asyncpg.Connection.execute is execute


def test_off_does_not_even_import_opentelemetry() -> None:
    code = (
        "import sys, paygate_runtime.serve, paygate_runtime.grpc_client, webhook_gateway.entrypoints.main, "
        "session_service.entrypoints.main, billing_service.entrypoints.main, keys_service.entrypoints.main\n"
        "from paygate_runtime import tracing\n"
        "assert not tracing.setup('session', {})\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_off_log_lines_have_no_trace_fields() -> None:
    record = logging.LogRecord("test", logging.INFO, __file__, 1, "hello", (), None)
    entry = json.loads(JsonFormatter("session").format(record))
    assert "trace_id" not in entry and "span_id" not in entry


def test_off_costs_well_under_a_microsecond_per_hop() -> None:
    """What tracing off adds to the hot paths: a flag read per log line and per processed row, and a call of
    current_traceparent() per stored row. Best of several rounds (the machine is shared)."""
    calls = 200_000
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            tracing.current_traceparent()
        rounds.append((time.perf_counter() - started) / calls)
    per_call_ns = min(rounds) * 1e9
    print(f"tracing off: current_traceparent() {per_call_ns:.0f} ns per call")
    assert per_call_ns < 1000


# ---------------------------------------------------------------------------------------------- on
async def test_on_the_trace_crosses_a_grpc_call_and_logs_carry_its_ids(
    exporter: InMemorySpanExporter,
) -> None:
    servicer = _Sessions()
    running = await start_grpc_server(_spec(servicer), run_background=False)
    channel = open_channel(f"127.0.0.1:{running.port}")
    try:
        with tracing.continued(None, "caller") as caller:
            await session_pb2_grpc.SessionServiceStub(channel).GetSession(
                session_pb2.GetSessionRequest(session_id=SESSION_ID)
            )
    finally:
        await channel.close()
        await running.stop(0)
    spans = _finished(exporter)
    trace_id = caller.get_span_context().trace_id
    by_kind = {span.kind.name: span for span in spans if span.context.trace_id == trace_id}
    client, server = by_kind["CLIENT"], by_kind["SERVER"]
    assert client.parent.span_id == caller.get_span_context().span_id
    assert server.parent.span_id == client.context.span_id
    assert server.name == f"/{SERVICE}/GetSession"
    # The handler's log line names the server span.
    (line,) = servicer.log_lines
    assert line["trace_id"] == format(trace_id, "032x")
    assert line["span_id"] == format(server.context.span_id, "016x")


async def test_on_domain_errors_keep_their_status_and_stable_code(exporter: InMemorySpanExporter) -> None:
    """The instrumentation wraps the servicer context; guarded_rpc's abort with trailing metadata still works."""
    running = await start_grpc_server(_spec(_Sessions()), run_background=False)
    channel = open_channel(f"127.0.0.1:{running.port}")
    try:
        with tracing.continued(None, "caller"), pytest.raises(grpc.aio.AioRpcError) as raised:
            await session_pb2_grpc.SessionServiceStub(channel).GetSession(
                session_pb2.GetSessionRequest(session_id="missing")
            )
    finally:
        await channel.close()
        await running.stop(0)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_code(raised.value) == "session_not_found"
    server = next(span for span in _finished(exporter) if span.kind.name == "SERVER")
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]


def test_on_a_stored_traceparent_is_continued_as_parent(exporter: InMemorySpanExporter) -> None:
    with tracing.continued(None, "webhook") as request_span:
        stored = tracing.current_traceparent()
    assert stored is not None and stored.startswith("00-")
    # Later, in another task or process: the row's worker continues that trace.
    with tracing.continued(stored, "paygate.inbox.apply", {"paygate.provider": "stripe"}):
        assert tracing.log_ids() is not None
    spans = {span.name: span for span in _finished(exporter)}
    apply = spans["paygate.inbox.apply"]
    assert apply.context.trace_id == request_span.get_span_context().trace_id
    assert apply.parent.span_id == request_span.get_span_context().span_id
    assert apply.parent.is_remote
    assert apply.attributes["paygate.provider"] == "stripe"


def test_on_background_database_polls_start_no_trace(exporter: InMemorySpanExporter) -> None:
    """A client span (an asyncpg query, an outgoing call) with no operation around it is not sampled: the
    relay's and the dispatcher's polls would make one trace per query."""
    from opentelemetry import trace

    tracer = tracing._state["provider"].get_tracer("test")
    with tracer.start_as_current_span("SELECT", kind=trace.SpanKind.CLIENT) as poll:
        assert not poll.is_recording()
    with (
        tracing.continued(None, "paygate.outbox.fulfil"),
        tracer.start_as_current_span("SELECT", kind=trace.SpanKind.CLIENT) as query,
    ):
        assert query.is_recording()


async def test_tracing_on_cost_of_a_grpc_call(exporter: InMemorySpanExporter) -> None:
    """Reported, not judged: client plus server CPU of one small RPC in this process, with the tracing
    interceptors (on) against the same call on a server and channel built before tracing was on (off)."""
    results = {}
    for label in ("off", "on"):
        if label == "off":
            tracing.ENABLED = False  # build the plain server and channel as tracing-off processes do
        try:
            running = await start_grpc_server(_spec(_Sessions()), run_background=False)
            channel = open_channel(f"127.0.0.1:{running.port}")
        finally:
            tracing.ENABLED = True
        stub = session_pb2_grpc.SessionServiceStub(channel)
        request = session_pb2.GetSessionRequest(session_id=SESSION_ID)
        try:
            for _ in range(200):
                await stub.GetSession(request)
            best = float("inf")
            for _ in range(3):
                started = time.process_time()
                for _ in range(500):
                    await stub.GetSession(request)
                best = min(best, (time.process_time() - started) / 500)
            results[label] = best * 1e6
        finally:
            await channel.close()
            await running.stop(0)
        exporter.clear()
    print(
        f"small RPC, client+server CPU in one process: tracing off {results['off']:.0f} us, "
        f"on {results['on']:.0f} us (+{results['on'] - results['off']:.0f} us)"
    )


# ---------------------------------------------------------------------------------------------- CLI
def test_paygate_up_otel_passes_the_endpoint_to_every_service(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    from paygate_dev import up
    from paygate_runtime.cli.main import build_parser
    from paygate_runtime.stack import load_or_create_dev_secrets

    # setenv first so that monkeypatch restores the variable's absence: up.run sets it for its children.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    args = build_parser("up").parse_args(["up", "--home", str(tmp_path), "--otel", "http://127.0.0.1:4318"])
    plans = []

    def fake_run(coroutine: Any) -> int:
        coroutine.close()
        return 0

    monkeypatch.setattr(up, "_run", lambda plan: plans.append(plan) or _Closable())
    monkeypatch.setattr(up.asyncio, "run", fake_run)
    assert up.run(args) == 0
    (plan,) = plans
    plan.admin_dsn, plan.database = "postgresql://postgres@127.0.0.1:5/x", "x"
    # Every secret up hands its services, made as up makes them.
    plan.secrets = load_or_create_dev_secrets(tmp_path)
    for service in up.START_ORDER:
        assert up.service_env(plan, service)["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4318"
    monkeypatch.undo()
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in os.environ


class _Closable:
    def close(self) -> None:
        pass


def test_trace_cli_formats_entries_with_their_trace_id() -> None:
    from datetime import UTC, datetime

    from paygate_runtime.cli.trace_cmd import Entry, format_entry, trace_id_of

    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert trace_id_of(traceparent) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id_of(None) == trace_id_of("garbage") == ""
    at = datetime(2026, 12, 5, 18, 0, 1, 234_000, tzinfo=UTC)
    line = format_entry(Entry(at, "gateway", "stripe event received", "evt_1", trace_id_of(traceparent)))
    assert line == (
        "2026-12-05T18:00:01.234Z  gateway  stripe event received  evt_1  [trace 4bf92f3577b34da6a3ce929d0e0e4736]"
    )
