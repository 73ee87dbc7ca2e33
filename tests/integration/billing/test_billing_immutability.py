"""The database itself keeps issued invoices immutable and the audit append-only, whatever the code does."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from billing_helpers import issue, runtime_connection

from paygate.billing.v1 import billing_pb2
from support.stack import ServiceStack


@pytest.fixture
async def runtime_conn(stack: ServiceStack) -> AsyncIterator[asyncpg.Connection]:
    async with runtime_connection(stack) as conn:
        yield conn


REFUSED = (asyncpg.InsufficientPrivilegeError, asyncpg.IntegrityConstraintViolationError)


async def test_runtime_role_cannot_edit_or_delete_an_invoice(
    stack: ServiceStack, runtime_conn: asyncpg.Connection
) -> None:
    merchant = str(uuid.uuid4())
    invoice = await issue(stack.billing, merchant, minor=1000)
    invoice_id = uuid.UUID(invoice.id)
    for statement in (
        "UPDATE invoices SET total = 1 WHERE id = $1",
        "UPDATE invoices SET number = 'INV-2000-000001' WHERE id = $1",
        "UPDATE invoices SET line_items = '[]' WHERE id = $1",
        "UPDATE invoices SET issued_at = now() WHERE id = $1",
        "DELETE FROM invoices WHERE id = $1",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await runtime_conn.execute(statement, invoice_id)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await runtime_conn.execute("TRUNCATE invoices")
    # The two granted columns still only move issued -> void with a real credit note.
    with pytest.raises(asyncpg.IntegrityConstraintViolationError):
        await runtime_conn.execute(
            "UPDATE invoices SET status = 'void', credit_note_id = $2 WHERE id = $1", invoice_id, invoice_id
        )
    with pytest.raises(REFUSED):
        await runtime_conn.execute(
            "UPDATE invoices SET status = 'void', credit_note_id = $2 WHERE id = $1", invoice_id, uuid.uuid4()
        )
    stored = await runtime_conn.fetchrow("SELECT status, total FROM invoices WHERE id = $1", invoice_id)
    assert (stored["status"], int(stored["total"])) == ("issued", 1000)

    # Voiding is the one change allowed, and after it nothing moves at all.
    reply = await stack.billing.VoidInvoice(
        billing_pb2.VoidInvoiceRequest(merchant_id=merchant, invoice_id=invoice.id)
    )
    assert reply.invoice.status == billing_pb2.INVOICE_STATUS_VOID
    with pytest.raises(asyncpg.IntegrityConstraintViolationError):
        await runtime_conn.execute("UPDATE invoices SET status = 'issued' WHERE id = $1", invoice_id)
    with pytest.raises(asyncpg.IntegrityConstraintViolationError):
        await runtime_conn.execute(
            "UPDATE invoices SET credit_note_id = $2 WHERE id = $1", invoice_id, uuid.UUID(invoice.id)
        )
    note_id = uuid.UUID(reply.credit_note.id)
    with pytest.raises(asyncpg.IntegrityConstraintViolationError):
        await runtime_conn.execute("UPDATE invoices SET status = 'void' WHERE id = $1", note_id)


async def test_even_the_owner_cannot_rewrite_an_invoice(stack: ServiceStack) -> None:
    """Privileges bind the runtime role; the trigger binds everyone else (owner, future grants)."""
    invoice = await issue(stack.billing, str(uuid.uuid4()))
    owner = await asyncpg.connect(stack.db.owner_dsn("billing"), server_settings={"search_path": "billing"})
    try:
        with pytest.raises(asyncpg.IntegrityConstraintViolationError):
            await owner.execute(
                "UPDATE invoices SET total = 1, subtotal = 1 WHERE id = $1", uuid.UUID(invoice.id)
            )
        with pytest.raises(asyncpg.IntegrityConstraintViolationError):
            await owner.execute("DELETE FROM invoices WHERE id = $1", uuid.UUID(invoice.id))
    finally:
        await owner.close()


async def test_audit_has_a_row_per_document_and_is_append_only(
    stack: ServiceStack, runtime_conn: asyncpg.Connection
) -> None:
    merchant = str(uuid.uuid4())
    first = await issue(stack.billing, merchant)
    second = await issue(stack.billing, merchant)
    reply = await stack.billing.VoidInvoice(
        billing_pb2.VoidInvoiceRequest(merchant_id=merchant, invoice_id=first.id)
    )
    await issue(stack.billing, merchant, first.session_id)  # a retry writes nothing new

    rows = await runtime_conn.fetch(
        "SELECT event, invoice_id, number, related_id FROM billing_audit ORDER BY id"
    )
    assert [(r["event"], str(r["invoice_id"]), r["number"]) for r in rows] == [
        ("invoice_issued", first.id, first.number),
        ("invoice_issued", second.id, second.number),
        ("credit_note_issued", reply.credit_note.id, reply.credit_note.number),
        ("invoice_voided", first.id, first.number),
    ]
    assert str(rows[2]["related_id"]) == first.id and str(rows[3]["related_id"]) == reply.credit_note.id
    for statement in (
        "UPDATE billing_audit SET event = 'invoice_issued'",
        "DELETE FROM billing_audit",
        "TRUNCATE billing_audit",
        "INSERT INTO billing_audit (event, invoice_id, merchant_id, mode, number, session_id, currency, total)"
        " VALUES ('invoice_issued', gen_random_uuid(), 'm', 'test', 'X', 's', 'EUR', 1)",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await runtime_conn.execute(statement)
    assert await runtime_conn.fetchval("SELECT count(*) FROM billing_audit") == 4


async def test_counters_cannot_be_deleted(stack: ServiceStack, runtime_conn: asyncpg.Connection) -> None:
    await issue(stack.billing, str(uuid.uuid4()))
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await runtime_conn.execute("DELETE FROM invoice_counters")
