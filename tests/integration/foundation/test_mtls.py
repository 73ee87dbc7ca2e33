"""Mutual TLS between services: a client without a valid certificate is refused; health stays probe-able."""

from __future__ import annotations

import os
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from paygate.keys.v1 import keys_pb2, keys_pb2_grpc
from paygate_runtime.config import Env
from paygate_runtime.db import create_pool
from paygate_runtime.grpc_server import start_grpc_server
from paygate_runtime.serve import entrypoint_module
from paygate_runtime.settings import CommonSettings
from paygate_runtime.tls import TlsFiles, channel_credentials
from support.certs import TestCA
from support.database import TestDatabase
from support.stack import free_port, make_test_secrets


@pytest.fixture
async def tls_keys_service(clean_db: TestDatabase, tmp_path: Path):
    ca = TestCA(tmp_path / "ca")
    server = ca.issue("keys", server=True, client=True)
    env = {
        **make_test_secrets(),
        "PAYGATE_DATABASE_URL": clean_db.runtime_dsn("keys"),
        "PAYGATE_TLS_CERT_FILE": str(server.cert_file),
        "PAYGATE_TLS_KEY_FILE": str(server.key_file),
        "PAYGATE_TLS_CA_FILE": str(ca.ca_file),
        "PAYGATE_GRPC_HEALTH_PORT": str(free_port()),
    }
    common = CommonSettings.from_env("keys", Env(env))
    module = entrypoint_module("keys")
    pool = await create_pool(common.database_url, "keys", min_size=1, max_size=4)
    spec = await module.assemble(module.load_config(Env(env)), common, pool)
    running = await start_grpc_server(spec, tls=common.tls, health_port=common.health_port)
    try:
        yield ca, running, common
    finally:
        await running.stop(0.5)
        await pool.close()


async def _check(channel: grpc.aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    return reply.status


async def test_client_with_valid_certificate_is_served(tls_keys_service) -> None:
    ca, running, _ = tls_keys_service
    client = ca.issue("session", server=False, client=True)
    creds = channel_credentials(TlsFiles(client.cert_file, client.key_file, ca.ca_file))
    async with grpc.aio.secure_channel(f"localhost:{running.port}", creds) as channel:
        assert await _check(channel) == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await keys_pb2_grpc.KeysServiceStub(channel).AuthenticateMerchant(
                keys_pb2.AuthenticateMerchantRequest(secret_key="sk_test_nope"), timeout=3
            )
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED  # reached the servicer


async def test_client_without_certificate_is_refused(tls_keys_service) -> None:
    ca, running, _ = tls_keys_service
    creds = grpc.ssl_channel_credentials(root_certificates=ca.ca_file.read_bytes())
    async with grpc.aio.secure_channel(f"localhost:{running.port}", creds) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _check(channel)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_client_certificate_from_another_ca_is_refused(tls_keys_service, tmp_path: Path) -> None:
    ca, running, _ = tls_keys_service
    rogue = TestCA(tmp_path / "rogue", name="rogue-ca").issue("intruder", server=False, client=True)
    creds = grpc.ssl_channel_credentials(
        root_certificates=ca.ca_file.read_bytes(),
        private_key=rogue.key_file.read_bytes(),
        certificate_chain=rogue.cert_file.read_bytes(),
    )
    async with grpc.aio.secure_channel(f"localhost:{running.port}", creds) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _check(channel)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_plaintext_client_is_refused_but_health_port_answers(tls_keys_service) -> None:
    _, running, common = tls_keys_service
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await _check(channel)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{common.health_port}") as channel:
        assert await _check(channel) == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await keys_pb2_grpc.KeysServiceStub(channel).AuthenticateMerchant(
                keys_pb2.AuthenticateMerchantRequest(secret_key="sk_test_x"), timeout=3
            )
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED  # only health is plaintext


async def test_server_picks_up_rotated_certificate_without_restart(tls_keys_service, tmp_path: Path) -> None:
    _, running, common = tls_keys_service
    assert common.tls is not None
    # cert-manager rewrites the files in place, here even with a new CA. A client that trusts only the new CA can
    # complete a handshake only if the server re-read its files: proof that rotation needs no restart.
    new_ca = TestCA(tmp_path / "ca2", name="rotated-ca")
    fresh = new_ca.issue("keys-rotated", server=True, client=True)
    common.tls.cert_file.write_bytes(fresh.cert_file.read_bytes())
    common.tls.key_file.write_bytes(fresh.key_file.read_bytes())
    common.tls.ca_file.write_bytes(new_ca.ca_file.read_bytes())
    future = time.time() + 5
    for path in (common.tls.cert_file, common.tls.key_file, common.tls.ca_file):
        os.utime(path, (future, future))
    client = new_ca.issue("session-rotated", server=False, client=True)
    creds = channel_credentials(TlsFiles(client.cert_file, client.key_file, new_ca.ca_file))
    async with grpc.aio.secure_channel(f"localhost:{running.port}", creds) as channel:
        assert await _check(channel) == health_pb2.HealthCheckResponse.SERVING
