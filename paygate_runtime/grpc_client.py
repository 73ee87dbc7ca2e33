"""Client channels with a deadline on every call and the request id passed along."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from paygate_runtime.logs import request_id_var
from paygate_runtime.tls import TlsFiles, channel_credentials

DEFAULT_DEADLINE_S = 5.0


class DeadlineAndRequestIdInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    """No outgoing RPC may wait forever: a call without a timeout gets the channel's default deadline."""

    def __init__(self, default_deadline: float) -> None:
        self.default_deadline = default_deadline

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        timeout = client_call_details.timeout
        if timeout is None:
            timeout = self.default_deadline
        metadata = list(client_call_details.metadata or [])
        request_id = request_id_var.get()
        if request_id and not any(k == "x-request-id" for k, _ in metadata):
            metadata.append(("x-request-id", request_id))
        details = grpc.aio.ClientCallDetails(
            client_call_details.method,
            timeout,
            grpc.aio.Metadata(*metadata),
            client_call_details.credentials,
            client_call_details.wait_for_ready,
        )
        return await continuation(details, request)


def open_channel(
    target: str, *, tls: TlsFiles | None = None, default_deadline: float = DEFAULT_DEADLINE_S
) -> grpc.aio.Channel:
    interceptors = [DeadlineAndRequestIdInterceptor(default_deadline)]
    options = [
        ("grpc.enable_retries", 0),
        ("grpc.keepalive_time_ms", 30_000),
        # gRPC's default reconnect backoff grows to 120 s: after a peer's outage we would stay blind that long.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 5_000),
    ]
    if tls is not None:
        return grpc.aio.secure_channel(
            target, channel_credentials(tls), options=options, interceptors=interceptors
        )
    return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
