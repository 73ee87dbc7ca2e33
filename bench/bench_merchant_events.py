"""Merchant events benchmark (issue 18): what events cost a payment, and how fast deliveries go out.

    .venv/bin/python bench/bench_merchant_events.py [--sessions 600] [--rounds 3] [--deliveries 3000]

Every service is a separate `paygate serve` process on a durable (fsync on) embedded PostgreSQL.

0. ApplyPaymentEvent created -> paid transitions/s and CPU per transition (workers off), emit triggers off
   and on, rounds interleaved;
1. CPU per fully fulfilled session (pay + invoice + key + token), A/B in the same run, rounds interleaved so
   the machine's drift hits every variant alike:
   - `no events`: the emit triggers disabled (ALTER TABLE ... DISABLE TRIGGER), i.e. the code before issue 18;
   - `events`: the triggers on, no endpoint (every paid session still records `session.paid` and
     `invoice.issued`);
   - `events + endpoint`: one endpoint subscribed to "*" on a local receiver, so each session also makes two
     signed deliveries, timed until they are delivered.
2. Deliveries per second to a local receiver that answers at once (a separate aiohttp process), next to an
   aiohttp hello-world POST rate to that same receiver measured in the same run: a backlog of `session.paid`
   deliveries is built with the workers off, then a session service with workers on drains it. Measured for
   one endpoint (at most PAYGATE_MERCHANT_WEBHOOK_PER_ENDPOINT, 4, in flight) against hello-world at
   concurrency 4, and for 16 endpoints (the process's 64 slots) against hello-world at concurrency 64.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline import (
    CpuMeter,
    Exhausted,
    ServiceProcesses,
    bench_database,
    create_bench_merchant,
    create_sessions,
    free_port,
    measure,
    wait_fulfilled,
)

from paygate.common.v1 import common_pb2
from paygate.session.v1 import merchant_events_pb2 as pb
from paygate.session.v1 import merchant_events_pb2_grpc, session_pb2, session_pb2_grpc

RECEIVER = """
import sys
from aiohttp import web
async def ok(request):
    await request.read()
    return web.Response(text="ok")
app = web.Application()
app.router.add_post("/{tail:.*}", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""

TRIGGERS = (
    ("session.sessions", "sessions_merchant_event_status"),
    ("session.sessions", "sessions_merchant_event_invoice"),
    ("session.quarantine", "quarantine_merchant_event"),
)


class OwnDatabaseCpuMeter(CpuMeter):
    """CpuMeter with PostgreSQL counted as THIS benchmark's server only (its postmaster and children): on a
    machine where other PostgreSQL servers start and stop (other test runs), summing every `postgres` process
    on the machine counts their CPU too, or subtracts it when they exit."""

    postmaster: int | None = None

    def _now(self) -> dict[str, float]:
        seconds = {k: v for k, v in super()._now().items() if k != "postgresql (all backends)"}
        if self.postmaster is not None:
            total = 0.0
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(self.postmaster)
                for proc in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        times = proc.cpu_times()
                        total += times.user + times.system
            seconds["postgresql (this server)"] = total
        return seconds


async def _postmaster(conn: Any) -> int:
    backend = await conn.fetchval("SELECT pg_backend_pid()")
    return psutil.Process(backend).ppid()


def _succeeded(session_id: str) -> session_pb2.ApplyPaymentEventRequest:
    return session_pb2.ApplyPaymentEventRequest(
        session_id=session_id,
        provider="onecom",
        provider_event_id=f"evt_{uuid.uuid4().hex}",
        kind=session_pb2.EVENT_KIND_SUCCEEDED,
        amount=common_pb2.Money(amount_minor="999", currency="EUR", exponent=2),
        provider_reference=f"tx_{uuid.uuid4().hex[:12]}",
    )


async def _set_triggers(conn: Any, enabled: bool) -> None:
    for table, trigger in TRIGGERS:
        await conn.execute(f"ALTER TABLE {table} {'ENABLE' if enabled else 'DISABLE'} TRIGGER {trigger}")


async def _pay(stub: Any, ids: list[str], concurrency: int) -> None:
    pending = iter(ids)

    async def payer() -> None:
        for session_id in pending:
            await stub.ApplyPaymentEvent(_succeeded(session_id), timeout=30)

    await asyncio.gather(*(payer() for _ in range(concurrency)))


async def _wait_delivered(conn: Any, endpoint_ids: list[uuid.UUID], count: int, limit_s: float) -> int:
    begin = time.perf_counter()
    while True:
        done = await conn.fetchval(
            "SELECT count(*) FROM session.webhook_deliveries WHERE status = 'delivered' AND endpoint_id = ANY($1)",
            endpoint_ids,
        )
        if done >= count or time.perf_counter() - begin > limit_s:
            return int(done)
        await asyncio.sleep(0.02)


async def _endpoint(events: Any, merchant_id: str, url: str, types: list[str]) -> uuid.UUID:
    reply = await events.CreateWebhookEndpoint(
        pb.CreateWebhookEndpointRequest(
            merchant_id=merchant_id, mode=common_pb2.MODE_TEST, url=url, events=types
        ),
        timeout=10,
    )
    return uuid.UUID(reply.id)


async def _hello_world(url: str, concurrency: int, seconds: float) -> float:
    count = 0
    stop_at = time.perf_counter() + seconds
    body = b'{"id":"evt_x","type":"session.paid","data":{"object":{}}}'
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < stop_at:
                async with http.post(url, data=body) as response:
                    await response.read()
                count += 1

        begin = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - begin)


async def cpu_per_session(procs: ServiceProcesses, args: argparse.Namespace, receiver_url: str) -> None:
    merchant_id = await create_bench_merchant(procs)
    variants = ("no events", "events", "events + endpoint")
    meters = {
        v: OwnDatabaseCpuMeter({f"{s} service": procs.pid(s) for s in ("session", "keys", "billing")})
        for v in variants
    }
    rates: dict[str, list[float]] = {v: [] for v in variants}
    counts = dict.fromkeys(variants, 0)
    conn = await procs.db.admin()
    postmaster = await _postmaster(conn)
    for meter in meters.values():
        meter.postmaster = postmaster
    endpoint_merchant = await create_bench_merchant(procs)
    async with grpc.aio.insecure_channel(procs.addr("session")) as channel:
        stub = session_pb2_grpc.SessionServiceStub(channel)
        events = merchant_events_pb2_grpc.MerchantEventsServiceStub(channel)
        endpoint = await _endpoint(events, endpoint_merchant, receiver_url, ["*"])
        try:
            for _ in range(args.rounds):
                for variant in variants:
                    await _set_triggers(conn, variant != "no events")
                    owner = endpoint_merchant if variant == "events + endpoint" else merchant_id
                    ids = await create_sessions(stub, owner, args.sessions)
                    delivered_before = await _wait_delivered(conn, [endpoint], 0, 0)
                    meter = meters[variant]
                    meter.start()
                    begin = time.perf_counter()
                    await _pay(stub, ids, args.concurrency)
                    done = await wait_fulfilled(conn, [uuid.UUID(i) for i in ids], begin, 300)
                    if variant == "events + endpoint":
                        await _wait_delivered(conn, [endpoint], delivered_before + 2 * len(ids), 300)
                    elapsed = time.perf_counter() - begin
                    meter.stop()
                    rates[variant].append(done / elapsed)
                    counts[variant] += done
        finally:
            await _set_triggers(conn, True)
            await conn.close()
    print("fully fulfilled sessions/s (rounds interleaved; median [range])")
    for variant in variants:
        r = rates[variant]
        print(f"  {variant:<20} {statistics.median(r):6.0f}/s  [{min(r):.0f}-{max(r):.0f}]")
    print("CPU per fully fulfilled session (psutil, user + system)")
    totals = {}
    for variant in variants:
        print(f"  {variant}:")
        print("\n".join(meters[variant].report(counts[variant], "fulfilled session")))
        totals[variant] = 1000 * sum(meters[variant].spent.values()) / max(1, counts[variant])
    base = totals["no events"]
    for variant in variants[1:]:
        print(
            f"  added by {variant!r}: {totals[variant] - base:+.2f} ms per fulfilled session ({totals[variant]:.2f} vs {base:.2f})"
        )


async def transitions(procs: BenchProcesses, args: argparse.Namespace) -> None:
    """ApplyPaymentEvent created -> paid with the workers off (bench_session.py's transitions phase), emit
    triggers off and on, rounds interleaved: what the event costs the payment RPC itself."""
    await procs.restart_session({"PAYGATE_SESSION_WORKERS": "false"})
    merchant_id = await create_bench_merchant(procs)
    conn = await procs.db.admin()
    postmaster = await _postmaster(conn)
    variants = ("no events", "events")
    meters = {v: OwnDatabaseCpuMeter({"session service": procs.pid("session")}) for v in variants}
    for meter in meters.values():
        meter.postmaster = postmaster
    rates: dict[str, list[float]] = {v: [] for v in variants}
    counts = dict.fromkeys(variants, 0)
    try:
        async with grpc.aio.insecure_channel(procs.addr("session")) as channel:
            stub = session_pb2_grpc.SessionServiceStub(channel)
            for _ in range(args.rounds):
                for variant in variants:
                    await _set_triggers(conn, variant == "events")
                    pool = iter(await create_sessions(stub, merchant_id, int(1500 * (args.seconds + 0.5))))

                    async def call(pool: Any = pool) -> None:
                        session_id = next(pool, None)
                        if session_id is None:
                            raise Exhausted
                        await stub.ApplyPaymentEvent(_succeeded(session_id), timeout=10)

                    figures = await measure(
                        call, args.concurrency, args.seconds, warmup=0.5, meter=meters[variant]
                    )
                    rates[variant].append(figures.rate_per_s)
                    counts[variant] += figures.count
            await conn.execute("UPDATE session.outbox SET status = 'skipped' WHERE status = 'pending'")
    finally:
        await _set_triggers(conn, True)
        await conn.close()
    print(
        f"ApplyPaymentEvent created->paid transitions/s, workers off, c={args.concurrency} (median [range])"
    )
    for variant in variants:
        r = rates[variant]
        print(f"  {variant:<20} {statistics.median(r):6.0f}/s  [{min(r):.0f}-{max(r):.0f}]")
    totals = {}
    for variant in variants:
        print(f"  CPU per transition, {variant}:")
        print("\n".join(meters[variant].report(counts[variant], "transition")))
        totals[variant] = 1000 * sum(meters[variant].spent.values()) / max(1, counts[variant])
    print(f"  added by events: {totals['events'] - totals['no events']:+.3f} ms per transition")


async def delivery_rate(procs: ServiceProcesses, args: argparse.Namespace, receiver_url: str) -> None:
    merchant_id = await create_bench_merchant(procs)
    conn = await procs.db.admin()
    try:
        for endpoints_n, concurrency in ((1, args.per_endpoint), (16, 64)):
            # Build the backlog with no worker running, then let one session process drain it.
            await procs.restart_session({"PAYGATE_SESSION_WORKERS": "false"})
            async with grpc.aio.insecure_channel(procs.addr("session")) as channel:
                stub = session_pb2_grpc.SessionServiceStub(channel)
                events = merchant_events_pb2_grpc.MerchantEventsServiceStub(channel)
                owner = await create_bench_merchant(procs)
                endpoint_ids = [
                    await _endpoint(events, owner, f"{receiver_url}/{i}", ["session.paid"])
                    for i in range(endpoints_n)
                ]
                per = args.deliveries // endpoints_n
                ids = await create_sessions(stub, owner, per)
                await _pay(stub, ids, 32)
            await conn.execute("UPDATE session.outbox SET status = 'skipped' WHERE status = 'pending'")
            wanted = per * endpoints_n
            hello = await _hello_world(receiver_url + "/hello", concurrency, 3.0)
            await procs.restart_session({})
            meter = OwnDatabaseCpuMeter({"session service": procs.pid("session")})
            meter.postmaster = await _postmaster(conn)
            meter.start()
            begin = time.perf_counter()
            done = await _wait_delivered(conn, endpoint_ids, wanted, 300)
            elapsed = time.perf_counter() - begin
            meter.stop()
            rate = done / elapsed
            print(
                f"deliveries, {endpoints_n} endpoint(s): {done} in {elapsed:.2f} s = {rate:.0f}/s; aiohttp hello-world POST "
                f"at concurrency {concurrency}: {hello:.0f}/s; ratio {100 * rate / hello:.1f} %"
            )
            print("\n".join(meter.report(done, "delivery")))
            hello_after = await _hello_world(receiver_url + "/hello", concurrency, 3.0)
            print(f"  hello-world again right after: {hello_after:.0f}/s")
    finally:
        await conn.close()
    del merchant_id


class BenchProcesses(ServiceProcesses):
    async def restart_session(self, env_extra: dict[str, str]) -> None:
        proc = self.procs.get("session")
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=20)
        saved = dict(self.extra_env)
        self.extra_env.update(env_extra)
        try:
            await self.start(["session"])
        finally:
            self.extra_env = saved


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=600, help="sessions per fulfilment round and variant")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--deliveries", type=int, default=3000, help="backlog per delivery measurement")
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--seconds", type=float, default=3.0, help="per transitions window")
    parser.add_argument("--per-endpoint", type=int, default=4, help="PAYGATE_MERCHANT_WEBHOOK_PER_ENDPOINT")
    args = parser.parse_args()
    port = free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    receiver_url = f"http://127.0.0.1:{port}/hook"
    try:
        async with bench_database() as db:
            procs = BenchProcesses(
                db,
                extra_env={
                    "PAYGATE_ALLOW_LOOPBACK_WEBHOOKS": "true",
                    "PAYGATE_OUTBOX_CONCURRENCY": "64",
                    "PAYGATE_MERCHANT_WEBHOOK_PER_ENDPOINT": str(args.per_endpoint),
                },
            )
            await procs.start(["keys", "billing", "session"])
            try:
                print(
                    f"merchant events benchmark: {args.rounds} rounds, {args.sessions} sessions per variant"
                )
                if not args.skip_cpu:
                    await transitions(procs, args)
                    await procs.restart_session({})
                    await cpu_per_session(procs, args, receiver_url)
                await delivery_rate(procs, args, receiver_url)
            finally:
                await procs.stop()
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(main())
