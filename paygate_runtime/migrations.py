"""Versioned SQL migrations per service, applied under a Postgres advisory lock.

Files are `<service>/migrations/NNNN_name.sql`. Each runs in its own transaction and is recorded with its
checksum in `<schema>.schema_migrations`, so running twice, or from two replicas at once, applies each file
exactly once; a file edited after it was applied is refused rather than silently diverging.

A file whose first line is `-- paygate: outside a transaction` runs its statements one by one, each committing
alone, and is recorded after the last. That is for CREATE INDEX CONCURRENTLY, which PostgreSQL refuses inside
a transaction and which an index on a table the live pods write needs (a plain build blocks every INSERT for
as long as it reads the table). Such a file holds plain statements, each ending a line with `;`, and must be
safe to run again from the start (a failed concurrent build leaves an invalid index behind: drop it first).
"""

from __future__ import annotations

import hashlib
import logging
import re
import zlib
from dataclasses import dataclass
from importlib import resources

import asyncpg

from paygate_runtime.schemas import SERVICES

log = logging.getLogger(__name__)

_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


OUTSIDE_TRANSACTION = "-- paygate: outside a transaction"


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def outside_transaction(self) -> bool:
        return self.sql.lstrip().startswith(OUTSIDE_TRANSACTION)

    def statements(self) -> list[str]:
        """The statements of a file run outside a transaction, one by one. Only plain statements ending a
        line with `;`: a dollar-quoted body (a function, a DO block) cannot be split safely, and has no
        reason to run outside a transaction."""
        if "$$" in self.sql:
            raise MigrationError(f"{self.name}: a file run outside a transaction holds no dollar-quoted body")
        body = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        return [part.strip() for part in re.split(r";\s*(?:\n|$)", body) if part.strip()]


def load_migrations(service: str) -> list[Migration]:
    package = {"gateway": "webhook_gateway"}.get(service, f"{service}_service")
    folder = resources.files(package) / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(match.group(1), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{service}: two migrations share a version: {versions}")
    return found


async def migrate(owner_dsn: str, service: str, *, extra: list[Migration] | None = None) -> list[str]:
    """Apply pending migrations of one service as its owner role. Returns the names applied. `extra`: more
    migrations after the service's own (tests)."""
    spec = SERVICES[service]
    migrations = load_migrations(service) + list(extra or [])
    conn = await asyncpg.connect(owner_dsn, server_settings={"search_path": spec.schema})
    applied_now: list[str] = []
    lock_key = zlib.crc32(f"paygate-migrate-{spec.schema}".encode())
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", lock_key)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version text PRIMARY KEY,
                       name text NOT NULL,
                       checksum text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = {
                r["version"]: r
                for r in await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
            }
            for migration in migrations:
                previous = done.get(migration.version)
                if previous is not None:
                    if previous["checksum"] != migration.checksum:
                        raise MigrationError(
                            f"{service}: {migration.name} changed after it was applied; add a new migration instead"
                        )
                    continue
                if migration.outside_transaction:
                    # Each statement commits alone; the record comes last, so a failure part-way leaves the
                    # file pending and the next run starts it again.
                    for statement in migration.statements():
                        await conn.execute(statement)
                    await _record(conn, migration)
                else:
                    async with conn.transaction():
                        await conn.execute(migration.sql)
                        await _record(conn, migration)
                applied_now.append(migration.name)
                log.info("migration applied", extra={"migration": migration.name, "schema": spec.schema})
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock_key)
    finally:
        await conn.close()
    return applied_now


async def _record(conn: asyncpg.Connection, migration: Migration) -> None:
    await conn.execute(
        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
        migration.version,
        migration.name,
        migration.checksum,
    )
