"""In-process service stacks for integration tests: real Postgres, real gRPC on ephemeral ports, real HTTP.

Every service is assembled through the same `load_config` / `assemble` functions that `paygate serve` uses,
fed from an environment dict, so tests exercise the production wiring.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import grpc
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from paygate.billing.v1 import billing_pb2, billing_pb2_grpc
from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2, keys_pb2_grpc
from paygate.session.v1 import session_pb2_grpc
from paygate_runtime.audit_anchor import DEFAULT_INTERVAL_S, AuditAnchor
from paygate_runtime.audit_chain import AUDIT_TABLES
from paygate_runtime.config import Env
from paygate_runtime.db import create_pool
from paygate_runtime.grpc_server import RunningGrpcServer, start_grpc_server
from paygate_runtime.schemas import SERVICES
from paygate_runtime.serve import entrypoint_module
from paygate_runtime.settings import CommonSettings
from support.database import TestDatabase

GRPC_SERVICES = ("keys", "billing", "session")


def _whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def make_test_secrets() -> dict[str, str]:
    pem = (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    return {
        "PAYGATE_STRIPE_WEBHOOK_SECRETS": _whsec(),
        "PAYGATE_ONECOM_WEBHOOK_SECRETS": _whsec(),
        "PAYGATE_WEB3_WEBHOOK_SECRETS": _whsec(),
        "PAYGATE_KEYS_ENCRYPTION_KEYS": base64.b64encode(secrets.token_bytes(32)).decode(),
        "PAYGATE_SESSION_ENCRYPTION_KEYS": base64.b64encode(secrets.token_bytes(32)).decode(),
        "PAYGATE_JWT_SIGNING_KEYS": json.dumps([{"kid": "test-1", "pem": pem}]),
        "PAYGATE_CUSTOMER_SUBJECT_SECRET": secrets.token_hex(32),
    }


def default_stack_env() -> dict[str, str]:
    """The environment every test stack starts from (fresh secrets each time); tests add to it."""
    return {
        "PAYGATE_PUBLIC_URL": "http://127.0.0.1:8080",
        "PAYGATE_LOG_LEVEL": "WARNING",
        **make_test_secrets(),
    }


@contextlib.asynccontextmanager
async def running_stack(
    db: TestDatabase, env: dict[str, str], *, gateway_port: int | None = None
) -> AsyncIterator[ServiceStack]:
    """Every service started on `db` with `env`, stopped on exit. `gateway_port` fixes the gateway's port
    beforehand (when its public URL must name it); otherwise every service takes an ephemeral one."""
    services = ServiceStack(db, env)
    if gateway_port is not None:
        services.ports["gateway"] = gateway_port
    await services.start()
    try:
        yield services
    finally:
        await services.stop()


@dataclass
class Merchant:
    id: str
    api_key: str
    name: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}


@dataclass
class ServiceStack:
    db: TestDatabase
    env: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    servers: dict[str, RunningGrpcServer] = field(default_factory=dict)
    # The audit-chain anchor task `paygate serve` runs beside every gRPC service that has an audit chain.
    anchors: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    pools: dict[str, asyncpg.Pool] = field(default_factory=dict)
    gateway: Any = None
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)
    http: aiohttp.ClientSession | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def addr(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[service]}"

    def channel(self, service: str) -> grpc.aio.Channel:
        if service not in self.channels:
            self.channels[service] = grpc.aio.insecure_channel(self.addr(service))
        return self.channels[service]

    @property
    def session(self) -> session_pb2_grpc.SessionServiceStub:
        return session_pb2_grpc.SessionServiceStub(self.channel("session"))

    @property
    def billing(self) -> billing_pb2_grpc.BillingServiceStub:
        return billing_pb2_grpc.BillingServiceStub(self.channel("billing"))

    @property
    def keys(self) -> keys_pb2_grpc.KeysServiceStub:
        return keys_pb2_grpc.KeysServiceStub(self.channel("keys"))

    def service_env(self, service: str) -> dict[str, str]:
        env = dict(self.env)
        env["PAYGATE_DATABASE_URL"] = self.db.runtime_dsn(service)
        env["PAYGATE_GRPC_PORT"] = str(self.ports.get(service, 0))
        env["PAYGATE_HTTP_PORT"] = str(self.ports.get("gateway", 0))
        for name in GRPC_SERVICES:
            env[f"PAYGATE_{name.upper()}_ADDR"] = self.addr(name) if name in self.ports else "127.0.0.1:1"
        return env

    async def start_service(self, service: str) -> None:
        """Start (or restart, on the same port) one service in this process."""
        module = entrypoint_module(service)
        env = Env(self.service_env(service))
        common = CommonSettings.from_env(service, env)
        config = module.load_config(env)
        pool = await create_pool(common.database_url, SERVICES[service].schema, min_size=1, max_size=10)
        self.pools[service] = pool
        assembled = await module.assemble(config, common, pool)
        if service == "gateway":
            self.gateway = assembled
            self.ports["gateway"] = await assembled.start()
        else:
            server = await start_grpc_server(assembled, port=self.ports.get(service, 0))
            self.servers[service] = server
            self.ports[service] = server.port
            if service in AUDIT_TABLES and assembled.metrics is not None:
                # As paygate_runtime/serve.py does: the chain heads are anchored (logged and exported).
                anchor = AuditAnchor(service, pool, assembled.metrics, DEFAULT_INTERVAL_S)
                self.anchors[service] = asyncio.create_task(anchor.run())
            await self._gateway_reaches(service)

    async def _gateway_reaches(self, service: str) -> None:
        """After a restart, wait until the running gateway's channel to `service` is connected again. Its
        channel lost the old server and retries on a backoff (200 ms growing), failing calls fast meanwhile:
        a test that calls the gateway right after a restart got 503 `unavailable` about 1 time in 8
        (test_customer_key_revoked_reaches_the_endpoint_from_the_keys_service)."""
        if self.gateway is None:
            return
        channel = self.gateway.clients.channels.get(service)
        if channel is not None:
            await asyncio.wait_for(channel.channel_ready(), timeout=15)

    async def stop_service(self, service: str, grace: float = 0.5) -> None:
        if service == "gateway":
            if self.gateway is not None:
                await self.gateway.stop()
                self.gateway = None
        else:
            anchor = self.anchors.pop(service, None)
            if anchor is not None:
                anchor.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await anchor
            server = self.servers.pop(service, None)
            if server is not None:
                await server.stop(grace)
        pool = self.pools.pop(service, None)
        if pool is not None:
            # close() waits for every connection to come back; one still held by a stuck task must not hang
            # the suite, and the next test's reset would wait on its locks anyway.
            try:
                async with asyncio.timeout(5):
                    await pool.close()
            except TimeoutError:
                pool.terminate()

    async def start(self, services: Iterable[str] = (*GRPC_SERVICES, "gateway")) -> ServiceStack:
        # Each service binds port 0 and reports the port it got: reserving ports up front would race with every
        # other socket on the machine. The order keys, billing, session, gateway starts each service after the
        # peers it calls, so their addresses are known by then.
        services = tuple(services)
        for service in services:
            await self.start_service(service)
            if service == "session" and "billing" in self.servers and "billing" in services:
                # Billing calls the session service too (it forwards credit_note.issued), and started before
                # it: start it again on its port now that the session service's address is known, as
                # `paygate up` (which plans every port first) starts it. Nothing has called billing yet.
                await self.stop_service("billing", grace=0)
                await self.start_service("billing")
        self.http = aiohttp.ClientSession()
        return self

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()
        for channel in self.channels.values():
            await channel.close()
        self.channels.clear()
        for service in ("gateway", "session", "billing", "keys"):
            with contextlib.suppress(Exception):
                await self.stop_service(service)

    async def create_merchant(self, name: str = "Acme", prefix: str = "acme", mode: str = "test") -> Merchant:
        reply = await self.keys.CreateMerchant(
            keys_pb2.CreateMerchantRequest(
                name=name,
                key_prefix=prefix,
                mode=common_pb2.MODE_LIVE if mode == "live" else common_pb2.MODE_TEST,
            ),
            timeout=5,
        )
        merchant = Merchant(reply.merchant.id, reply.secret_key, name)
        if mode == "live":
            await self.complete_billing_profile(merchant.id, name)
        return merchant

    async def complete_billing_profile(
        self,
        merchant_id: str,
        name: str = "Acme",
        modes: Iterable[int] = (common_pb2.MODE_TEST, common_pb2.MODE_LIVE),
    ) -> None:
        """Give the merchant the seller profile live sessions need (contract §9: 409 billing_profile_incomplete
        without one), in each of `modes` (one profile per mode, §6a; both by default)."""
        for mode in modes:
            await self.billing.UpdateBillingProfile(
                billing_pb2.UpdateBillingProfileRequest(
                    profile=billing_pb2.BillingProfile(
                        merchant_id=merchant_id,
                        seller=billing_pb2.Party(
                            name=f"{name} GmbH",
                            address=common_pb2.Address(lines=["Hauptstr. 1", "10115 Berlin"], country="DE"),
                            tax_id="DE123456789",
                        ),
                    ),
                    mode=mode,
                ),
                timeout=5,
            )

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """One HTTP call to the gateway; returns (status, parsed JSON or text)."""
        assert self.http is not None
        async with self.http.request(method, self.base_url + path, **kwargs) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text


# Ports for the stacks a test starts are taken from below the kernel's ephemeral range (32768-60999 on
# Linux). A port the kernel hands out for `bind(0)` or for an outgoing connection is always inside that
# range, so a port chosen here cannot be taken in the gap before the stack binds it by a server that asked
# for any port (`paygate up` picks its metrics ports that way) or by a client's source port. CI once lost
# a `paygate up` run to exactly that race. Each process walks its own stride so parallel runs rarely meet.
_PORT_LOW, _PORT_HIGH = 20000, 32000
_next_port = _PORT_LOW + (os.getpid() * 7919) % (_PORT_HIGH - _PORT_LOW)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port nobody listens on right now, from outside the ephemeral range (see above)."""
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """`n` distinct ports nobody listens on right now, from outside the ephemeral range (see above)."""
    global _next_port
    chosen: list[int] = []
    for _ in range(_PORT_HIGH - _PORT_LOW):
        port = _next_port
        _next_port = _PORT_LOW + (_next_port + 1 - _PORT_LOW) % (_PORT_HIGH - _PORT_LOW)
        if _bindable(port):
            chosen.append(port)
            if len(chosen) == n:
                return chosen
    raise RuntimeError(f"no {n} free ports in {_PORT_LOW}-{_PORT_HIGH}")
