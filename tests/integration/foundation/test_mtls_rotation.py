"""Client certificates rotate under a running client (issue 14): the channel that `open_channel` made picks up
the new certificate, key and CA from the same files, without a restart and without failing the calls that are
running when the files change.

The server is the real gRPC server of `paygate serve` (start_grpc_server with mTLS); its servicer answers with
the common name of the client certificate it saw, so a test can tell which certificate a call presented.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from paygate.keys.v1 import keys_pb2, keys_pb2_grpc
from paygate_runtime.grpc_client import open_channel
from paygate_runtime.grpc_server import GrpcServiceSpec, RunningGrpcServer, start_grpc_server
from paygate_runtime.tls import TlsFiles
from support.certs import TestCA
from support.stack import free_port

CHECK_S = 0.2


class _WhoAmI(keys_pb2_grpc.KeysServiceServicer):
    """VerifyAccessToken answers with the client certificate's common name; token "slow:<s>" waits first."""

    async def VerifyAccessToken(
        self, request: keys_pb2.VerifyAccessTokenRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.AccessTokenClaims:
        if request.token.startswith("slow:"):
            await asyncio.sleep(float(request.token.removeprefix("slow:")))
        names = context.auth_context().get("x509_common_name") or [b"?"]
        return keys_pb2.AccessTokenClaims(subject=names[0].decode())


@dataclass
class _Files:
    """One identity's three files, rewritten in place as a rotation does."""

    tls: TlsFiles

    def install(self, ca: TestCA, name: str, *, server: bool) -> None:
        issued = ca.issue(name, server=server, client=True)
        self.tls.cert_file.write_bytes(issued.cert_file.read_bytes())
        self.tls.key_file.write_bytes(issued.key_file.read_bytes())
        self.tls.ca_file.write_bytes(ca.ca_file.read_bytes())
        # Coarse file systems keep the mtime within a second; the size or inode may not change either.
        later = time.time() + 2
        for path in (self.tls.cert_file, self.tls.key_file, self.tls.ca_file):
            os.utime(path, (later, later))


def _files(folder: Path) -> _Files:
    folder.mkdir(parents=True, exist_ok=True)
    return _Files(TlsFiles(folder / "tls.crt", folder / "tls.key", folder / "ca.crt"))


async def _serve(files: _Files, port: int) -> RunningGrpcServer:
    spec = GrpcServiceSpec(
        name="whoami",
        servicers=[
            (keys_pb2_grpc.add_KeysServiceServicer_to_server, _WhoAmI(), "paygate.keys.v1.KeysService")
        ],
    )
    return await start_grpc_server(spec, port=port, tls=files.tls)


@pytest.fixture
async def servers() -> AsyncIterator[list[RunningGrpcServer]]:
    running: list[RunningGrpcServer] = []
    try:
        yield running
    finally:
        for server in running:
            await server.stop(grace=0.5)


async def _eventually_cn(stub: keys_pb2_grpc.KeysServiceStub, expected: str, within_s: float = 30.0) -> None:
    """Poll (a loaded machine and the channel's reconnect backoff both take their time) until a call is served
    with the `expected` client certificate."""
    deadline = time.monotonic() + within_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            reply = await stub.VerifyAccessToken(keys_pb2.VerifyAccessTokenRequest(token="x"), timeout=3)
            if reply.subject == expected:
                return
            last = reply.subject
        except grpc.aio.AioRpcError as error:
            last = error.code()
        await asyncio.sleep(0.2)
    raise AssertionError(f"calls never presented {expected!r}; last answer: {last!r}")


async def test_rotated_client_certificate_from_a_new_ca_is_used_without_restart(
    tmp_path: Path, servers: list[RunningGrpcServer]
) -> None:
    old_ca, new_ca = TestCA(tmp_path / "ca1", name="old-ca"), TestCA(tmp_path / "ca2", name="new-ca")
    server_files, client_files = _files(tmp_path / "server"), _files(tmp_path / "client")
    server_files.install(old_ca, "keys", server=True)
    client_files.install(old_ca, "session-1", server=False)
    port = free_port()
    servers.append(await _serve(server_files, port))

    channel = open_channel(f"localhost:{port}", tls=client_files.tls, tls_check_interval_s=CHECK_S)
    async with channel:
        stub = keys_pb2_grpc.KeysServiceStub(channel)  # built once, as the services build theirs
        await _eventually_cn(stub, "session-1")

        # The whole namespace moves to a new CA: the client's files are rewritten, and the server now presents
        # a certificate of the new CA and trusts only the new CA. Neither the old client certificate nor the
        # old trust anchor can complete a handshake any more.
        client_files.install(new_ca, "session-2", server=False)
        server_files.install(new_ca, "keys", server=True)
        await servers.pop().stop(grace=0.5)  # drops the connection made with the old certificates
        servers.append(await _serve(server_files, port))

        await _eventually_cn(stub, "session-2")


async def test_calls_in_flight_finish_on_the_old_channel_and_new_calls_use_the_new_certificate(
    tmp_path: Path, servers: list[RunningGrpcServer]
) -> None:
    ca = TestCA(tmp_path / "ca")
    server_files, client_files = _files(tmp_path / "server"), _files(tmp_path / "client")
    server_files.install(ca, "keys", server=True)
    client_files.install(ca, "session-1", server=False)
    port = free_port()
    servers.append(await _serve(server_files, port))

    async with open_channel(
        f"localhost:{port}", tls=client_files.tls, tls_check_interval_s=CHECK_S, default_deadline=30
    ) as channel:
        stub = keys_pb2_grpc.KeysServiceStub(channel)
        await _eventually_cn(stub, "session-1")
        in_flight = asyncio.ensure_future(
            stub.VerifyAccessToken(keys_pb2.VerifyAccessTokenRequest(token="slow:2"))
        )
        await asyncio.sleep(0.3)

        # A renewal by the same CA; the server keeps running, with its connection from the old certificate open:
        # only a new channel presents the new certificate.
        client_files.install(ca, "session-2", server=False)
        await _eventually_cn(stub, "session-2")

        assert (await in_flight).subject == "session-1"  # the call made before the swap was not cut off


async def test_unusable_files_keep_the_working_channel(
    tmp_path: Path, servers: list[RunningGrpcServer], caplog: pytest.LogCaptureFixture
) -> None:
    ca = TestCA(tmp_path / "ca")
    server_files, client_files = _files(tmp_path / "server"), _files(tmp_path / "client")
    server_files.install(ca, "keys", server=True)
    client_files.install(ca, "session-1", server=False)
    port = free_port()
    servers.append(await _serve(server_files, port))

    async with open_channel(
        f"localhost:{port}", tls=client_files.tls, tls_check_interval_s=CHECK_S
    ) as channel:
        stub = keys_pb2_grpc.KeysServiceStub(channel)
        await _eventually_cn(stub, "session-1")
        # Caught half-way: a new certificate beside the old key.
        other = ca.issue("session-2", server=False, client=True)
        client_files.tls.cert_file.write_bytes(other.cert_file.read_bytes())
        later = time.time() + 2
        os.utime(client_files.tls.cert_file, (later, later))
        with caplog.at_level(logging.WARNING, logger="paygate_runtime.grpc_client"):
            for _ in range(5):
                await asyncio.sleep(CHECK_S)
                reply = await stub.VerifyAccessToken(keys_pb2.VerifyAccessTokenRequest(token="x"), timeout=3)
                assert reply.subject == "session-1"
        assert "not usable yet" in caplog.text
        assert "PRIVATE KEY" not in caplog.text and "BEGIN" not in caplog.text
        # The key arrives: now the new pair is used.
        client_files.tls.key_file.write_bytes(other.key_file.read_bytes())
        os.utime(client_files.tls.key_file, (later + 1, later + 1))
        await _eventually_cn(stub, "session-2")
