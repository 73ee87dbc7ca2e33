"""Webhook gateway benchmark: signed Stripe webhook replies/s and latency, next to an aiohttp hello-world
POST server measured in the same run on the same machine, and the end-to-end rate webhook -> fulfilled
session. Durable commits (fsync on); every service a separate `paygate serve` process, as in production.

    .venv/bin/python bench/bench_gateway.py [--seconds 4] [--sessions 1500]

Phases:
1. hello-world: an aiohttp app in its own process whose POST handler reads the body and answers JSON;
   the same client, the same body size, concurrency 32 and 64;
2. webhook replies alone: the same signed events retyped `payment_intent.created`, which the gateway
   verifies, stores and answers but never applies (no session service work behind the reply);
3. webhook replies: `payment_intent.succeeded` for real, fresh sessions, signed ahead of time, POSTed at
   concurrency 32 and 64. Each reply means: body read, Stripe signature verified, JSON parsed, event
   normalised, one durable INSERT committed. The apply (session service, then billing and keys) runs in
   the background meanwhile, so it competes for the same two cores; the inbox is drained between phases;
4. end to end: N fresh sessions paid by webhook at concurrency 64, timed until every session has its
   invoice, customer key and access token (fulfilment_status = done).

The client is aiohttp on 127.0.0.1 with a connection pool bounded to the concurrency and a timeout per
request; it runs in this process, on the same two cores as everything else.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline import (
    CpuMeter,
    Exhausted,
    Figures,
    ServiceProcesses,
    bench_database,
    create_bench_merchant,
    create_sessions,
    free_port,
    measure,
    wait_fulfilled,
)

from paygate.session.v1 import session_pb2_grpc
from paygate_dev.devtools.signing import stripe_delivery
from paygate_dev.devtools.stripe_fixtures import build_stripe_event

REQUEST_TIMEOUT_S = 10.0
CONCURRENCIES = (32, 64)
# Sessions prepared per timed second of a reply phase; more than the gateway can take, so none run out.
EVENTS_PER_SECOND_BUDGET = 2500

HELLO_SERVER = """
import sys
from aiohttp import web
async def hello(request):
    await request.read()
    return web.json_response({"received": True, "event_id": "evt_hello", "duplicate": False})
app = web.Application(client_max_size=1024 * 1024)
app.router.add_post("/webhooks/stripe", hello)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def _line(figures: Figures, label: str) -> str:
    return (
        f"  {label:<52} {figures.rate_per_s:8.0f}/s   p50 {figures.p50_ms:6.2f} ms   "
        f"p99 {figures.p99_ms:6.2f} ms   n={figures.count}"
    )


async def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError("server did not start")


async def _post_load(
    url: str, deliveries: Iterator[tuple[bytes, dict[str, str]]], concurrency: int, seconds: float
) -> Figures:
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    errors = 0
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def call() -> None:
            nonlocal errors
            try:
                raw, headers = next(deliveries)
            except StopIteration:
                raise Exhausted from None
            async with http.post(url, data=raw, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    errors += 1

        figures = await measure(call, concurrency, seconds, warmup=0.5)
    if errors:
        print(f"  !! {errors} replies were not 200")
    return figures


async def hello_world(body: bytes, seconds: float) -> dict[int, Figures]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", HELLO_SERVER, str(port)], stdout=subprocess.DEVNULL)
    try:
        await _wait_port(port, proc)
        headers = {"Content-Type": "application/json"}

        def same() -> Iterator[tuple[bytes, dict[str, str]]]:
            while True:
                yield body, headers

        return {
            c: await _post_load(f"http://127.0.0.1:{port}/webhooks/stripe", same(), c, seconds)
            for c in CONCURRENCIES
        }
    finally:
        proc.terminate()
        proc.wait()


async def _create_sessions(procs: ServiceProcesses, merchant_id: str, count: int) -> list[str]:
    async with grpc.aio.insecure_channel(procs.addr("session")) as channel:
        return await create_sessions(
            session_pb2_grpc.SessionServiceStub(channel), merchant_id, count, "stripe"
        )


def _signed(
    session_ids: list[str], secret: str, event_type: str | None = None
) -> list[tuple[bytes, dict[str, str]]]:
    """Signed `payment_intent.succeeded` events; with `event_type`, the same bodies retyped (e.g. to a type
    the gateway stores as ignored, to measure the reply path without any apply work behind it)."""
    now = int(time.time())
    deliveries = []
    for sid in session_ids:
        event = build_stripe_event("payment_intent.succeeded", sid, 999, "EUR")
        if event_type is not None:
            event["type"] = event_type
        deliveries.append(stripe_delivery(event, secret, now))
    return deliveries


async def _wait_drained(procs: ServiceProcesses, limit_s: float = 600) -> float:
    """Seconds until no event waits in the inbox and no paid session waits for fulfilment."""
    begin = time.perf_counter()
    conn = await procs.db.admin()
    try:
        while time.perf_counter() - begin < limit_s:
            waiting = await conn.fetchval(
                """SELECT (SELECT count(*) FROM gateway.inbox_events WHERE status = 'received')
                        + (SELECT count(*) FROM session.sessions WHERE status = 'paid' AND fulfilment_status <> 'done')"""
            )
            if waiting == 0:
                break
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    return time.perf_counter() - begin


async def webhook_replies(
    procs: ServiceProcesses, merchant_id: str, secret: str, seconds: float
) -> dict[int, Figures]:
    results: dict[int, Figures] = {}
    url = f"{procs.base_url}/webhooks/stripe"
    for c in CONCURRENCIES:
        ids = await _create_sessions(procs, merchant_id, int(EVENTS_PER_SECOND_BUDGET * (seconds + 0.5)))
        deliveries = _signed(ids, secret)
        results[c] = await _post_load(url, iter(deliveries), c, seconds)
        drained = await _wait_drained(procs)
        print(f"  (c={c}: background applies and fulfilment drained {drained:.1f} s after the phase)")
    return results


async def ingest_only(procs: ServiceProcesses, secret: str, seconds: float) -> dict[int, Figures]:
    url = f"{procs.base_url}/webhooks/stripe"
    results = {}
    for c in CONCURRENCIES:
        # Ignored events cost nothing to set up, and this path runs faster than paying ones: sign plenty.
        ids = [str(uuid.uuid4()) for _ in range(int(4 * EVENTS_PER_SECOND_BUDGET * (seconds + 0.5)))]
        results[c] = await _post_load(url, iter(_signed(ids, secret, "payment_intent.created")), c, seconds)
    return results


async def end_to_end(
    procs: ServiceProcesses, merchant_id: str, secret: str, sessions: int, meter: CpuMeter | None = None
) -> tuple[float, float]:
    ids = await _create_sessions(procs, merchant_id, sessions)
    deliveries = _signed(ids, secret)
    wanted = [uuid.UUID(i) for i in ids]
    url = f"{procs.base_url}/webhooks/stripe"
    connector = aiohttp.TCPConnector(limit=64)
    conn = await procs.db.admin()
    try:
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        ) as http:
            pending = iter(deliveries)
            if meter is not None:
                meter.start()
            begin = time.perf_counter()

            async def sender() -> None:
                for raw, headers in pending:
                    async with http.post(url, data=raw, headers=headers) as response:
                        await response.read()
                        if response.status != 200:
                            raise RuntimeError(f"webhook answered {response.status}")

            await asyncio.gather(*(sender() for _ in range(64)))
            done = await wait_fulfilled(conn, wanted, begin, 600)
            elapsed = time.perf_counter() - begin
            if meter is not None:
                meter.stop()
    finally:
        await conn.close()
    return done / elapsed, elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--sessions", type=int, default=1500, help="sessions in the end-to-end phase")
    parser.add_argument("--e2e-only", action="store_true", help="only the end-to-end phase")
    args = parser.parse_args()
    print(f"webhook gateway benchmark: {os.cpu_count()} cores, durable commits (fsync on), client in-process")
    async with bench_database() as db:
        procs = ServiceProcesses(db, extra_env={"PAYGATE_LOG_LEVEL": "ERROR"})
        procs.ports["gateway"] = free_port()
        await procs.start(["keys", "billing", "session", "gateway"])
        try:
            merchant_id = await create_bench_merchant(procs)
            secret = procs.secrets["PAYGATE_STRIPE_WEBHOOK_SECRETS"]
            sample_body = _signed([str(uuid.uuid4())], secret)[0][0]
            if not args.e2e_only:
                hello = await hello_world(sample_body, args.seconds)
                print(f"aiohttp hello-world POST ({len(sample_body)}-byte body)")
                for c, figures in hello.items():
                    print(_line(figures, f"hello-world, concurrency {c}"))
                print(
                    "signed Stripe webhooks, reply path only (a type stored as ignored: verify + durable insert)"
                )
                alone = await ingest_only(procs, secret, args.seconds)
                for c, figures in alone.items():
                    print(_line(figures, f"webhook replies, no apply behind, concurrency {c}"))
                print("signed Stripe webhooks paying real sessions (apply and fulfilment run meanwhile)")
                replies = await webhook_replies(procs, merchant_id, secret, args.seconds)
                for c, figures in replies.items():
                    print(_line(figures, f"webhook replies, concurrency {c}"))
            meter = CpuMeter(
                {f"{name} service": procs.pid(name) for name in ("gateway", "session", "keys", "billing")}
            )
            rate, elapsed = await end_to_end(procs, merchant_id, secret, args.sessions, meter)
            print("end to end")
            print(
                f"  {'webhook -> fulfilled session (invoice, key, token)':<52} {rate:8.0f}/s   "
                f"{args.sessions} sessions in {elapsed:.2f} s"
            )
            print("  where the CPU goes per fulfilled session (psutil; all processes share both cores):")
            print("\n".join(meter.report(args.sessions, "fulfilled session")))
            if args.e2e_only:
                return
            print("ratios and goals")
            for c in CONCURRENCIES:
                ratio = alone[c].rate_per_s / hello[c].rate_per_s if hello[c].rate_per_s else 0.0
                print(f"  c={c}: webhook (no apply behind) / hello-world {100 * ratio:5.1f} %")
            for c in CONCURRENCIES:
                ratio = replies[c].rate_per_s / hello[c].rate_per_s if hello[c].rate_per_s else 0.0
                print(
                    f"  c={c}: webhook / hello-world {100 * ratio:5.1f} %   (goal >= 35 %: "
                    f"{'met' if ratio >= 0.35 else 'NOT met'})"
                )
            p99 = replies[64].p99_ms
            print(f"  c=64: webhook p99 {p99:.1f} ms   (goal < 100 ms: {'met' if p99 < 100 else 'NOT met'})")
            print(f"  fulfilled sessions/s {rate:.0f}   (goal >= 150: {'met' if rate >= 150 else 'NOT met'})")
        finally:
            await procs.stop()


if __name__ == "__main__":
    asyncio.run(main())
