"""Billing benchmark (a script, not a test): IssueInvoice rate under contention, with durable commits.

Runs the billing service as its own process (`paygate serve billing`) against an embedded PostgreSQL with
fsync on, and measures in the same run the empty grpc.aio unary call and a durable one-row commit, so that
the ratios hold whatever else the machine is doing. Then loads a year of invoices (100k for one merchant)
and times RevenueSummary and its plan.

    .venv/bin/python bench/bench_billing.py [--seconds 5] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
import uuid
from datetime import UTC, datetime

import grpc
from baseline import (
    Figures,
    ServiceProcesses,
    bench_database,
    empty_unary_baseline,
    measure,
    pg_commit_baseline,
)

from billing_service.adapters.invoice_repository import REVENUE_SQL
from paygate.billing.v1 import billing_pb2, billing_pb2_grpc
from paygate.common.v1 import common_pb2

GOAL_ONE_MERCHANT = 500.0


def issue_call(stub: billing_pb2_grpc.BillingServiceStub, merchants: list[str]):  # type: ignore[no-untyped-def]  # returns the bench's call closure
    cycle = itertools.cycle(merchants)

    async def call() -> None:
        await stub.IssueInvoice(
            billing_pb2.IssueInvoiceRequest(
                merchant_id=next(cycle),
                mode=common_pb2.MODE_LIVE,
                session_id=str(uuid.uuid4()),
                amount=common_pb2.Money(amount_minor="9999", currency="EUR", exponent=2),
                buyer=billing_pb2.Party(email="buyer@example.com"),
            ),
            timeout=30,
        )

    return call


async def check_gapless(admin_dsn: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    try:
        rows = await conn.fetch(
            """SELECT merchant_id, count(*) AS n, max(sequence) AS top, count(DISTINCT sequence) AS distinct_n
                 FROM billing.invoices GROUP BY merchant_id, mode, counter_period"""
        )
    finally:
        await conn.close()
    bad = [r for r in rows if not r["n"] == r["top"] == r["distinct_n"]]
    total = sum(r["n"] for r in rows)
    return f"{total} invoices in {len(rows)} sequences, gapless: {'yes' if not bad else f'NO ({len(bad)} broken)'}"


async def revenue_at_scale(admin_dsn: str, stub: billing_pb2_grpc.BillingServiceStub) -> None:
    import asyncpg

    merchant = f"revenue-{uuid.uuid4()}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        started = time.perf_counter()
        await conn.execute(
            """INSERT INTO billing.invoices (id, merchant_id, mode, kind, number, counter_period, sequence,
                   session_id, seller, buyer, line_items, currency, exponent, subtotal, tax_rate_bps, tax, total,
                   issued_at)
               SELECT gen_random_uuid(), $1, 'live', 'invoice', 'INV-2025-' || lpad(g::text, 6, '0'), 0, g,
                      gen_random_uuid()::text, '{"name": "Acme GmbH", "address": {"lines": ["Hauptstr. 1"]}}',
                      '{"email": "buyer@example.com"}',
                      '[{"description": "API access", "quantity": 1, "unit_amount": "9999"}]',
                      CASE WHEN g % 10 = 0 THEN 'USD' ELSE 'EUR' END, 2, 9999, 0, 0, 9999,
                      timestamptz '2025-01-01' + (g * 315.36) * interval '1 second'
                 FROM generate_series(1, 100000) g""",
            merchant,
        )
        # Other merchants' year of data around it, as in a shared production table.
        await conn.execute(
            """INSERT INTO billing.invoices (id, merchant_id, mode, kind, number, counter_period, sequence,
                   session_id, seller, buyer, line_items, currency, exponent, subtotal, tax_rate_bps, tax, total,
                   issued_at)
               SELECT gen_random_uuid(), 'other-' || (g % 200), 'live', 'invoice', 'INV-2025-' || g, 0, g,
                      gen_random_uuid()::text, '{"name": "Other"}', '{}', '[]', 'EUR', 2, 500, 0, 0, 500,
                      timestamptz '2025-01-01' + (g * 157.68) * interval '1 second'
                 FROM generate_series(1, 200000) g"""
        )
        await conn.execute("VACUUM ANALYZE billing.invoices")
        print(
            f"loaded 100,000 invoices for one merchant (+200,000 of 200 others) over 2025 in {time.perf_counter() - started:.1f} s"
        )
        await conn.execute("SET search_path = billing")
        year = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
        plans = [(unit, "") for unit in ("day", "week", "month")] + [("day", "enable_seqscan = off")]
        for unit, setting in plans:
            await conn.execute(f"SET {setting or 'enable_seqscan = on'}")
            plan = await conn.fetchval(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + REVENUE_SQL, merchant, "live", *year, unit
            )
            plan = json.loads(plan) if isinstance(plan, str) else plan
            scan = plan[0]["Plan"]
            while scan.get("Plans"):
                scan = scan["Plans"][0]
            print(
                f"  EXPLAIN revenue by {unit:<5}{' (' + setting + ')' if setting else ''}: {scan['Node Type']} on {scan.get('Index Name', '-')}, "
                f"heap fetches {scan.get('Heap Fetches', '-')}, execution {plan[0]['Execution Time']:.1f} ms"
            )
    finally:
        await conn.close()
    for interval, name in ((billing_pb2.INTERVAL_DAY, "day"), (billing_pb2.INTERVAL_MONTH, "month")):
        request = billing_pb2.RevenueSummaryRequest(
            merchant_id=merchant, mode=common_pb2.MODE_LIVE, interval=interval
        )
        getattr(request, "from").FromDatetime(year[0])
        request.to.FromDatetime(year[1])
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            reply = await stub.RevenueSummary(request, timeout=30)
            timings.append((time.perf_counter() - started) * 1000)
        print(
            f"  RevenueSummary RPC, a year by {name:<5}: {len(reply.buckets)} buckets, "
            f"best {min(timings):.1f} ms, median {sorted(timings)[2]:.1f} ms"
        )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    c, s = args.concurrency, args.seconds

    print(f"billing benchmark: concurrency {c}, {s:.0f} s per figure, durable commits (fsync on)")
    empty = await empty_unary_baseline(c, s)
    print(empty.line(f"empty grpc.aio unary, concurrency {c}"))
    async with bench_database() as db:
        print((await pg_commit_baseline(db.admin_dsn, c, s)).line(f"durable 1-row commit, concurrency {c}"))
        services = ServiceProcesses(db, extra_env={"PAYGATE_DB_POOL_MAX": "20"})
        await services.start(["billing"])
        try:
            async with grpc.aio.insecure_channel(services.addr("billing")) as channel:
                stub = billing_pb2_grpc.BillingServiceStub(channel)
                await channel.channel_ready()
                one = [f"hot-{uuid.uuid4()}"]
                many = [f"spread-{uuid.uuid4()}" for _ in range(100)]
                await measure(issue_call(stub, one + many), 4, 1.0)  # warm connections and the plan cache
                results: dict[str, Figures] = {}
                results["one"] = await measure(issue_call(stub, one), c, s)
                print(results["one"].line("IssueInvoice, 1 merchant (hot counter row)"))
                results["many"] = await measure(issue_call(stub, many), c, s)
                print(results["many"].line("IssueInvoice, 100 merchants"))
                print(await check_gapless(db.admin_dsn))
                print("ratios to the empty grpc.aio unary call:")
                for key, label in (("one", "1 merchant"), ("many", "100 merchants")):
                    ratio = results[key].rate_per_s / empty.rate_per_s
                    print(f"  {label:<14} {ratio:6.1%}")
                verdict = "met" if results["one"].rate_per_s >= GOAL_ONE_MERCHANT else "NOT met"
                print(f"goal >= {GOAL_ONE_MERCHANT:.0f} invoices/s for one merchant: {verdict}")
                await revenue_at_scale(db.admin_dsn, stub)
        finally:
            await services.stop()


if __name__ == "__main__":
    asyncio.run(main())
