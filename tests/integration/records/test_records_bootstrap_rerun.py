"""The database bootstrap is idempotent and never widens a grant on a re-run (issue 20).

Both bootstraps are checked: the one `paygate up` and the tests run (paygate_runtime.schemas) and the one the
Kubernetes deployment runs (deploy/components/cnpg/bootstrap.sql). Each runs, the migrations run, and then the
bootstrap runs again: every table and column privilege and every trigger must be exactly what it was, and the
append-only tables must still refuse UPDATE, DELETE and TRUNCATE to the runtime role.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from paygate_dev.embedded_pg import EmbeddedPostgres
from paygate_runtime.migrations import migrate
from paygate_runtime.schemas import SERVICES, bootstrap_database, dsn_for_role
from support.database import TestDatabase

DEPLOY_BOOTSTRAP = Path(__file__).resolve().parents[3] / "deploy" / "components" / "cnpg" / "bootstrap.sql"
SCHEMAS = [spec.schema for spec in SERVICES.values()]

# Table -> the triggers that make it append-only (or, for the inbox, keep its evidence).
APPEND_ONLY_TRIGGERS = {
    "session.audit_log": {"audit_log_append_only", "audit_log_no_truncate"},
    "session.session_history": {"session_history_append_only", "session_history_no_truncate"},
    "session.processed_events": {"processed_events_append_only", "processed_events_no_truncate"},
    "keys.audit_events": {"audit_events_append_only", "audit_events_no_truncate"},
    "billing.billing_audit": {"billing_audit_append_only", "billing_audit_no_truncate"},
    "billing.invoices": {"invoices_refuse_delete", "invoices_no_truncate", "invoices_guard_update"},
    "gateway.inbox_events": {"inbox_events_evidence", "inbox_events_no_truncate"},
}


async def _snapshot(conn: asyncpg.Connection) -> dict[str, set[tuple[str, ...]]]:
    """Every privilege on a table or column of the service schemas, and every user trigger with its state."""
    tables = await conn.fetch(
        """SELECT n.nspname || '.' || c.relname AS rel, a.grantee::regrole::text AS grantee, a.privilege_type
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
                  LATERAL aclexplode(c.relacl) a
            WHERE n.nspname = ANY($1::text[]) AND a.grantee <> 0""",
        SCHEMAS,
    )
    columns = await conn.fetch(
        """SELECT n.nspname || '.' || c.relname || '.' || att.attname AS col, a.grantee::regrole::text AS grantee,
                  a.privilege_type
             FROM pg_attribute att JOIN pg_class c ON c.oid = att.attrelid
                  JOIN pg_namespace n ON n.oid = c.relnamespace, LATERAL aclexplode(att.attacl) a
            WHERE n.nspname = ANY($1::text[]) AND a.grantee <> 0""",
        SCHEMAS,
    )
    triggers = await conn.fetch(
        """SELECT t.tgrelid::regclass::text AS rel, t.tgname, t.tgenabled::text AS enabled
             FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE NOT t.tgisinternal AND n.nspname = ANY($1::text[])""",
        SCHEMAS,
    )
    return {
        "tables": {(r["rel"], r["grantee"], r["privilege_type"]) for r in tables},
        "columns": {(r["col"], r["grantee"], r["privilege_type"]) for r in columns},
        "triggers": {(r["rel"], r["tgname"], r["enabled"]) for r in triggers},
    }


def _check_append_only(snapshot: dict[str, set[tuple[str, ...]]]) -> None:
    for table, expected in APPEND_ONLY_TRIGGERS.items():
        service = {"session": "session", "keys": "keys", "billing": "billing", "gateway": "gateway"}[
            table.split(".")[0]
        ]
        runtime = SERVICES[service].runtime_role
        granted = {p for rel, grantee, p in snapshot["tables"] if rel == table and grantee == runtime}
        assert granted & {"UPDATE", "DELETE", "TRUNCATE"} == set(), (table, granted)
        # Triggers may be named with or without the schema, depending on the search_path.
        present = {
            (name, enabled)
            for rel, name, enabled in snapshot["triggers"]
            if rel in (table, table.split(".")[1])
        }
        assert {(name, "O") for name in expected} <= present, (table, present)


async def test_the_runtime_bootstrap_rerun_changes_no_grant_and_no_trigger(clean_db: TestDatabase) -> None:
    admin = await clean_db.admin()
    try:
        before = await _snapshot(admin)
        _check_append_only(before)
        await bootstrap_database(clean_db.admin_dsn, clean_db.database)
        for service in SERVICES:
            assert await migrate(clean_db.owner_dsn(service), service) == []
        after = await _snapshot(admin)
    finally:
        await admin.close()
    assert after == before
    _check_append_only(after)


@pytest.fixture(scope="module")
async def deploy_server() -> AsyncIterator[str]:
    """A server of its own: the deploy bootstrap sets role-wide settings (search_path) that must not leak into
    the shared test database."""
    folder = Path(tempfile.mkdtemp(prefix="paygate-bootstrap-"))
    server = EmbeddedPostgres(folder / "pgdata", {"fsync": "off", "synchronous_commit": "off"})
    try:
        yield await asyncio.to_thread(server.start)
    finally:
        await asyncio.to_thread(server.stop)
        shutil.rmtree(folder, ignore_errors=True)


async def test_the_deploy_bootstrap_rerun_changes_no_grant_and_no_trigger(deploy_server: str) -> None:
    admin = await asyncpg.connect(deploy_server)
    try:
        await admin.execute("CREATE DATABASE paygate")
    finally:
        await admin.close()
    user = deploy_server.rsplit("//", 1)[1].split("@", 1)[0].split(":", 1)[0] or "postgres"
    db_dsn = dsn_for_role(deploy_server, user, "paygate")
    sql = DEPLOY_BOOTSTRAP.read_text()
    conn = await asyncpg.connect(db_dsn)
    try:
        await conn.execute(sql)
        for spec in SERVICES.values():
            # What CNPG managed roles (or the operator) do after the bootstrap.
            await conn.execute(f"ALTER ROLE {spec.owner_role} LOGIN")
            await conn.execute(f"ALTER ROLE {spec.runtime_role} LOGIN")
        for service, spec in SERVICES.items():
            await migrate(dsn_for_role(deploy_server, spec.owner_role, "paygate"), service)
        before = await _snapshot(conn)
        _check_append_only(before)
        await conn.execute(
            sql
        )  # the re-run, e.g. a re-applied CNPG bootstrap or an operator following the docs
        after = await _snapshot(conn)
    finally:
        await conn.close()
    assert after == before, {
        "granted": sorted(after["tables"] - before["tables"]),
        "revoked": sorted(before["tables"] - after["tables"]),
    }
    _check_append_only(after)
