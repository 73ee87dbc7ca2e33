"""What refunds and disputes do in other services, done after their commit (issue 19).

The refund use cases only record facts in the session schema (a succeeded refund without its credit note; a
session whose keys should be suspended, restored or revoked). This worker brings billing and keys in line
with them: one credit note per refund (billing's IssueCreditNote is idempotent on the refund id), and the
session's key access (keys' SetSessionKeyAccess is idempotent). A fact is marked done only after the call
succeeded, so a crash or an unavailable service means a retry, never a lost or doubled effect. The credit
note's `credit_note.issued` merchant event is not made here: billing writes it in the transaction that inserts
the credit note (as for a void's) and forwards it to RecordMerchantEvent, rendered as GET /v1/invoices/{id}.

It runs at once when a refund use case in this process commits (`wake`), and every `poll_s` otherwise (a
refund committed by another replica, a failed call, a session whose fulfilment finished meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
import grpc

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate_runtime.grpc_errors import error_code
from paygate_runtime.proto_convert import mode_enum
from session_service.adapters import refund_repository as refunds_repo
from session_service.adapters.downstream import Downstream, describe_rpc_error
from session_service.domain.refunds import credit_note_amount

log = logging.getLogger(__name__)

DEFAULT_POLL_S = 1.0
# Billing's refusals that mean "this money is already credited" (see IssueCreditNote).
_NO_CREDIT_NOTE = frozenset({"invoice_void", "credit_exceeds_invoice"})
# Recorded as why a refund has no credit note of its own (`credit_note_skipped` in the API).
CREDITED_BY_EARLIER_NOTE = "credited_by_earlier_note"
_BATCH = 50


class RefundEffects:
    def __init__(self, pool: asyncpg.Pool, downstream: Downstream, *, poll_s: float = DEFAULT_POLL_S) -> None:
        self.pool = pool
        self.downstream = downstream
        self.poll_s = poll_s
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except (asyncpg.PostgresError, OSError) as error:
                log.warning("refund effects pass failed; retrying", extra={"error": str(error)})
            except Exception:
                # A bug must not stop the worker for good: the facts stay in the tables and the next pass retries.
                log.exception("refund effects pass failed unexpectedly; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)

    async def run_once(self) -> int:
        """One pass over what is due; how many effects it completed."""
        done = 0
        async with self.pool.acquire() as conn:
            keys_due = await refunds_repo.key_access_due(conn, _BATCH)
            credits_due = await refunds_repo.credit_notes_due(conn, _BATCH)
        # Keys first: stopping a refunded customer's access is the urgent part.
        for session in keys_due:
            done += await self._key_access(session)
        for refund in credits_due:
            done += await self._credit_note(refund)
        return done

    async def _key_access(self, session: Any) -> int:
        access = session["key_access"]
        try:
            await self.downstream.keys.SetSessionKeyAccess(
                keys_pb2.SetSessionKeyAccessRequest(
                    session_id=str(session["id"]),
                    merchant_id=str(session["merchant_id"]),
                    access=access,
                    reason=_reason(session),
                ),
                timeout=self.downstream.deadline_s,
            )
        except grpc.aio.AioRpcError as error:
            log.warning(
                "setting a session's key access failed; will retry",
                extra={"session_id": str(session["id"]), "error": describe_rpc_error(error)},
            )
            return 0
        async with self.pool.acquire() as conn:
            return int(await refunds_repo.record_key_access(conn, session, access))

    async def _credit_note(self, refund: Any) -> int:
        # The session's notes are settled one at a time (the lock, to the end of this transaction, spans the
        # billing call): what this note credits depends on the notes settled before it.
        async with self.pool.acquire() as conn, conn.transaction():
            await refunds_repo.lock_session_credit_notes(conn, refund["session_id"])
            covered, on_paper = await refunds_repo.credit_note_standing(conn, refund)
            credited = credit_note_amount(
                int(refund["credited_minor"]), covered_minor=covered, on_paper_minor=on_paper
            )
            if credited == 0:
                # A note that stands (its refund failed since) already credits this money: a second note would
                # credit it twice.
                return int(await refunds_repo.skip_credit_note(conn, refund, CREDITED_BY_EARLIER_NOTE))
            return await self._issue_credit_note(conn, refund, credited)

    async def _issue_credit_note(self, conn: Any, refund: Any, credited: int) -> int:
        amount = common_pb2.Money(
            amount_minor=str(credited), currency=refund["currency"], exponent=refund["exponent"]
        )
        try:
            note = await self.downstream.billing.IssueCreditNote(
                billing_pb2.IssueCreditNoteRequest(
                    merchant_id=str(refund["merchant_id"]),
                    mode=mode_enum(refund["mode"]),
                    session_id=str(refund["session_id"]),
                    refund_id=str(refund["id"]),
                    amount=amount,
                    reason=(
                        refund["reason"] or ("dispute lost" if refund["origin"] == "dispute" else "refund")
                    )[:200],
                ),
                timeout=self.downstream.deadline_s,
            )
        except grpc.aio.AioRpcError as error:
            code = error_code(error)
            if code in _NO_CREDIT_NOTE:
                # The invoice was voided (its credit note already returned everything) or is fully credited:
                # another credit note would credit the money twice. Recorded, with the reason, and not retried.
                return int(await refunds_repo.skip_credit_note(conn, refund, code or ""))
            log.warning(
                "issuing a refund's credit note failed; will retry",
                extra={"refund_id": str(refund["id"]), "error": describe_rpc_error(error)},
            )
            return 0
        # The note's own total, not the amount asked: billing is idempotent on the refund, so a retry after a
        # lost answer gets the note issued the first time.
        issued = -int(note.total.amount_minor or 0)
        return int(await refunds_repo.record_credit_note(conn, refund, note.id, note.number, issued))


def _reason(session: Any) -> str:
    if session["status"] == "refunded":
        return "refunded"
    return {"open": "dispute_open", "won": "dispute_won", "lost": "dispute_lost"}.get(
        session["dispute_status"] or "", "restored"
    )
