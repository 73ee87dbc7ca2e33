"""The plan of a local stack and the running stack itself, shared by `paygate up` and its optional parts.

Kept apart from `up` so that the parts `up` starts (SMTP sink, chain node, One.com double, dev merchant) can
name `Stack` and `StackPlan` without importing the command that starts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from paygate_dev.embedded_pg import EmbeddedPostgres
from paygate_runtime.migrations import migrate
from paygate_runtime.schemas import SERVICES, bootstrap_database, dsn_for_role

START_ORDER = ("keys", "billing", "session", "gateway")
STOP_TIMEOUT_S = 7.0
READY_TIMEOUT_S = 60.0
EMBEDDED_DATABASE = "paygate"


@dataclass
class StackPlan:
    home: Path
    http_port: int
    grpc_ports: dict[str, int]
    smtp_port: int
    chain: bool
    chain_port: int
    # Each service's Prometheus /metrics port (PAYGATE_METRICS_PORT), free ports chosen at start.
    metrics_ports: dict[str, int] = field(default_factory=dict)
    admin_dsn: str = ""
    database: str = ""
    secrets: dict[str, str] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def grpc_addr(self, service: str) -> str:
        return f"127.0.0.1:{self.grpc_ports[service]}"

    def metrics_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.metrics_ports[service]}/metrics"


def service_env(plan: StackPlan, service: str) -> dict[str, str]:
    """The environment a child service gets: exactly the variables README documents."""
    spec = SERVICES[service]
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PAYGATE_") and key not in {"DATABASE_URL"}
    }
    env.update(
        {
            "PAYGATE_DATABASE_URL": dsn_for_role(plan.admin_dsn, spec.runtime_role, plan.database),
            "PAYGATE_HOST": "127.0.0.1",
            "PAYGATE_SESSION_ADDR": plan.grpc_addr("session"),
            "PAYGATE_BILLING_ADDR": plan.grpc_addr("billing"),
            "PAYGATE_KEYS_ADDR": plan.grpc_addr("keys"),
            "PAYGATE_PUBLIC_URL": plan.gateway_url,
            "PAYGATE_LOG_LEVEL": os.environ.get("PAYGATE_LOG_LEVEL", "INFO"),
            "PAYGATE_STRIPE_WEBHOOK_SECRETS": plan.secrets["stripe_webhook_secret"],
            "PAYGATE_ONECOM_WEBHOOK_SECRETS": plan.secrets["onecom_webhook_secret"],
            "PAYGATE_WEB3_WEBHOOK_SECRETS": plan.secrets["web3_webhook_secret"],
            "PAYGATE_ONECOM_WEBHOOK_SECRETS_LIVE": plan.secrets["onecom_webhook_secret_live"],
            "PAYGATE_WEB3_WEBHOOK_SECRETS_LIVE": plan.secrets["web3_webhook_secret_live"],
            "PAYGATE_KEYS_ENCRYPTION_KEYS": plan.secrets["keys_encryption_key"],
            "PAYGATE_SESSION_ENCRYPTION_KEYS": plan.secrets["session_encryption_key"],
            "PAYGATE_JWT_SIGNING_KEYS": json.dumps(
                [{"kid": plan.secrets["jwt_signing_kid"], "pem": plan.secrets["jwt_signing_key_pem"]}]
            ),
            "PAYGATE_CUSTOMER_SUBJECT_SECRET": plan.secrets["customer_subject_secret"],
            "PAYGATE_SMTP_HOST": "127.0.0.1",
            "PAYGATE_SMTP_PORT": str(plan.smtp_port),
            # A local stack's test endpoints may be http on loopback (`paygate listen`); live ones never.
            "PAYGATE_ALLOW_LOOPBACK_WEBHOOKS": "true",
        }
    )
    for key, value in plan.extras.get("env", {}).items():
        env[key] = value
    if service in plan.metrics_ports:
        env["PAYGATE_METRICS_PORT"] = str(plan.metrics_ports[service])
    if service == "gateway":
        env["PAYGATE_HTTP_PORT"] = str(plan.http_port)
    else:
        env["PAYGATE_GRPC_PORT"] = str(plan.grpc_ports[service])
    # Operator overrides pass through (e.g. PAYGATE_STRIPE_API_KEY) unless up sets them itself.
    for key, value in os.environ.items():
        if key.startswith("PAYGATE_") and key not in env and key != "PAYGATE_HOME":
            env[key] = value
    return env


class Stack:
    def __init__(self, plan: StackPlan) -> None:
        self.plan = plan
        self.pg: EmbeddedPostgres | None = None
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        self.side: list[Any] = []  # objects with async stop(): smtp sink, chain node

    async def start_database(self) -> None:
        external = os.environ.get("DATABASE_URL")
        if external:
            self.plan.admin_dsn = external
            self.plan.database = external.rsplit("/", 1)[-1].split("?", 1)[0] or "postgres"
        else:
            self.pg = EmbeddedPostgres(self.plan.home / "pgdata")
            self.plan.admin_dsn = await asyncio.to_thread(self.pg.start)
            self.plan.database = EMBEDDED_DATABASE
        await bootstrap_database(self.plan.admin_dsn, self.plan.database)
        for service, spec in SERVICES.items():
            await migrate(dsn_for_role(self.plan.admin_dsn, spec.owner_role, self.plan.database), service)

    def spawn(self, service: str) -> None:
        log_dir = self.plan.home / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{service}.log"
        self.logs[service] = log_path
        with open(log_path, "ab") as log_file:
            self.children[service] = subprocess.Popen(
                [sys.executable, "-m", "paygate_runtime.cli.main", "serve", service],
                env=service_env(self.plan, service),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Own process group: Ctrl-C in the terminal reaches `up` only, which then stops children in order.
                start_new_session=True,
            )

    async def wait_healthy(self, service: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            child = self.children[service]
            if child.poll() is not None:
                raise ChildDied(service, child.returncode, self.tail(service))
            if await self._healthy(service):
                return
            await asyncio.sleep(0.1)
        raise ChildDied(service, None, self.tail(service))

    async def _healthy(self, service: str) -> bool:
        if service == "gateway":
            try:
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(
                        f"{self.plan.gateway_url}/healthz", timeout=aiohttp.ClientTimeout(total=1)
                    ) as response,
                ):
                    return response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                return False
        async with grpc.aio.insecure_channel(self.plan.grpc_addr(service)) as channel:
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
            except grpc.aio.AioRpcError:
                return False
            serving: bool = reply.status == health_pb2.HealthCheckResponse.SERVING  # grpc_health is untyped
            return serving

    def tail(self, service: str, lines: int = 15) -> str:
        try:
            return "\n".join(self.logs[service].read_text(errors="replace").splitlines()[-lines:])
        except (KeyError, OSError):
            return ""

    def dead_child(self) -> tuple[str, int] | None:
        for name, child in self.children.items():
            code = child.poll()
            if code is not None:
                return name, code
        return None

    async def stop(self) -> None:
        for service in reversed(START_ORDER):
            child = self.children.get(service)
            if child is not None and child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in self.children.values():
            while child.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if child.poll() is None:
                child.kill()
                child.wait()
        for item in reversed(self.side):
            with contextlib.suppress(Exception):
                await item.stop()
        if self.pg is not None:
            await asyncio.to_thread(self.pg.stop)


class ChildDied(Exception):
    def __init__(self, service: str, code: int | None, tail: str) -> None:
        reason = "did not become healthy" if code is None else f"exited with code {code}"
        super().__init__(f"service {service} {reason}")
        self.service = service
        self.tail = tail
