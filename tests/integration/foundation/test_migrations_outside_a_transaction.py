"""An index on a table the webhook reply path writes is built without blocking those writes.

A plain CREATE INDEX holds a SHARE lock for the whole build, and every INSERT into the table waits for it: on
`inbox_events`, which holds every webhook ever received, that stops the gateway's replies for as long as the
build reads the table, while the migration Job runs beside the live pods. Such an index is built with
CREATE INDEX CONCURRENTLY, which PostgreSQL refuses inside a transaction, so the migration runner runs a file
that says so outside one (`paygate_runtime.migrations`).
"""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg
import pytest

from paygate_runtime.migrations import Migration, MigrationError, migrate
from support.database import TestDatabase

ROOT = Path(__file__).resolve().parents[3]
# The tables a webhook reply inserts into, and the migration that created each (its indexes were built on an
# empty table).
REPLY_PATH_TABLES = {"inbox_events": ("webhook_gateway", "0002")}
_INDEX_ON = re.compile(
    r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(CONCURRENTLY\s+)?(?:IF NOT EXISTS\s+)?\w+\s+ON\s+(\w+)", re.I
)


def test_every_later_index_on_a_reply_path_table_is_built_concurrently() -> None:
    for table, (package, created_in) in REPLY_PATH_TABLES.items():
        for path in sorted((ROOT / package / "migrations").glob("*.sql")):
            if path.name.startswith(created_in):
                continue
            sql = path.read_text()
            for concurrently, on in _INDEX_ON.findall(sql):
                if on == table:
                    assert concurrently, f"{path.name} builds an index on {table} that blocks webhook replies"
                    assert Migration(path.name[:4], path.name, sql).outside_transaction, path.name


async def _indexes(conn: asyncpg.Connection) -> dict[str, bool]:
    rows = await conn.fetch(
        """SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE c.relname LIKE 'probe_%'"""
    )
    return {r["relname"]: r["indisvalid"] for r in rows}


async def test_a_file_marked_outside_a_transaction_runs_each_statement_alone_and_is_recorded(
    clean_db: TestDatabase,
) -> None:
    marked = Migration(
        "9990",
        "9990_probe_concurrently.sql",
        "-- paygate: outside a transaction\n"
        "-- A failed concurrent build leaves an invalid index; a rerun drops it first.\n"
        "DROP INDEX CONCURRENTLY IF EXISTS probe_concurrently;\n"
        "CREATE INDEX CONCURRENTLY probe_concurrently ON inbox_events (provider, provider_reference)\n"
        "    WHERE outcome = 'probe';\n",
    )
    applied = await migrate(clean_db.owner_dsn("gateway"), "gateway", extra=[marked])
    assert applied == ["9990_probe_concurrently.sql"]
    async with clean_db.admin_connection() as admin:
        assert await _indexes(admin) == {"probe_concurrently": True}
        recorded = await admin.fetchval(
            "SELECT count(*) FROM gateway.schema_migrations WHERE version = '9990'"
        )
        assert recorded == 1
        await admin.execute("DROP INDEX gateway.probe_concurrently")
        await admin.execute("DELETE FROM gateway.schema_migrations WHERE version = '9990'")


async def test_an_unmarked_concurrent_build_is_refused_by_postgresql_and_nothing_is_recorded(
    clean_db: TestDatabase,
) -> None:
    unmarked = Migration(
        "9991",
        "9991_probe_unmarked.sql",
        "CREATE INDEX CONCURRENTLY probe_unmarked ON inbox_events (provider);\n",
    )
    with pytest.raises(asyncpg.ActiveSQLTransactionError):
        await migrate(clean_db.owner_dsn("gateway"), "gateway", extra=[unmarked])
    async with clean_db.admin_connection() as admin:
        assert await _indexes(admin) == {}
        assert not await admin.fetchval(
            "SELECT count(*) FROM gateway.schema_migrations WHERE version = '9991'"
        )


def test_a_marked_file_holds_only_statements_that_can_run_alone() -> None:
    with pytest.raises(MigrationError, match="outside a transaction"):
        Migration(
            "9992",
            "9992_probe_block.sql",
            "-- paygate: outside a transaction\nDO $$ BEGIN PERFORM 1; END $$;\n",
        ).statements()
