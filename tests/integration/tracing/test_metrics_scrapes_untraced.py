"""With tracing on, a Prometheus scrape is not a trace. The metrics port answers every scrape of every replica
(every 15-30 s, for ever) and the session and gateway sample their gauges from the database inside it: traced,
each scrape exported a server span and a span per sampling query, a steady stream of traces about nothing,
although paygate_runtime.tracing means metrics sampling and health checks to stay out of traces. A real RPC
of the same process is still traced (the control)."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from paygate.billing.v1 import billing_pb2
from support.polling import eventually
from support.processes import Replicas
from support.stack import ServiceStack, free_port

pytestmark = pytest.mark.slow


class SpanNames:
    """A minimal OTLP/HTTP receiver that keeps the names of the spans it is sent."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/traces", self._export)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _export(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        message = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        for resource_spans in message.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                self.names.extend(span.name for span in scope_spans.spans)
        reply = trace_service_pb2.ExportTraceServiceResponse()
        return web.Response(body=reply.SerializeToString(), content_type="application/x-protobuf")


@pytest.fixture
async def receiver_names() -> AsyncIterator[SpanNames]:
    names = SpanNames()
    await names.start()
    try:
        yield names
    finally:
        await names.stop()


async def test_a_metrics_scrape_exports_no_span_but_an_rpc_does(
    clean_db, stack_env, tmp_path: Path, receiver_names: SpanNames
) -> None:
    stack = ServiceStack(clean_db, stack_env)
    replicas = Replicas(stack, tmp_path)
    metrics_port = free_port()
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver_names.port}",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "PAYGATE_METRICS_PORT": str(metrics_port),
    }
    try:
        process = await replicas.spawn("billing", env)
        stack.ports["billing"] = process.port
        async with aiohttp.ClientSession() as http:
            for _ in range(3):
                async with http.get(f"http://127.0.0.1:{metrics_port}/metrics") as response:
                    assert response.status == 200
        # The control: an RPC after the scrapes; once its span is here, the scrapes' would be too.
        await stack.billing.GetBillingProfile(
            billing_pb2.GetBillingProfileRequest(merchant_id="00000000-0000-4000-8000-000000000001"),
            timeout=10,
        )

        async def rpc_exported() -> bool:
            return any("GetBillingProfile" in name for name in receiver_names.names)

        await eventually(rpc_exported, timeout=30, interval=0.1, what="the RPC's span")
        await asyncio.sleep(0.5)
        assert not [name for name in receiver_names.names if "metrics" in name], receiver_names.names
    finally:
        replicas.stop_all()
        await stack.stop()
