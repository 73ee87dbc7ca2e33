"""What a dispatcher pass learned is recorded with ONE statement for all its rows (issue 16), not one per row,
and the mails of a pass are recorded with one statement too; a row that failed downstream still goes back
alone for a retry, a row the database refuses to record goes back alone while the others of its pass complete,
and nothing is recorded twice. Real services, real gRPC, real Postgres: a statement-level trigger on the outbox
counts the statements that finish rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from support import polling
from support.mail import MailInbox, fast_mail_fulfilment_env, running_mail_inbox
from support.stack import ServiceStack

_PAID = common_pb2.Money(amount_minor="4990", currency="EUR", exponent=2)

# Every statement that finishes outbox rows (done, or skipped) leaves a row here per kind, with how many.
_NO_COUNTER = """
DROP TRIGGER IF EXISTS refuse_recording ON session.sessions;
DROP FUNCTION IF EXISTS public.refuse_recording();
DROP TRIGGER IF EXISTS count_fulfil_done ON session.outbox;
DROP FUNCTION IF EXISTS public.count_fulfil_done();
DROP TABLE IF EXISTS public.fulfil_done_statements;
"""
_COUNTER = (
    _NO_COUNTER
    + """
CREATE TABLE public.fulfil_done_statements (kind text NOT NULL, rows int NOT NULL);
CREATE FUNCTION public.count_fulfil_done() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    INSERT INTO public.fulfil_done_statements (kind, rows)
    SELECT n.kind, count(*) FROM newrows n JOIN oldrows o ON o.id = n.id
     WHERE n.status IN ('done', 'skipped') AND o.status = 'pending'
     GROUP BY n.kind;
    RETURN NULL;
END $$;
CREATE TRIGGER count_fulfil_done AFTER UPDATE ON session.outbox
    REFERENCING OLD TABLE AS oldrows NEW TABLE AS newrows FOR EACH STATEMENT
    EXECUTE FUNCTION public.count_fulfil_done();
"""
)


_REFUSE_RECORDING = """
CREATE FUNCTION public.refuse_recording() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id = 'SESSION_ID'::uuid THEN
        RAISE EXCEPTION 'recording refused for this session (test)';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_recording BEFORE UPDATE ON session.sessions FOR EACH ROW
    WHEN (NEW.api_key_id IS DISTINCT FROM OLD.api_key_id) EXECUTE FUNCTION public.refuse_recording();
"""


@pytest.fixture
def inbox() -> Iterator[tuple[MailInbox, int]]:
    with running_mail_inbox() as running:
        yield running


@pytest.fixture
def stack_env(stack_env: dict[str, str], inbox: tuple[MailInbox, int]) -> dict[str, str]:
    return {**stack_env, **fast_mail_fulfilment_env(inbox[1])}


@pytest.fixture(autouse=True)
async def _drop_counter(stack: ServiceStack) -> Any:
    yield
    # The database is shared with the tests that follow. The session service stops first: its dispatcher may
    # still be retrying a refused row, and its transactions lock the outbox and then the sessions, the reverse
    # of this DDL's order, which deadlocked here once in CI.
    await stack.stop_service("session")
    await _admin(stack, _NO_COUNTER)


async def _admin(stack: ServiceStack, sql: str, *args: Any, fetch: bool = False) -> Any:
    conn = await stack.db.admin()
    try:
        return await (conn.fetch(sql, *args) if fetch else conn.execute(sql, *args))
    finally:
        await conn.close()


async def _paid_in_one_claim(
    stack: ServiceStack,
    merchant_id: str,
    count: int,
    *,
    poison: int | None = None,
    refuse_recording: int | None = None,
) -> list[str]:
    """Sessions paid while billing and keys are down; the restarted session service then claims all their
    `fulfil` rows in one pass. With `poison`, billing already holds an invoice of another amount for that
    session, so its item is refused on every pass. With `refuse_recording`, the database refuses to store
    that session's fulfilment (a trigger raises), so the statement that records a pass with it fails."""
    ids = []
    for n in range(count):
        reply = await stack.session.CreateSession(
            session_pb2.CreateSessionRequest(
                merchant_id=merchant_id,
                amount="49.90",
                mode=common_pb2.MODE_TEST,
                customer_email=f"buyer{n}@example.com",
            ),
            timeout=10,
        )
        ids.append(reply.session.id)
    if poison is not None:
        await stack.billing.IssueInvoice(
            billing_pb2.IssueInvoiceRequest(
                merchant_id=merchant_id,
                mode=common_pb2.MODE_TEST,
                session_id=ids[poison],
                amount=common_pb2.Money(amount_minor="1", currency="EUR", exponent=2),
                buyer=billing_pb2.Party(email="buyer@example.com"),
            ),
            timeout=10,
        )
    await stack.stop_service("billing")
    await stack.stop_service("keys")
    for session_id in ids:
        await stack.session.ApplyPaymentEvent(
            session_pb2.ApplyPaymentEventRequest(
                session_id=session_id,
                provider="onecom",
                provider_event_id=f"evt_{session_id}",
                kind=session_pb2.EVENT_KIND_SUCCEEDED,
                provider_reference=f"tx_{session_id}",
                amount=_PAID,
            ),
            timeout=10,
        )
    await stack.stop_service("session")
    await _admin(
        stack,
        """UPDATE session.outbox SET next_attempt_at = now(), locked_until = NULL, attempts = 0
            WHERE kind = 'fulfil' AND status = 'pending'""",
    )
    await _admin(stack, _COUNTER)
    if refuse_recording is not None:
        await _admin(stack, _REFUSE_RECORDING.replace("SESSION_ID", ids[refuse_recording]))
    await stack.start_service("keys")
    await stack.start_service("billing")
    await stack.start_service("session")
    return ids


async def _dispatcher_steps(stack: ServiceStack, ids: list[str]) -> dict[str, list[str]]:
    """The fulfilment steps the dispatcher audited per session, in order (mails and failed attempts aside)."""
    audit = await _admin(
        stack,
        """SELECT session_id::text AS sid, array_agg(action ORDER BY id) AS actions FROM session.audit_log
            WHERE session_id = ANY($1::uuid[]) AND actor = 'dispatcher' AND action NOT LIKE 'email%'
              AND action NOT LIKE '%attempt_failed'
            GROUP BY session_id""",
        ids,
        fetch=True,
    )
    return {r["sid"]: list(r["actions"]) for r in audit}


async def _statements(stack: ServiceStack) -> dict[str, list[int]]:
    rows = await _admin(stack, "SELECT kind, rows FROM public.fulfil_done_statements", fetch=True)
    found: dict[str, list[int]] = {}
    for row in rows:
        found.setdefault(row["kind"], []).append(row["rows"])
    return found


async def _done(stack: ServiceStack, ids: list[str]) -> int:
    rows = await _admin(
        stack,
        "SELECT count(*) AS n FROM session.sessions WHERE id = ANY($1::uuid[]) AND fulfilment_status = 'done'",
        ids,
        fetch=True,
    )
    return int(rows[0]["n"])


async def test_a_pass_is_recorded_with_one_statement(
    stack: ServiceStack, inbox: tuple[MailInbox, int]
) -> None:
    handler, _ = inbox
    merchant = await stack.create_merchant("Acme Widgets", "acme")
    ids = await _paid_in_one_claim(stack, merchant.id, 10)

    async def fulfilled() -> bool:
        return await _done(stack, ids) == len(ids)

    await polling.eventually(fulfilled, timeout=30, interval=0.1)

    async def mailed() -> bool:
        rows = await _admin(
            stack,
            "SELECT count(*) AS n FROM session.outbox WHERE kind = 'email' AND status = 'done'",
            fetch=True,
        )
        return len(handler.messages) == len(ids) and rows[0]["n"] == len(ids)

    await polling.eventually(mailed, timeout=30, interval=0.1)
    # One statement completed the whole pass, and one recorded all its mails.
    assert await _statements(stack) == {"fulfil": [len(ids)], "email": [len(ids)]}

    # Everything a per-row record wrote is there, once: ids, audit in step order, one mail each.
    assert await _dispatcher_steps(stack, ids) == {
        sid: ["invoice_issued", "customer_key_issued", "access_token_issued", "fulfilment_done"]
        for sid in ids
    }
    sessions = await _admin(
        stack,
        """SELECT s.invoice_id, s.invoice_number, s.api_key_id, s.access_token_id,
                  (SELECT count(*) FROM session.outbox m WHERE m.session_id = s.id AND m.kind = 'email') AS mails,
                  -- The invoice.issued event carries the invoice object the pass handed over.
                  (SELECT count(*) FROM session.merchant_events e WHERE e.type = 'invoice.issued'
                      AND e.object_id = s.invoice_id::text AND e.snapshot ? 'object') AS objs
             FROM session.sessions s WHERE s.id = ANY($1::uuid[])""",
        ids,
        fetch=True,
    )
    assert all(
        r["invoice_id"] and r["invoice_number"] and r["api_key_id"] and r["access_token_id"] for r in sessions
    )
    assert all(r["mails"] == 1 and r["objs"] == 1 for r in sessions), sessions
    sent = await _admin(
        stack,
        """SELECT count(*) AS n FROM session.audit_log
            WHERE session_id = ANY($1::uuid[]) AND action = 'email_sent' AND detail->>'to_domain' = 'example.com'""",
        ids,
        fetch=True,
    )
    assert sent[0]["n"] == len(ids)


async def test_a_refused_row_goes_back_alone_and_the_rest_in_one_statement(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant("Acme", "acme")
    ids = await _paid_in_one_claim(stack, merchant.id, 5, poison=1)
    poisoned, healthy = ids[1], [ids[0], *ids[2:]]

    async def settled() -> bool:
        rows = await _admin(
            stack,
            "SELECT attempts FROM session.outbox WHERE kind = 'fulfil' AND session_id = $1::uuid",
            poisoned,
            fetch=True,
        )
        return await _done(stack, healthy) == len(healthy) and rows[0]["attempts"] >= 2

    await polling.eventually(settled, timeout=30, interval=0.1)
    assert (await _statements(stack))["fulfil"] == [len(healthy)]
    row = (
        await _admin(
            stack,
            """SELECT o.status, o.last_error, s.fulfilment_status, s.invoice_id, s.api_key_id, s.access_token_id
                 FROM session.outbox o JOIN session.sessions s ON s.id = o.session_id
                WHERE o.kind = 'fulfil' AND o.session_id = $1::uuid""",
            poisoned,
            fetch=True,
        )
    )[0]
    assert row["status"] == "pending" and row["fulfilment_status"] == "pending"
    assert "invoice_amount_conflict" in row["last_error"]
    assert row["invoice_id"] is None and row["api_key_id"] and row["access_token_id"]  # kept, recorded once
    issued = await _admin(
        stack,
        """SELECT action, count(*) AS n FROM session.audit_log WHERE session_id = $1::uuid
            AND action IN ('customer_key_issued', 'access_token_issued', 'fulfilment_done') GROUP BY action""",
        poisoned,
        fetch=True,
    )
    assert {r["action"]: r["n"] for r in issued} == {"customer_key_issued": 1, "access_token_issued": 1}


async def test_a_row_the_database_refuses_goes_back_alone_and_the_others_are_recorded_once(
    stack: ServiceStack,
) -> None:
    """The pass's one statement fails as a whole; its rows are then recorded one by one, so the others
    complete (once each) and only the refused row goes back for a retry, with the database's reason."""
    merchant = await stack.create_merchant("Acme", "acme")
    ids = await _paid_in_one_claim(stack, merchant.id, 5, refuse_recording=3)
    refused, healthy = ids[3], [*ids[:3], *ids[4:]]

    async def settled() -> bool:
        rows = await _admin(
            stack,
            "SELECT attempts FROM session.outbox WHERE kind = 'fulfil' AND session_id = $1::uuid",
            refused,
            fetch=True,
        )
        return await _done(stack, healthy) == len(healthy) and rows[0]["attempts"] >= 2

    await polling.eventually(settled, timeout=30, interval=0.1)
    # The whole pass failed to record at once, then each healthy row completed with a statement of its own,
    # in that same pass (its first attempt): no retry for them.
    assert sorted((await _statements(stack))["fulfil"]) == [1] * len(healthy)
    attempts = await _admin(
        stack,
        "SELECT attempts FROM session.outbox WHERE kind = 'fulfil' AND session_id = ANY($1::uuid[])",
        healthy,
        fetch=True,
    )
    assert [r["attempts"] for r in attempts] == [1] * len(healthy)
    row = (
        await _admin(
            stack,
            """SELECT o.status, o.last_error, s.fulfilment_status, s.invoice_id, s.api_key_id
                 FROM session.outbox o JOIN session.sessions s ON s.id = o.session_id
                WHERE o.kind = 'fulfil' AND o.session_id = $1::uuid""",
            refused,
            fetch=True,
        )
    )[0]
    assert row["status"] == "pending" and row["fulfilment_status"] == "pending"
    assert "recording refused for this session" in row["last_error"]
    assert row["invoice_id"] is None and row["api_key_id"] is None  # nothing of it was written
    assert await _dispatcher_steps(stack, ids) == {
        sid: ["invoice_issued", "customer_key_issued", "access_token_issued", "fulfilment_done"]
        for sid in healthy
    }
