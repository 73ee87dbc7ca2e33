"""Client channels with a deadline on every call and the request id passed along, which pick up rotated client
certificates without a restart."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc

from paygate_runtime import tracing
from paygate_runtime.config import ConfigError
from paygate_runtime.logs import request_id_var
from paygate_runtime.tls import TlsFiles, channel_credentials, check_pem

log = logging.getLogger(__name__)

DEFAULT_DEADLINE_S = 5.0
# How often a TLS channel looks (one stat per file) whether its certificate files changed. cert-manager renews
# well before expiry, so a few seconds' delay costs nothing, and the check stays off the per-call path.
TLS_CHECK_INTERVAL_S = 10.0
# How long a channel replaced after a rotation keeps running for the calls already on it (then it is closed).
RETIRE_GRACE_S = 60.0


class _DeadlineCall:
    """A unary multi-callable that fills in a deadline and the request id, then calls the real one: the one of
    the owner's current channel (after a certificate rotation, a new channel's)."""

    __slots__ = ("_args", "_call", "_default_deadline", "_generation", "_kwargs", "_method", "_owner")

    def __init__(self, owner: DeadlineChannel, method: str, args: Any, kwargs: Any) -> None:
        self._owner = owner
        self._method = method
        self._args = args
        self._kwargs = kwargs
        self._default_deadline = owner.default_deadline
        self._generation = owner.generation
        self._call = owner.current.unary_unary(method, *args, **kwargs)

    def __call__(
        self, request: Any, *, timeout: float | None = None, metadata: Any = None, **kwargs: Any
    ) -> Any:
        owner = self._owner
        if owner.tls_check_due():
            owner.check_rotation()
        if self._generation != owner.generation:
            self._generation = owner.generation
            self._call = owner.current.unary_unary(self._method, *self._args, **self._kwargs)
        request_id = request_id_var.get()
        if request_id and not any(key == "x-request-id" for key, _ in metadata or ()):
            metadata = (*(metadata or ()), ("x-request-id", request_id))
        return self._call(
            request,
            timeout=self._default_deadline if timeout is None else timeout,
            metadata=metadata,
            **kwargs,
        )


class _RebindingCall:
    """A streaming multi-callable (no deadline default: a stream may run as long as it likes) that follows the
    owner's channel across certificate rotations."""

    __slots__ = ("_args", "_call", "_generation", "_kind", "_kwargs", "_method", "_owner")

    def __init__(self, owner: DeadlineChannel, kind: str, method: str, args: Any, kwargs: Any) -> None:
        self._owner = owner
        self._kind = kind
        self._method = method
        self._args = args
        self._kwargs = kwargs
        self._generation = owner.generation
        self._call = getattr(owner.current, kind)(method, *args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        owner = self._owner
        if owner.tls_check_due():
            owner.check_rotation()
        if self._generation != owner.generation:
            self._generation = owner.generation
            self._call = getattr(owner.current, self._kind)(self._method, *self._args, **self._kwargs)
        return self._call(*args, **kwargs)


class DeadlineChannel:
    """A grpc.aio channel on which no unary call may wait forever (a call without a timeout gets the
    channel's default deadline) and every call carries the current request id.

    Done by wrapping each multi-callable once, when a stub is built, rather than by a client interceptor:
    grpc.aio runs an interceptor as an extra layer on every call, which measured about 60 us of client
    CPU per call here, a sixth of an empty call.

    Certificate rotation: grpc-python's channel credentials are fixed for the channel's life (there is no
    client-side certificate fetcher). So a TLS channel stats its three files at most once per
    `tls_check_interval_s`, on a call; when they changed and hold a valid certificate and key, it opens a new
    channel with them and swaps it in (one assignment, on the event loop: a call uses either the old channel
    or the new one, never a mix). Calls already running on the old channel finish there; it is closed with
    RETIRE_GRACE_S of grace. Files that do not parse (a rotation caught half-written) leave the current
    channel in place, and the next check tries again."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        default_deadline: float,
        *,
        tls: TlsFiles | None = None,
        reopen: Callable[[grpc.ChannelCredentials], grpc.aio.Channel] | None = None,
        tls_check_interval_s: float = TLS_CHECK_INTERVAL_S,
        target: str = "",
        fingerprint: object = None,
    ) -> None:
        self._channel = channel
        self.default_deadline = default_deadline
        # Bumped on every swap; the wrapped multi-callables compare it to know when to rebind.
        self.generation = 0
        self._tls = tls if reopen is not None else None
        self._reopen = reopen
        self._target = target
        self._interval = tls_check_interval_s
        self._next_check = time.monotonic() + tls_check_interval_s
        # The files' state when `channel`'s credentials were read (taken before reading them: a change in
        # between is then seen by the first check instead of being missed).
        self._fingerprint = fingerprint
        self._refused: object = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._old: list[grpc.aio.Channel] = []

    @property
    def current(self) -> grpc.aio.Channel:
        return self._channel

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> _DeadlineCall:
        return _DeadlineCall(self, method, args, kwargs)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> _RebindingCall:
        return _RebindingCall(self, "unary_stream", method, args, kwargs)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> _RebindingCall:
        return _RebindingCall(self, "stream_unary", method, args, kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> _RebindingCall:
        return _RebindingCall(self, "stream_stream", method, args, kwargs)

    def tls_check_due(self) -> bool:
        return self._tls is not None and time.monotonic() >= self._next_check

    def check_rotation(self) -> bool:
        """Swap in a new channel if the certificate files changed and hold a usable certificate; True if it
        did. Called by the wrapped calls when a check is due; cheap when nothing changed (three stats)."""
        if self._tls is None or self._reopen is None:
            return False
        self._next_check = time.monotonic() + self._interval
        try:
            fingerprint = self._tls.fingerprint()
            if fingerprint == self._fingerprint:
                return False
            check_pem(self._tls)
            credentials = channel_credentials(self._tls)
        except (OSError, ConfigError) as error:
            # Mid-rotation or broken files: keep the working channel. Logged once per state of the files;
            # the message names the variable, never the files' contents.
            state = str(error)
            if state != self._refused:
                self._refused = state
                log.warning(
                    "client certificate files changed but are not usable yet (%s); keeping the old", state
                )
            return False
        old = self._channel
        self._channel = self._reopen(credentials)
        self._fingerprint = fingerprint
        self._refused = None
        self.generation += 1
        self._retire(old)
        log.info("client certificate files changed: new calls to %s use a new channel", self._target)
        return True

    def _retire(self, old: grpc.aio.Channel) -> None:
        self._old.append(old)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): close() closes it
            return

        async def close_later() -> None:
            await old.close(grace=RETIRE_GRACE_S)
            if old in self._old:
                self._old.remove(old)

        task = loop.create_task(close_later())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def close(self, grace: float | None = None) -> None:
        for task in list(self._retiring):
            task.cancel()  # the channels they wait on are closed right here
        for old in list(self._old):
            await old.close(grace)
        self._old.clear()
        await self._channel.close(grace)

    def __getattr__(self, name: str) -> Any:
        # channel_ready(), get_state(), ...: the current channel's own.
        return getattr(self._channel, name)

    async def __aenter__(self) -> DeadlineChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def channel_options(target: str) -> list[tuple[str, Any]]:
    """The options of every client channel to `target`."""
    options: list[tuple[str, Any]] = [
        ("grpc.enable_retries", 0),
        ("grpc.keepalive_time_ms", 30_000),
        # gRPC's default reconnect backoff grows to 120 s: after a peer's outage we would stay blind that long.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 5_000),
    ]
    if target.startswith("dns:"):
        # Spread calls over every address the name resolves to (a Kubernetes headless Service,
        # dns:///paygate-session-headless:50051), not only the first one. Only for such targets: with a single
        # address, round_robin fails calls at once while its one subchannel reconnects after a peer restart,
        # where pick_first (the default) connects on the next call and lets it wait for that connection.
        options.append(("grpc.lb_policy_name", "round_robin"))
    return options


def open_channel(
    target: str,
    *,
    tls: TlsFiles | None = None,
    default_deadline: float = DEFAULT_DEADLINE_S,
    tls_check_interval_s: float = TLS_CHECK_INTERVAL_S,
) -> DeadlineChannel:
    options = channel_options(target)
    # None unless tracing is on: then the OpenTelemetry client interceptors, which put `traceparent` into
    # each call's metadata (their per-call cost is paid only while tracing).
    interceptors = tracing.grpc_client_interceptors()
    if tls is None:
        channel = grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
        return DeadlineChannel(channel, default_deadline)

    def reopen(credentials: grpc.ChannelCredentials) -> grpc.aio.Channel:
        return grpc.aio.secure_channel(target, credentials, options=options, interceptors=interceptors)

    fingerprint = tls.fingerprint()
    return DeadlineChannel(
        reopen(channel_credentials(tls)),
        default_deadline,
        tls=tls,
        reopen=reopen,
        tls_check_interval_s=tls_check_interval_s,
        target=target,
        fingerprint=fingerprint,
    )
