"""Services as separate OS processes (`paygate serve`), for replica and crash tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from paygate.keys.v1 import keys_pb2_grpc
from support.database import TestDatabase
from support.stack import ServiceStack, free_port, make_test_secrets


@dataclass
class ServiceProcess:
    service: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        return self.proc.returncode


@dataclass
class Replicas:
    """Extra processes of one service beside an in-process ServiceStack, all on the stack's database."""

    stack: ServiceStack
    log_dir: Path
    running: list[ServiceProcess] = field(default_factory=list)

    async def spawn(self, service: str, extra_env: dict[str, str] | None = None) -> ServiceProcess:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_")}
        env.update(self.stack.service_env(service))
        env["PAYGATE_GRPC_PORT" if service != "gateway" else "PAYGATE_HTTP_PORT"] = str(port)
        env["PAYGATE_LOG_LEVEL"] = "INFO"
        env.update(extra_env or {})
        log = self.log_dir / f"{service}-{len(self.running)}.log"
        with open(log, "wb") as handle:
            proc = subprocess.Popen(
                [sys.executable, "-m", "paygate_runtime.cli.main", "serve", service],
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        replica = ServiceProcess(service, port, proc, log)
        self.running.append(replica)
        await wait_serving(replica)
        return replica

    def stop_all(self) -> None:
        for replica in self.running:
            try:
                replica.terminate()
            except subprocess.TimeoutExpired:
                replica.kill()


async def wait_serving(replica: ServiceProcess, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if replica.proc.poll() is not None:
            raise AssertionError(f"{replica.service} exited: {replica.log.read_text()[-2000:]}")
        if replica.service == "gateway":
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", replica.port)
                writer.close()
                return
            except OSError:
                pass
        else:
            async with grpc.aio.insecure_channel(replica.addr) as channel:
                try:
                    reply = await health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=1
                    )
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{replica.service} not serving within {timeout}s")


@contextlib.asynccontextmanager
async def keys_process(
    database: TestDatabase, env: dict[str, str]
) -> AsyncIterator[keys_pb2_grpc.KeysServiceStub]:
    """One `paygate serve keys` process on `database` (a replica of its own, beside any other), as a stub
    once it answers health checks; terminated on exit."""
    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_")}
    child_env.update(env)
    child_env.update(
        {
            "PAYGATE_DATABASE_URL": database.runtime_dsn("keys"),
            "PAYGATE_GRPC_PORT": str(port),
            "PAYGATE_LOG_LEVEL": "WARNING",
        }
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "paygate_runtime.cli.main", "serve", "keys", env=child_env
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    break
            except grpc.aio.AioRpcError:
                pass
            assert proc.returncode is None, "keys process exited"
            assert time.monotonic() < deadline, "keys process did not become healthy"
            await asyncio.sleep(0.1)
        yield keys_pb2_grpc.KeysServiceStub(channel)
    finally:
        await channel.close()
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout=10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


# Nothing listens here: a service that got past its configuration fails to connect instead (exit 1).
UNREACHABLE_DSN = "postgresql://paygate@127.0.0.1:1/paygate"


def serve_until_configured(service: str, overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`paygate serve SERVICE` run to its exit, with valid test secrets, a database where nothing listens and
    `overrides`, and none of this process's PAYGATE_ or OTEL_ variables: a malformed value stops it at its
    configuration (exit 2), and a sound configuration gets as far as the database (exit 1). The log level is
    lower case on purpose: operators write it so, and it must not be what stops start-up."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PAYGATE_", "OTEL_"))}
    env.update(make_test_secrets())
    env.update({"PAYGATE_DATABASE_URL": UNREACHABLE_DSN, "PAYGATE_LOG_LEVEL": "debug"})
    env.update(overrides)
    return subprocess.run(
        [sys.executable, "-m", "paygate_runtime.cli.main", "serve", service],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
