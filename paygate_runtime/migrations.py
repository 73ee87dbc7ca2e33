"""Versioned SQL migrations per service, applied under a Postgres advisory lock.

Files are `<service>/migrations/NNNN_name.sql`. Each runs in its own transaction and is recorded with its
checksum in `<schema>.schema_migrations`, so running twice, or from two replicas at once, applies each file
exactly once; a file edited after it was applied is refused rather than silently diverging.
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


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(Exception):
    pass


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


async def migrate(owner_dsn: str, service: str) -> list[str]:
    """Apply pending migrations of one service as its owner role. Returns the names applied."""
    spec = SERVICES[service]
    migrations = load_migrations(service)
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
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        migration.version,
                        migration.name,
                        migration.checksum,
                    )
                applied_now.append(migration.name)
                log.info("migration applied", extra={"migration": migration.name, "schema": spec.schema})
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock_key)
    finally:
        await conn.close()
    return applied_now
