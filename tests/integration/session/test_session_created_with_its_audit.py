"""A session is created together with its `session_created` audit entry, or not at all (contract §9: every step
in the audit trail). The create path used to commit the session and then, in a second statement, its audit
entry: a failure or a crash between the two left a session the audit trail never saw, and a retry with the same
Idempotency-Key replayed it without ever writing the entry. This test failed first (the session of the failed
create was committed: 1 row, not 0). Real Postgres and the real session service over gRPC; the audit insert
is made to fail by a trigger installed for one merchant only."""

from __future__ import annotations

import uuid

import grpc
import pytest
from session_itest_support import create_session

from paygate.session.v1 import session_pb2
from support.stack import ServiceStack

REFUSE_AUDIT = """
CREATE FUNCTION session.test_refuse_session_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.action = 'session_created' AND NEW.merchant_id = '{merchant}'::uuid THEN
        RAISE EXCEPTION 'audit entry refused (test)';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_refuse_session_created BEFORE INSERT ON session.audit_log
    FOR EACH ROW EXECUTE FUNCTION session.test_refuse_session_created();
"""
LIFT = """
DROP TRIGGER test_refuse_session_created ON session.audit_log;
DROP FUNCTION session.test_refuse_session_created();
"""


async def _count(stack: ServiceStack, sql: str, *args: object) -> int:
    conn = await stack.db.admin()
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()


@pytest.mark.parametrize("idempotency_key", ["", "order-7"])
async def test_a_session_is_created_with_its_audit_entry_or_not_at_all(
    stack: ServiceStack, idempotency_key: str
) -> None:
    merchant = await stack.create_merchant()
    merchant_id = uuid.UUID(merchant.id)
    conn = await stack.db.admin()
    try:
        await conn.execute(REFUSE_AUDIT.format(merchant=merchant_id))
        with pytest.raises(grpc.aio.AioRpcError):
            await create_session(stack, merchant.id, "5.00", idempotency_key=idempotency_key)
    finally:
        await conn.execute(LIFT)
        await conn.close()
    assert (
        await _count(stack, "SELECT count(*) FROM session.sessions WHERE merchant_id = $1", merchant_id) == 0
    )

    # The same request again (the client's retry) creates the session, audited, exactly once.
    created = await create_session(stack, merchant.id, "5.00", idempotency_key=idempotency_key)
    assert (
        await _count(stack, "SELECT count(*) FROM session.sessions WHERE merchant_id = $1", merchant_id) == 1
    )
    audited = await _count(
        stack,
        "SELECT count(*) FROM session.audit_log WHERE session_id = $1 AND action = 'session_created'",
        uuid.UUID(created.id),
    )
    assert audited == 1
    assert created.status == session_pb2.SESSION_STATUS_CREATED
