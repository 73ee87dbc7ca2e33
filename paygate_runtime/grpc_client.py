"""Client channels with a deadline on every call and the request id passed along."""

from __future__ import annotations

from typing import Any

import grpc

from paygate_runtime.logs import request_id_var
from paygate_runtime.tls import TlsFiles, channel_credentials

DEFAULT_DEADLINE_S = 5.0


class _DeadlineCall:
    """A unary multi-callable that fills in a deadline and the request id, then calls the real one."""

    __slots__ = ("_call", "_default_deadline")

    def __init__(self, call: grpc.aio.UnaryUnaryMultiCallable, default_deadline: float) -> None:
        self._call = call
        self._default_deadline = default_deadline

    def __call__(
        self, request: Any, *, timeout: float | None = None, metadata: Any = None, **kwargs: Any
    ) -> Any:
        request_id = request_id_var.get()
        if request_id and not any(key == "x-request-id" for key, _ in metadata or ()):
            metadata = (*(metadata or ()), ("x-request-id", request_id))
        return self._call(
            request,
            timeout=self._default_deadline if timeout is None else timeout,
            metadata=metadata,
            **kwargs,
        )


class DeadlineChannel:
    """A grpc.aio channel on which no unary call may wait forever (a call without a timeout gets the
    channel's default deadline) and every call carries the current request id.

    Done by wrapping each multi-callable once, when a stub is built, rather than by a client interceptor:
    grpc.aio runs an interceptor as an extra layer on every call, which measured about 60 us of client
    CPU per call here, a sixth of an empty call."""

    def __init__(self, channel: grpc.aio.Channel, default_deadline: float) -> None:
        self._channel = channel
        self.default_deadline = default_deadline

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> _DeadlineCall:
        return _DeadlineCall(self._channel.unary_unary(method, *args, **kwargs), self.default_deadline)

    def __getattr__(self, name: str) -> Any:
        # close(), channel_ready(), get_state(), ...: the channel's own.
        return getattr(self._channel, name)

    async def __aenter__(self) -> DeadlineChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._channel.close()


def open_channel(
    target: str, *, tls: TlsFiles | None = None, default_deadline: float = DEFAULT_DEADLINE_S
) -> DeadlineChannel:
    options = [
        ("grpc.enable_retries", 0),
        ("grpc.keepalive_time_ms", 30_000),
        # gRPC's default reconnect backoff grows to 120 s: after a peer's outage we would stay blind that long.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 5_000),
    ]
    if tls is not None:
        channel = grpc.aio.secure_channel(target, channel_credentials(tls), options=options)
    else:
        channel = grpc.aio.insecure_channel(target, options=options)
    return DeadlineChannel(channel, default_deadline)
