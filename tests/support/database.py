"""A throwaway PostgreSQL for the test session: embedded by default, or PAYGATE_TEST_DATABASE_URL's server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from paygate_dev.embedded_pg import EmbeddedPostgres
from paygate_runtime.migrations import migrate
from paygate_runtime.schemas import SERVICES, bootstrap_database, dsn_for_role

# A throwaway database never needs to survive a crash; skipping fsync makes each test's commits cheap.
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "400",
}


@dataclass
class TestDatabase:
    __test__ = False  # a helper, not a test class

    admin_dsn: str  # superuser, connected to the test database
    database: str
    _embedded: EmbeddedPostgres | None = None
    _server_admin_dsn: str = ""
    _tables: list[str] = field(default_factory=list)
    _admin: asyncpg.Connection | None = None

    def runtime_dsn(self, service: str) -> str:
        return dsn_for_role(self.admin_dsn, SERVICES[service].runtime_role, self.database)

    def owner_dsn(self, service: str) -> str:
        return dsn_for_role(self.admin_dsn, SERVICES[service].owner_role, self.database)

    @contextlib.asynccontextmanager
    async def admin_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A superuser connection to the test database, closed on leaving."""
        conn = await self.admin()
        try:
            yield conn
        finally:
            await conn.close()

    @contextlib.asynccontextmanager
    async def runtime_connection(self, service: str) -> AsyncIterator[asyncpg.Connection]:
        """A connection as `service`'s runtime role with its schema on the search path, as the service has."""
        conn = await asyncpg.connect(
            self.runtime_dsn(service), server_settings={"search_path": SERVICES[service].schema}
        )
        try:
            yield conn
        finally:
            await conn.close()

    async def reset(self) -> None:
        """Empty every service table (not the migration records) in one statement: fast and complete."""
        if self._admin is None or self._admin.is_closed():
            self._admin = await asyncpg.connect(self.admin_dsn)
        if not self._tables:
            rows = await self._admin.fetch(
                """SELECT schemaname, tablename FROM pg_tables
                    WHERE schemaname = ANY($1::text[]) AND tablename <> 'schema_migrations'""",
                [spec.schema for spec in SERVICES.values()],
            )
            self._tables = [f'"{r["schemaname"]}"."{r["tablename"]}"' for r in rows]
        if not self._tables:
            return
        # The append-only tables (audit logs, histories, processed events, issued invoices, the inbox) have
        # triggers that refuse TRUNCATE for every role, the owner included (issue 20). A test reset is the one
        # legitimate exception, so it says so explicitly: as the superuser, for this transaction only,
        # session_replication_role = replica skips ordinary triggers. That is narrower than disabling the
        # triggers (ALTER TABLE would change the schema under concurrent sessions and could be left disabled
        # by a crash between the statements); SET LOCAL ends with the transaction whatever happens.
        truncate = f"TRUNCATE {', '.join(self._tables)} RESTART IDENTITY CASCADE"
        try:
            # A connection that an earlier test left inside a transaction would make TRUNCATE wait forever.
            await self._truncate_bypassing_triggers(truncate, lock_timeout="10s")
        except asyncpg.LockNotAvailableError:
            holders = await self._admin.fetch(
                """SELECT pid, usename, state, left(query, 200) AS query, pg_terminate_backend(pid) AS ended
                     FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"""
            )
            warnings.warn(
                f"test database reset terminated leftover connections: {[dict(h) for h in holders]}",
                stacklevel=1,
            )
            await self._truncate_bypassing_triggers(truncate, lock_timeout="10s")

    async def _truncate_bypassing_triggers(self, truncate: str, *, lock_timeout: str) -> None:
        assert self._admin is not None
        async with self._admin.transaction():
            await self._admin.execute(
                f"SET LOCAL lock_timeout = '{lock_timeout}'; SET LOCAL session_replication_role = replica"
            )
            await self._admin.execute(truncate)

    async def admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.admin_dsn)

    def stop_embedded_now(self) -> None:
        """Stop the embedded server from any thread (also the hang guard's last act) and, since a throwaway
        database leaves nothing behind, remove its data folder."""
        if self._embedded is not None:
            self._embedded.stop()
            shutil.rmtree(self._embedded.pgdata.parent, ignore_errors=True)

    async def close(self) -> None:
        if self._admin is not None:
            await self._admin.close()
        if self._embedded is not None:
            await asyncio.to_thread(self.stop_embedded_now)
        elif self._server_admin_dsn:
            conn = await asyncpg.connect(self._server_admin_dsn)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            finally:
                await conn.close()


async def start_test_database(*, durable: bool = False) -> TestDatabase:
    external = os.environ.get("PAYGATE_TEST_DATABASE_URL")
    embedded = None
    if external:
        server_admin = external
        database = f"paygate_test_{uuid.uuid4().hex[:8]}"
    else:
        folder = Path(tempfile.mkdtemp(prefix="paygate-testdb-"))
        embedded = EmbeddedPostgres(
            folder / "pgdata", {"max_connections": "400"} if durable else FAST_SETTINGS
        )
        server_admin = await asyncio.to_thread(embedded.start)
        database = "paygate_test"
    if external:
        # pytest-xdist workers bootstrap their databases on one server at once; the roles they create are
        # cluster-wide, and bootstrap_database's advisory lock is per database, so serialise them here on the
        # admin DSN's own database, which every worker shares.
        admin = await asyncpg.connect(server_admin)
        try:
            await admin.execute("SELECT pg_advisory_lock(7243002)")
            await bootstrap_database(server_admin, database)
        finally:
            await admin.close()
    else:
        await bootstrap_database(server_admin, database)
    user = urlsplit(server_admin).username or "postgres"
    admin_dsn = dsn_for_role(server_admin, user, database)
    db = TestDatabase(admin_dsn, database, embedded, server_admin if external else "")
    for service in SERVICES:
        await migrate(db.owner_dsn(service), service)
    return db
