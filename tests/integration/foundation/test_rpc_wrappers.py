"""The shared RPC plumbing over a real grpc.aio server and channel: server handlers carry the caller's request
id and map errors to codes; client channels give every call a deadline and pass the request id on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from paygate.keys.v1 import keys_pb2, keys_pb2_grpc
from paygate_runtime.errors import FailedPrecondition
from paygate_runtime.grpc_client import open_channel
from paygate_runtime.grpc_errors import error_code
from paygate_runtime.grpc_server import GrpcServiceSpec, RunningGrpcServer, start_grpc_server
from paygate_runtime.logs import request_id_var


class _EchoKeys(keys_pb2_grpc.KeysServiceServicer):
    """Answers VerifyAccessToken with what the server side saw: the request id and the time left."""

    async def VerifyAccessToken(
        self, request: keys_pb2.VerifyAccessTokenRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.AccessTokenClaims:
        if request.token == "refuse":
            raise FailedPrecondition("token_refused", "refused on purpose")
        if request.token == "crash":
            raise RuntimeError("a secret that must not reach the caller")
        remaining = context.time_remaining()
        return keys_pb2.AccessTokenClaims(
            jti=request_id_var.get(), subject="none" if remaining is None else f"{remaining:.3f}"
        )


@pytest.fixture
async def echo_server() -> AsyncIterator[RunningGrpcServer]:
    spec = GrpcServiceSpec(
        name="echo",
        servicers=[
            (keys_pb2_grpc.add_KeysServiceServicer_to_server, _EchoKeys(), "paygate.keys.v1.KeysService")
        ],
    )
    running = await start_grpc_server(spec, port=0)
    try:
        yield running
    finally:
        await running.stop(grace=1)


async def test_request_id_and_default_deadline_reach_the_server(echo_server: RunningGrpcServer) -> None:
    async with open_channel(f"127.0.0.1:{echo_server.port}", default_deadline=2.0) as channel:
        stub = keys_pb2_grpc.KeysServiceStub(channel)
        token = request_id_var.set("req-1234")
        try:
            reply = await stub.VerifyAccessToken(keys_pb2.VerifyAccessTokenRequest(token="x"))
        finally:
            request_id_var.reset(token)
        assert reply.jti == "req-1234"
        assert 0 < float(reply.subject) <= 2.1  # no timeout given: the channel's default applied
        # An explicit timeout wins, and a caller's own x-request-id is not replaced.
        reply = await stub.VerifyAccessToken(
            keys_pb2.VerifyAccessTokenRequest(token="x"), timeout=30, metadata=(("x-request-id", "mine"),)
        )
        assert reply.jti == "mine" and 2.0 < float(reply.subject) <= 31
        # Without any request id the server makes one up for its logs.
        reply = await stub.VerifyAccessToken(keys_pb2.VerifyAccessTokenRequest(token="x"))
        assert len(reply.jti) == 32


async def test_domain_errors_become_codes_and_crashes_say_nothing(echo_server: RunningGrpcServer) -> None:
    async with open_channel(f"127.0.0.1:{echo_server.port}") as channel:
        stub = keys_pb2_grpc.KeysServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.VerifyAccessToken(keys_pb2.VerifyAccessTokenRequest(token="refuse"))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_code(refused.value) == "token_refused"
        with pytest.raises(grpc.aio.AioRpcError) as crashed:
            await stub.VerifyAccessToken(keys_pb2.VerifyAccessTokenRequest(token="crash"))
        assert crashed.value.code() == grpc.StatusCode.INTERNAL
        assert "secret" not in (crashed.value.details() or "")
        # A method the servicer does not implement is still UNIMPLEMENTED, not INTERNAL.
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetJwks(keys_pb2.GetJwksRequest())
        assert missing.value.code() == grpc.StatusCode.UNIMPLEMENTED
