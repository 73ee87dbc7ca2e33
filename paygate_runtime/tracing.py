"""OpenTelemetry tracing for every service: ON only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

`setup(service)` is called once per process by `paygate serve` (paygate_runtime.serve) before anything is
assembled. When the variable is unset it returns at once: nothing of OpenTelemetry is even imported, no gRPC
interceptor is installed (grpc.aio runs an interceptor on every call, about a tenth of an empty call here, see
grpc_server.guarded_rpc), aiohttp and asyncpg are not patched, and the few manual hops below cost one read of
the module flag `ENABLED`.

When on:
- spans go over OTLP/HTTP (protobuf) to `$OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces` in batches; the standard
  `OTEL_*` variables (headers, timeouts, `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`) apply;
- W3C trace context (`traceparent`) travels in HTTP headers (aiohttp server and client instrumentations) and in
  gRPC metadata (the grpc aio instrumentation's interceptors, installed on our servers and channels only now);
- asyncpg queries become spans of the operation that runs them;
- across the asynchronous hops through the database (gateway inbox row -> relay/apply, session outbox row ->
  dispatcher -> billing/keys -> mail) the writer stores `current_traceparent()` with the row and the worker
  that processes it continues the trace with `continued(row's traceparent, name)`;
- JSON log lines carry `trace_id` and `span_id` (paygate_runtime.logs) while a span is current.

Background polling (the relay's and the dispatcher's claims, metrics sampling, health checks) would otherwise
start one single-span trace per query, every second, on every replica: a database client span without a parent
is not sampled (unless `OTEL_TRACES_SAMPLER` says otherwise).
"""

from __future__ import annotations

import contextlib
import logging
import os
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from paygate_runtime.config import Env

log = logging.getLogger(__name__)

# The one switch every hot path reads; set by setup(), cleared by shutdown().
ENABLED = False

TRACEPARENT = "traceparent"
# W3C traceparent: "00-<32 hex trace id>-<16 hex span id>-<2 hex flags>" (55 characters); the column is text
# and a longer value is never stored (a future version's header would just not be continued).
TRACEPARENT_MAX = 128
# Health checks, probes and Prometheus scrapes (the metrics port's only path; its gauges' sampling queries ran
# inside the scrape's span) are not worth a trace each. Regular expressions searched in the request's path.
_EXCLUDED_HTTP_PATHS = "healthz,readyz,^/metrics$"

_state: dict[str, Any] = {}
_NULL = contextlib.nullcontext()


def endpoint_from(env: Mapping[str, str]) -> str | None:
    value = (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip()
    if not value or (env.get("OTEL_SDK_DISABLED") or "").strip().lower() == "true":
        return None
    return value


def check_endpoint(env: Mapping[str, str]) -> None:
    """Stop start-up (ConfigError) on an endpoint that is no http(s) URL: the exporter would otherwise fail on
    every batch, quietly, and tracing would look on while nothing arrives."""
    if endpoint_from(env) is not None:
        Env(env).http_url("OTEL_EXPORTER_OTLP_ENDPOINT")


def _loggable(endpoint: str) -> str:
    """The endpoint without userinfo: a password in the collector's address never goes to the logs."""
    parts = urllib.parse.urlsplit(endpoint)
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def setup(service: str, env: Mapping[str, str] | None = None, *, exporter: Any = None) -> bool:
    """Turn tracing on for this process when the environment asks for it (or an exporter is given, for
    tests); returns whether it is on. Idempotent."""
    global ENABLED
    env = os.environ if env is None else env
    if ENABLED:
        return True
    if exporter is None and endpoint_from(env) is None:
        return False
    # The aiohttp server instrumentation reads its exclusions when imported.
    os.environ.setdefault("OTEL_PYTHON_AIOHTTP_SERVER_EXCLUDED_URLS", _EXCLUDED_HTTP_PATHS)

    from opentelemetry import trace
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # endpoint, headers and timeout from the OTEL_EXPORTER_OTLP_* variables
    attributes = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": f"paygate-{service}"}
    provider = TracerProvider(
        resource=Resource.create(attributes),
        sampler=None if env.get("OTEL_TRACES_SAMPLER") else _sampler(),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    # set_tracer_provider refuses a second provider in one process (tests turn tracing on and off); ours is
    # passed explicitly everywhere, so that never matters.
    # Any: their base class, BaseInstrumentor, sits in a module its package excludes from type checking.
    instrumentors: list[Any] = [
        AioHttpServerInstrumentor(),
        AioHttpClientInstrumentor(),
        AsyncPGInstrumentor(),
    ]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=provider)
    _state.update(
        provider=provider,
        tracer=provider.get_tracer("paygate"),
        instrumentors=instrumentors,
        service=service,
    )
    ENABLED = True
    endpoint = endpoint_from(env)
    log.info("tracing on", extra={"otlp_endpoint": _loggable(endpoint) if endpoint else "(test exporter)"})
    return True


def shutdown() -> None:
    """Flush what is buffered and undo the instrumentation (a process that ends flushes by itself too)."""
    global ENABLED
    if not ENABLED:
        return
    ENABLED = False
    for instrumentor in _state.get("instrumentors", ()):
        with contextlib.suppress(Exception):
            instrumentor.uninstrument()
    provider = _state.get("provider")
    if provider is not None:
        provider.shutdown()
    _state.clear()


def force_flush(timeout_ms: int = 5000) -> None:
    provider = _state.get("provider")
    if provider is not None:
        provider.force_flush(timeout_ms)


def _sampler() -> Any:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace.sampling import (
        ALWAYS_ON,
        Decision,
        ParentBased,
        Sampler,
        SamplingResult,
    )
    from opentelemetry.trace import Link, SpanKind
    from opentelemetry.trace.span import TraceState
    from opentelemetry.util.types import Attributes

    class _NoRootClientSpans(Sampler):
        """Root spans: sampled, except a client span (a database query, an outgoing call) that no operation
        started: background polling, which would make one trace per query."""

        def should_sample(
            self,
            parent_context: Context | None,
            trace_id: int,
            name: str,
            kind: SpanKind | None = None,
            attributes: Attributes = None,
            links: Sequence[Link] | None = None,
            trace_state: TraceState | None = None,
        ) -> SamplingResult:
            if kind == SpanKind.CLIENT:
                return SamplingResult(Decision.DROP)
            return ALWAYS_ON.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            return "NoRootClientSpans"

    return ParentBased(root=_NoRootClientSpans())


# ---------------------------------------------------------------------------------------------- gRPC
def grpc_server_interceptors() -> list[Any] | None:
    """The grpc aio instrumentation's server interceptor when tracing is on; None (no interceptor at all)
    otherwise. Health checks are left out."""
    if not ENABLED:
        return None
    from opentelemetry.instrumentation.grpc import aio_server_interceptor
    from opentelemetry.instrumentation.grpc.filters import health_check, negate

    return [aio_server_interceptor(tracer_provider=_state["provider"], filter_=negate(health_check()))]


def grpc_client_interceptors() -> list[Any] | None:
    """The instrumentation's client interceptors (they inject `traceparent` into the call's metadata) when
    tracing is on; None otherwise."""
    if not ENABLED:
        return None
    from opentelemetry.instrumentation.grpc import aio_client_interceptors
    from opentelemetry.instrumentation.grpc.filters import health_check, negate

    return list(aio_client_interceptors(tracer_provider=_state["provider"], filter_=negate(health_check())))


# ---------------------------------------------------------------------------------------------- rows
def current_traceparent() -> str | None:
    """The W3C `traceparent` of the current span, to store with a row another worker will process; None when
    tracing is off or no span is current."""
    if not ENABLED:
        return None
    from opentelemetry.propagate import inject

    carrier: dict[str, str] = {}
    inject(carrier)
    value = carrier.get(TRACEPARENT)
    return value if value and len(value) <= TRACEPARENT_MAX else None


def continued(traceparent: str | None, name: str, attributes: Mapping[str, Any] | None = None) -> Any:
    """A context manager: a span `name` whose parent is the stored `traceparent` (the operation that wrote the
    row), current while the row is processed. Without a traceparent it starts a new trace; when tracing is off
    it is a shared no-op."""
    if not ENABLED:
        return _NULL
    return _continued(traceparent, name, attributes)


@contextlib.contextmanager
def _continued(traceparent: str | None, name: str, attributes: Mapping[str, Any] | None) -> Iterator[Any]:
    from opentelemetry.propagate import extract
    from opentelemetry.trace import SpanKind

    parent = extract({TRACEPARENT: traceparent}) if traceparent else None
    with _state["tracer"].start_as_current_span(
        name, context=parent, kind=SpanKind.CONSUMER, attributes=dict(attributes or {})
    ) as span:
        yield span


def log_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) in hex of the current span, for log lines; None when off or no span is current."""
    if not ENABLED:
        return None
    from opentelemetry.trace import get_current_span

    context = get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
