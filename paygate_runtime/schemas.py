"""The four service schemas and their two roles each.

The owner role owns the schema and runs migrations. The runtime role, which the service connects as, gets
only USAGE and DML on its own schema, so append-only and immutable tables are enforced by privileges that
the running service cannot change.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg


@dataclass(frozen=True)
class ServiceSchema:
    service: str
    schema: str

    @property
    def owner_role(self) -> str:
        return f"paygate_{self.service}_owner"

    @property
    def runtime_role(self) -> str:
        return f"paygate_{self.service}"


SERVICES: dict[str, ServiceSchema] = {
    name: ServiceSchema(name, schema)
    for name, schema in (
        ("session", "session"),
        ("billing", "billing"),
        ("keys", "keys"),
        ("gateway", "gateway"),
    )
}


def dsn_for_role(admin_dsn: str, role: str, database: str | None = None) -> str:
    """The admin DSN with another user (and optionally database); passwordless roles suit trust auth only."""
    parts = urlsplit(admin_dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    path = f"/{database}" if database is not None else parts.path
    return urlunsplit((parts.scheme, f"{role}@{host}", path, parts.query, parts.fragment))


def bootstrap_sql(spec: ServiceSchema) -> str:
    owner, runtime, schema = spec.owner_role, spec.runtime_role, spec.schema
    return f"""
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{owner}') THEN
    CREATE ROLE {owner} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{runtime}') THEN
    CREATE ROLE {runtime} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
  END IF;
END $$;
CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {owner};
REVOKE ALL ON SCHEMA {schema} FROM PUBLIC;
GRANT USAGE ON SCHEMA {schema} TO {runtime};
ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema}
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {runtime};
ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema}
  GRANT USAGE, SELECT ON SEQUENCES TO {runtime};
ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema}
  GRANT EXECUTE ON FUNCTIONS TO {runtime};
"""


async def bootstrap_database(admin_dsn: str, database: str) -> None:
    """Create the database, roles and schemas if missing. Needs a superuser; safe to run again."""
    admin = await asyncpg.connect(admin_dsn)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(
        dsn_for_role(admin_dsn, urlsplit(admin_dsn).username or "postgres", database)
    )
    try:
        # Role creation is cluster-wide; two bootstraps racing would collide on pg_authid.
        await conn.execute("SELECT pg_advisory_lock(7243001)")
        try:
            await conn.execute(
                f'REVOKE CREATE ON SCHEMA public FROM PUBLIC; REVOKE ALL ON DATABASE "{database}" FROM PUBLIC'
            )
            for spec in SERVICES.values():
                await conn.execute(bootstrap_sql(spec))
                await conn.execute(
                    f'GRANT CONNECT ON DATABASE "{database}" TO {spec.owner_role}, {spec.runtime_role}'
                )
        finally:
            await conn.execute("SELECT pg_advisory_unlock(7243001)")
    finally:
        await conn.close()
