"""Shared benchmark plumbing: ceilings measured on this machine, a durable database, service processes.

Benchmarks are scripts that print figures, never tests. Each measures its own path and, in the same run, the
ceilings it is compared with, so the ratio holds whatever else the machine is doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.database import TestDatabase, start_test_database  # noqa: E402
from support.stack import make_test_secrets  # noqa: E402

EMPTY_SERVER = """
import asyncio, grpc, sys
async def call(request, context):
    return b""
async def main():
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "bench.Empty", {"Call": grpc.unary_unary_rpc_method_handler(call)})
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()
asyncio.run(main())
"""


@dataclass
class Figures:
    rate_per_s: float
    p50_ms: float
    p99_ms: float
    count: int

    def line(self, label: str) -> str:
        return f"{label:<48} {self.rate_per_s:>9.0f}/s   p50 {self.p50_ms:6.2f} ms   p99 {self.p99_ms:6.2f} ms   n={self.count}"


class CpuMeter:
    """CPU seconds (user + system) spent by named processes and by all PostgreSQL processes between
    `start()` and `stop()` (summed over every such window): where the cores went, which a profile of one
    process cannot show."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = {**pids, "benchmark client": os.getpid()}
        self._before: dict[str, float] = {}
        self.spent: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        seconds: dict[str, float] = {}
        for label, pid in self.pids.items():
            with contextlib.suppress(psutil.Error):
                times = psutil.Process(pid).cpu_times()
                seconds[label] = times.user + times.system
        postgres = 0.0
        for proc in psutil.process_iter(["name"]):
            if proc.info["name"] in ("postgres", "postmaster"):
                with contextlib.suppress(psutil.Error):
                    times = proc.cpu_times()
                    postgres += times.user + times.system
        seconds["postgresql (all backends)"] = postgres
        return seconds

    def start(self) -> None:
        self._before = self._now()

    def stop(self) -> None:
        """Adds what was spent since `start()`: several measured windows add up."""
        after = self._now()
        for label, seconds in after.items():
            self.spent[label] = self.spent.get(label, 0.0) + seconds - self._before.get(label, 0.0)

    def report(self, per: int, unit: str) -> list[str]:
        """Lines of CPU milliseconds per `unit`, largest first, and their total."""
        if per <= 0:
            return []
        lines = [
            f"    {1000 * spent / per:6.2f} ms  {label}"
            for label, spent in sorted(self.spent.items(), key=lambda kv: kv[1], reverse=True)
        ]
        lines.append(f"    {1000 * sum(self.spent.values()) / per:6.2f} ms  total CPU per {unit}")
        return lines


class Exhausted(Exception):
    """Raised by a benchmark call when its prepared inputs ran out: the run ends early, rate stays exact."""


async def measure(
    call: Callable[[], Awaitable[object]],
    concurrency: int,
    seconds: float,
    warmup: float = 0.5,
    meter: CpuMeter | None = None,
) -> Figures:
    """Run `call` from `concurrency` workers for `seconds` (after a warm-up) and report rate and latency."""
    latencies: list[float] = []
    stop_at = 0.0
    recording = False

    async def worker() -> None:
        while True:
            started = time.perf_counter()
            if started >= stop_at:
                return
            try:
                await call()
            except Exhausted:
                return
            if recording:
                latencies.append(time.perf_counter() - started)

    stop_at = time.perf_counter() + warmup
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    recording = True
    if meter is not None:
        meter.start()
    begin = time.perf_counter()
    stop_at = begin + seconds
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - begin
    if meter is not None:
        meter.stop()
    return figures_from(latencies, elapsed)


def figures_from(latencies: list[float], elapsed: float) -> Figures:
    if not latencies:
        return Figures(0.0, 0.0, 0.0, 0)
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Figures(len(ordered) / elapsed, statistics.median(ordered) * 1000, p99 * 1000, len(ordered))


@contextlib.asynccontextmanager
async def empty_unary_server() -> AsyncIterator[Callable[[int, float], Awaitable[Figures]]]:
    """An empty grpc.aio server in another process, kept up so a benchmark can measure the ceiling again in
    every round, next to its own figure; yields `measure_empty(concurrency, seconds)`."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", EMPTY_SERVER, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        port = int((await proc.stdout.readline()).decode().strip())
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            method = channel.unary_unary("/bench.Empty/Call")
            await channel.channel_ready()

            async def measure_empty(concurrency: int, seconds: float) -> Figures:
                return await measure(lambda: method(b"", timeout=5), concurrency, seconds)

            yield measure_empty
    finally:
        proc.terminate()
        await proc.wait()


async def empty_unary_baseline(concurrency: int = 4, seconds: float = 3.0) -> Figures:
    """An empty grpc.aio unary call against a server in another process: the ceiling of any RPC here."""
    async with empty_unary_server() as measure_empty:
        return await measure_empty(concurrency, seconds)


async def pg_commit_baseline(dsn: str, concurrency: int = 4, seconds: float = 3.0) -> Figures:
    """One durable single-row INSERT per transaction: the ceiling of any committed write here."""
    admin = await asyncpg.connect(dsn)
    await admin.execute("CREATE TABLE IF NOT EXISTS public.bench_commit (id bigserial PRIMARY KEY, v int)")
    await admin.close()
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    try:
        return await measure(
            lambda: pool.execute("INSERT INTO public.bench_commit (v) VALUES (1)"), concurrency, seconds
        )
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def bench_database() -> AsyncIterator[TestDatabase]:
    """A throwaway embedded PostgreSQL with durable commits (fsync on), migrated for every service."""
    db = await start_test_database(durable=True)
    try:
        yield db
    finally:
        await db.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServiceProcesses:
    """The services as separate processes (`paygate serve`), as in production, on free ports."""

    db: TestDatabase
    extra_env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=make_test_secrets)

    def addr(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[service]}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def env_for(self, service: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_")}
        env.update(self.secrets)
        env.update(
            {
                "PAYGATE_DATABASE_URL": self.db.runtime_dsn(service),
                "PAYGATE_LOG_LEVEL": "WARNING",
                "PAYGATE_PUBLIC_URL": f"http://127.0.0.1:{self.ports.get('gateway', 8080)}",
                "PAYGATE_GRPC_PORT": str(self.ports.get(service, 0)),
                "PAYGATE_HTTP_PORT": str(self.ports.get("gateway", 0)),
                "PAYGATE_DB_POOL_MAX": "20",
            }
        )
        for name in ("session", "billing", "keys"):
            if name in self.ports:
                env[f"PAYGATE_{name.upper()}_ADDR"] = self.addr(name)
        env.update(self.extra_env)
        return env

    async def start(self, services: list[str]) -> None:
        for service in services:
            self.ports.setdefault(service, free_port())
        for service in services:
            self.procs[service] = subprocess.Popen(
                [sys.executable, "-m", "paygate_runtime.cli.main", "serve", service],
                env=self.env_for(service),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        for service in services:
            await self._wait_ready(service)

    async def _wait_ready(self, service: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[service].poll() is not None:
                raise RuntimeError(f"{service} exited with {self.procs[service].returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.ports[service]), timeout=0.2):
                    return
            except OSError:
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{service} did not start")

    def pid(self, service: str) -> int:
        return self.procs[service].pid

    async def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


async def _main() -> None:
    print("ceilings on this machine")
    for concurrency in (4, 64):
        print(
            (await empty_unary_baseline(concurrency)).line(f"empty grpc.aio unary, concurrency {concurrency}")
        )
    async with bench_database() as db:
        print(
            (await pg_commit_baseline(db.admin_dsn, 4)).line(
                "durable single-row asyncpg commit, concurrency 4"
            )
        )


if __name__ == "__main__":
    asyncio.run(_main())


async def create_sessions(stub: Any, merchant_id: str, count: int, provider: str = "onecom") -> list[str]:
    """`count` fresh EUR 9.99 sessions through SessionService.CreateSession, 16 at a time."""
    from paygate.common.v1 import common_pb2
    from paygate.session.v1 import session_pb2

    ids: list[str] = []

    async def worker(n: int) -> None:
        for _ in range(n):
            reply = await stub.CreateSession(
                session_pb2.CreateSessionRequest(
                    merchant_id=merchant_id,
                    mode=common_pb2.MODE_TEST,
                    amount="9.99",
                    currency="EUR",
                    provider=provider,
                ),
                timeout=10,
            )
            ids.append(reply.session.id)

    per, extra = divmod(count, 16)
    await asyncio.gather(*(worker(per + (1 if i < extra else 0)) for i in range(16)))
    return ids


async def wait_fulfilled(conn: asyncpg.Connection, wanted: list[Any], begin: float, limit_s: float) -> int:
    """Poll until every session in `wanted` is fulfilled (or `limit_s` after `begin`); returns how many are."""
    while True:
        done = await conn.fetchval(
            "SELECT count(*) FROM session.sessions WHERE fulfilment_status = 'done' AND id = ANY($1::uuid[])",
            wanted,
        )
        if done >= len(wanted) or time.perf_counter() - begin > limit_s:
            return done
        await asyncio.sleep(0.02)


async def create_bench_merchant(procs: ServiceProcesses) -> str:
    """A test-mode merchant on the keys service of `procs`; returns its id."""
    from paygate.common.v1 import common_pb2
    from paygate.keys.v1 import keys_pb2, keys_pb2_grpc

    async with grpc.aio.insecure_channel(procs.addr("keys")) as channel:
        reply = await keys_pb2_grpc.KeysServiceStub(channel).CreateMerchant(
            keys_pb2.CreateMerchantRequest(name="Bench Ltd", key_prefix="bench", mode=common_pb2.MODE_TEST),
            timeout=10,
        )
    return reply.merchant.id
