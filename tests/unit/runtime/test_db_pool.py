"""The service pool skips asyncpg's per-release reset query (paygate_runtime/db.py). That is only sound while no
product code leaves session state on a pooled connection, so this file holds that rule on the code, and shows on a
real PostgreSQL what the pool still does (roll back a transaction left open) and what the chain watcher's session
lock does instead of going back to the pool."""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg

from paygate_runtime.db import create_pool
from support.database import TestDatabase
from webhook_gateway.chain.watcher import WatcherLock

ROOT = Path(__file__).resolve().parents[3]
PRODUCT = ["paygate_runtime", "session_service", "billing_service", "keys_service", "webhook_gateway"]

# Session-level state a pooled connection would carry to its next borrower. Dedicated connections
# (asyncpg.connect: LISTEN, migrations, the bootstrap) may hold it; the chain watcher's lock closes its
# connection instead of returning it.
SESSION_STATE = re.compile(
    r"""pg_(try_)?advisory_lock\(|["']\s*LISTEN\s|["']\s*SET\s+(?!LOCAL\b)(SESSION\s+)?[a-z_.]+\s*(=|TO\b)"""
    r"""|set_config\([^)]*,\s*false\s*\)|CREATE\s+TEMP|DECLARE\s+\w+\s+(NO\s+SCROLL\s+|SCROLL\s+)?CURSOR\s+WITH\s+HOLD""",
    re.MULTILINE,
)
ALLOWED = {
    "paygate_runtime/schemas.py",  # bootstrap, on its own connection
    "paygate_runtime/migrations.py",  # migration lock, on its own connection
    "webhook_gateway/chain/watcher.py",  # WatcherLock: terminated, never released to the pool
}


def test_no_product_code_leaves_session_state_on_a_pooled_connection() -> None:
    found = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in ALLOWED:
                continue
            for match in SESSION_STATE.finditer(path.read_text(encoding="utf-8")):
                found.append(f"{relative}: {match.group(0).strip()}")
    assert found == [], found


def test_the_rule_notices_session_state() -> None:
    for sql in (
        "SELECT pg_advisory_lock(1)",
        "SELECT pg_try_advisory_lock(1)",
        'execute("LISTEN channel")',
        'conn.execute("SET statement_timeout = 5")',
        '"""\n    SET SESSION work_mem TO 64"""',
        "SELECT set_config('x.y', '1', false)",
        "CREATE TEMP TABLE t (x int)",
    ):
        assert SESSION_STATE.search(sql), sql
    for sql in ("SELECT pg_advisory_xact_lock(1)", "SET LOCAL lock_timeout = '1s'", "UPDATE t\n   SET x = 1"):
        assert not SESSION_STATE.search(sql), sql


async def test_a_transaction_left_open_is_rolled_back_on_release(database: TestDatabase) -> None:
    pool = await create_pool(database.admin_dsn, "public", min_size=1, max_size=1)
    try:
        conn = await pool.acquire()
        await conn.execute("CREATE TABLE IF NOT EXISTS public.pool_reset_probe (x int)")
        await conn.execute("BEGIN")
        await conn.execute("INSERT INTO public.pool_reset_probe VALUES (1)")
        await pool.release(conn)
        async with pool.acquire() as again:
            assert not again.is_in_transaction()
            assert await again.fetchval("SELECT count(*) FROM public.pool_reset_probe") == 0
    finally:
        await pool.close()


async def test_the_watcher_lock_is_freed_when_dropped_not_handed_to_the_next_borrower(
    database: TestDatabase,
) -> None:
    pool = await create_pool(database.admin_dsn, "public", min_size=1, max_size=1)
    other = await asyncpg.connect(database.admin_dsn)
    key = "SELECT pg_try_advisory_lock(hashtextextended('paygate-chain-watcher:' || $1::text, 0))"
    try:
        lock = WatcherLock(pool, 424242)
        assert await lock.try_acquire()
        assert not await other.fetchval(key, "424242")
        await lock._drop()  # the path a failed health check takes: no unlock was sent
        async with pool.acquire() as borrowed:
            held = await borrowed.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            )
            assert held == 0
        assert await other.fetchval(key, "424242")
    finally:
        await other.close()
        await pool.close()
