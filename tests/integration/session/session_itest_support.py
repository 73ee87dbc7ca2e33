"""Helpers shared by the session service's integration tests (real Postgres, real gRPC)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from support import polling
from support.stack import ServiceStack

KIND = {
    "pending": session_pb2.EVENT_KIND_PENDING,
    "succeeded": session_pb2.EVENT_KIND_SUCCEEDED,
    "failed": session_pb2.EVENT_KIND_FAILED,
    "attempt_failed": session_pb2.EVENT_KIND_ATTEMPT_FAILED,
    "expired": session_pb2.EVENT_KIND_EXPIRED,
    "refunded": session_pb2.EVENT_KIND_REFUNDED,
    "disputed": session_pb2.EVENT_KIND_DISPUTED,
}
OUTCOME = {
    value: name.removeprefix("APPLY_OUTCOME_").lower() for name, value in session_pb2.ApplyOutcome.items()
}
STATUS = {
    value: name.removeprefix("SESSION_STATUS_").lower() for name, value in session_pb2.SessionStatus.items()
}
_event_ids = itertools.count(1)


def eur(minor: int, currency: str = "EUR", exponent: int = 2) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=str(minor), currency=currency, exponent=exponent)


async def create_session(
    stack: ServiceStack, merchant_id: str, amount: str = "99.99", **fields: Any
) -> session_pb2.Session:
    fields.setdefault("mode", common_pb2.MODE_TEST)
    reply = await stack.session.CreateSession(
        session_pb2.CreateSessionRequest(merchant_id=merchant_id, amount=amount, **fields), timeout=10
    )
    return reply.session


async def apply(
    stack: ServiceStack,
    session_id: str,
    kind: str,
    *,
    amount: common_pb2.Money | None = None,
    reference: str = "pi_1",
    event_id: str | None = None,
    provider: str = "onecom",
    mode: int = common_pb2.MODE_UNSPECIFIED,
) -> session_pb2.ApplyPaymentEventResponse:
    request = session_pb2.ApplyPaymentEventRequest(
        session_id=session_id,
        provider=provider,
        provider_event_id=event_id or f"evt_{next(_event_ids)}_{uuid.uuid4().hex[:6]}",
        kind=KIND[kind],
        provider_reference=reference,
        mode=mode,
    )
    if amount is not None:
        request.amount.CopyFrom(amount)
    return await stack.session.ApplyPaymentEvent(request, timeout=10)


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 15.0, interval: float = 0.05
) -> Any:
    return await polling.eventually(check, timeout=timeout, interval=interval)


async def admin_fetch(stack: ServiceStack, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await stack.db.admin()
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def admin_val(stack: ServiceStack, sql: str, *args: Any) -> Any:
    conn = await stack.db.admin()
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def insert_paid_sessions(admin: asyncpg.Connection, count: int) -> None:
    """`count` paid Stripe sessions written straight into the table (no events, no outbox), numbered 1.. in
    their ids (`00000000-0000-4000-8000-<n, 12 digits>`) and references (`pi_<n>`): a large table for tests of
    how statements read it."""
    await admin.execute(
        """INSERT INTO session.sessions (id, merchant_id, mode, status, amount_minor, currency, exponent,
                                         provider, expires_at, paid_at, closed_at, paid_reference)
           SELECT ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid,
                  '11111111-1111-4111-8111-111111111111', 'test', 'paid', 999, 'EUR', 2, 'stripe',
                  now() + interval '1 hour', now(), now(), 'pi_' || n
             FROM generate_series(1, $1) AS n""",
        count,
    )


async def rows_read_by_seq_scans(conn: asyncpg.Connection, tables: Sequence[str]) -> dict[str, int]:
    """Rows of each of the session schema's `tables` read by sequential scans so far (pg_stat_user_tables,
    flushed first): how the scale tests tell a plan that reads a table whole from one that probes it."""
    await conn.execute("SELECT pg_stat_force_next_flush()")
    rows = await conn.fetch(
        """SELECT relname, coalesce(seq_tup_read, 0) AS rows FROM pg_stat_user_tables
            WHERE schemaname = 'session' AND relname = ANY($1::text[])""",
        list(tables),
    )
    read = {row["relname"]: int(row["rows"]) for row in rows}
    return {table: read.get(table, 0) for table in tables}
