"""One asyncpg pool per service, connected as the service's runtime role with its schema on the search path."""

from __future__ import annotations

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
