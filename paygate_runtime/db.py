"""One asyncpg pool per service, connected as the service's runtime role with its schema on the search path."""

from __future__ import annotations

import asyncio

import asyncpg


async def keep_session_state(connection: asyncpg.Connection) -> None:
    """The pool's reset on release, after asyncpg's own (which still rolls back a transaction left open and drops
    listener callbacks): nothing more. asyncpg's default sends `SELECT pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL` on every release, a round trip and four statements per pooled query, which a burst
    pays dozens of times per payment. Nothing here keeps session state on a pooled connection: settings are
    `SET LOCAL`/`set_config(..., true)`, locks are `pg_advisory_xact_lock`, cursors live in transactions, LISTEN
    and the migration locks use dedicated connections, and the chain watcher's session lock closes its
    connection instead of returning it (webhook_gateway/chain/watcher.py). tests/unit/runtime/test_db_pool.py
    holds that rule."""


async def create_pool(dsn: str, schema: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        # Unqualified names in a service's SQL resolve to its own schema only; other schemas are not even
        # reachable because the runtime role has no USAGE on them.
        server_settings={"search_path": schema, "application_name": f"paygate-{schema}"},
        command_timeout=30,
        reset=keep_session_state,
    )
    assert pool is not None
    return pool


# Health checks whose connections are still on their way back to the pool (see database_answers); held so that
# the event loop keeps them until they finish.
_returning: set[asyncio.Task[None]] = set()


async def database_answers(pool: asyncpg.Pool, timeout_s: float) -> bool:
    """Whether the database answers `SELECT 1` within `timeout_s`, on one of the pool's connections (taken when
    one is free, as any request's would be). The verdict does not wait for that connection to go back to the
    pool: after a query times out on a database that stops answering without closing anything (a partition),
    asyncpg returns the connection only once its cancel request gives up, the pool's command_timeout (30 s)
    later, and a readiness check must not take that long to say no. The return finishes in the background."""
    verdict: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def check() -> None:
        try:
            async with pool.acquire() as connection:
                try:
                    await connection.fetchval("SELECT 1", timeout=timeout_s)
                except Exception:
                    verdict.set_result(False)
                else:
                    verdict.set_result(True)
        except Exception:
            if not verdict.done():
                verdict.set_result(False)  # no connection to be had (refused, reset, pool closing)
        finally:
            if not verdict.done():
                verdict.cancel()

    task = asyncio.create_task(check())
    _returning.add(task)
    task.add_done_callback(_returning.discard)
    try:
        return await asyncio.shield(verdict)
    except asyncio.CancelledError:
        task.cancel()
        raise
