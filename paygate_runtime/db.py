"""One asyncpg pool per service, connected as the service's runtime role with its schema on the search path."""

from __future__ import annotations

import asyncpg


async def create_pool(dsn: str, schema: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        # Unqualified names in a service's SQL resolve to its own schema only; other schemas are not even
        # reachable because the runtime role has no USAGE on them.
        server_settings={"search_path": schema, "application_name": f"paygate-{schema}"},
        command_timeout=30,
    )
    assert pool is not None
    return pool
