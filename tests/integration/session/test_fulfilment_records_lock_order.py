"""Recording a dispatcher pass takes the sessions' row locks before the merchant's audit hash-chain head.

What this guards: a group of payment events (`state_moves._GROUP_SQL`, and the single move too) locks its
sessions' rows first and takes the merchant's chain-head lock last, with its audit rows. `record_fulfilments`
writes audit rows and updates the same sessions in one statement; PostgreSQL runs a statement's
data-modifying CTEs that the main query does not read after it, last one first, so the audit rows (and the
chain head) came before the sessions' rows. A pass and a group of the same merchant then each held what the
other waited for: PostgreSQL broke the deadlock after `deadlock_timeout` (a second) by failing one, and the
pass's rows or the group's events went the slow way (seen on `paygate up` under a burst of paid sessions).
"""

from __future__ import annotations

import asyncio
import uuid

from session_itest_support import insert_paid_sessions

from session_service.adapters.session_repository import FulfilmentRecord, record_fulfilments
from support.database import TestDatabase
from support.polling import eventually

MERCHANT = uuid.UUID("11111111-1111-4111-8111-111111111111")
SESSION = uuid.UUID("00000000-0000-4000-8000-000000000001")


async def test_a_pass_waits_for_a_locked_session_before_it_takes_the_chain_head(
    clean_db: TestDatabase,
) -> None:
    async with clean_db.admin_connection() as admin:
        await insert_paid_sessions(admin, 1)
        outbox_id = await admin.fetchval(
            "INSERT INTO session.outbox (session_id, kind) VALUES ($1, 'fulfil') RETURNING id", SESSION
        )
        record = FulfilmentRecord(
            outbox_id=outbox_id,
            session_id=SESSION,
            merchant_id=MERCHANT,
            invoice_id="inv_1",
            invoice_number="INV-1",
            api_key_id="key_1",
            access_token_id="tok_1",
            steps=[("invoice_issued", {"invoice_id": "inv_1"})],
            complete=True,
            send_mail=False,
        )
        async with (
            clean_db.runtime_connection("session") as group,
            clean_db.runtime_connection("session") as dispatcher,
        ):
            # A group of events has locked the session's row, as its first step does.
            group_tx = group.transaction()
            await group_tx.start()
            await group.execute("SELECT id FROM sessions WHERE id = $1 FOR UPDATE", SESSION)
            dispatcher_pid = await dispatcher.fetchval("SELECT pg_backend_pid()")
            recording = asyncio.create_task(record_fulfilments(dispatcher, [record]))

            async def dispatcher_waits_for_a_lock() -> bool:
                waiting = await admin.fetchval(
                    "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", dispatcher_pid
                )
                return bool(waiting) or recording.done()

            await eventually(dispatcher_waits_for_a_lock, timeout=10, what="the pass to wait for the row")
            # The group's audit row takes the merchant's chain head: the pass must not be holding it.
            try:
                await asyncio.wait_for(
                    group.execute(
                        """INSERT INTO audit_log (session_id, merchant_id, actor, action, detail)
                           VALUES ($1, $2, 'provider:stripe', 'session_paid', '{}'::jsonb)""",
                        SESSION,
                        MERCHANT,
                    ),
                    timeout=10,
                )
            except BaseException:
                await group_tx.rollback()
                raise
            await group_tx.commit()
            completed = await asyncio.wait_for(recording, timeout=10)
        assert completed == {outbox_id}
        stored = await admin.fetchrow(
            "SELECT invoice_id, fulfilment_status FROM session.sessions WHERE id = $1", SESSION
        )
        assert (stored["invoice_id"], stored["fulfilment_status"]) == ("inv_1", "done")
        actions = await admin.fetch(
            "SELECT action FROM session.audit_log WHERE session_id = $1 ORDER BY chain_seq", SESSION
        )
        assert sorted(row["action"] for row in actions) == [
            "fulfilment_done",
            "invoice_issued",
            "session_paid",
        ]
