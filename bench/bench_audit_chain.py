"""The hash-chained audit's cost on the insert path (issue 20), A/B on one durable PostgreSQL (fsync on).

    .venv/bin/python bench/bench_audit_chain.py [--rounds 4] [--seconds 3] [--concurrency 32]

Each round runs three variants back to back (this shared machine's speed drifts, so compare within a round),
every connection doing single-row autocommit INSERTs of a session audit row:
  plain       a twin of session.audit_log without the chain trigger: the cost before the chain;
  chained-1   session.audit_log, every row of ONE merchant: one chain, whose head row lock serialises the
              writers commit by commit (the WAL flush included): the worst case, one busy merchant;
  chained-N   session.audit_log, each connection its own merchant: N chains, the trigger's CPU without waits.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline import bench_database

from support.database import TestDatabase

_TWIN = """
CREATE TABLE session.audit_plain (
    id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(), session_id uuid,
    merchant_id uuid, actor text NOT NULL, action text NOT NULL, detail jsonb NOT NULL DEFAULT '{}'::jsonb);
CREATE INDEX ON session.audit_plain (session_id, id);
GRANT SELECT, INSERT ON session.audit_plain TO paygate_session;
GRANT USAGE ON SEQUENCE session.audit_plain_id_seq TO paygate_session;
"""


async def _variant(
    db: TestDatabase, variant: str, seconds: float, concurrency: int
) -> tuple[float, float, float]:
    conns = [await asyncpg.connect(db.runtime_dsn("session")) for _ in range(concurrency)]
    one = uuid.uuid4()
    merchants = [one if variant == "chained-1" else uuid.uuid4() for _ in range(concurrency)]
    table = "session.audit_plain" if variant == "plain" else "session.audit_log"
    sql = (
        f"INSERT INTO {table} (session_id, merchant_id, actor, action, detail) "
        "VALUES ($1, $2, 'api', 'session_paid', $3)"
    )
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def worker(i: int) -> int:
        done = 0
        while time.perf_counter() < stop:
            started = time.perf_counter()
            await conns[i].execute(
                sql, uuid.uuid4(), merchants[i], '{"amount_minor": 2500, "currency": "EUR"}'
            )
            latencies.append(time.perf_counter() - started)
            done += 1
        return done

    began = time.perf_counter()
    try:
        counts = await asyncio.gather(*(worker(i) for i in range(concurrency)))
    finally:
        for conn in conns:
            await conn.close()
    elapsed = time.perf_counter() - began
    latencies.sort()
    return (
        sum(counts) / elapsed,
        latencies[len(latencies) // 2] * 1000,
        latencies[int(len(latencies) * 0.99)] * 1000,
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    variants = ("plain", "chained-1", f"chained-{args.concurrency}")
    results: dict[str, list[tuple[float, float, float]]] = {v: [] for v in variants}
    print(f"audit hash chain: {args.concurrency} connections, single-row autocommit INSERTs, fsync on")
    async with bench_database() as db:
        admin = await asyncpg.connect(db.admin_dsn)
        try:
            await admin.execute(_TWIN)
        finally:
            await admin.close()
        for round_ in range(1, args.rounds + 1):
            for variant in variants:
                rate, p50, p99 = await _variant(db, variant, args.seconds, args.concurrency)
                results[variant].append((rate, p50, p99))
                print(
                    f" round {round_} {variant:12s} {rate:7.0f} rows/s   p50 {p50:6.2f} ms   p99 {p99:7.2f} ms"
                )
    print("median of the rounds")
    for variant, figures in results.items():
        rate = statistics.median(f[0] for f in figures)
        p50 = statistics.median(f[1] for f in figures)
        print(f"  {variant:12s} {rate:7.0f} rows/s   p50 {p50:6.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
