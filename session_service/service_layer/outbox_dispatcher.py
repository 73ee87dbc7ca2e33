"""The outbox dispatcher: fulfils paid sessions and sends the customer's mail, exactly once in effect.

How a row is processed, and why no crash can double an invoice or a key:
1. claim: one autocommit statement leases due rows (`FOR UPDATE SKIP LOCKED`, then `locked_until`), so
   replicas share the queue and no transaction stays open while we call other services;
2. call: the `fulfil` rows of one claim together, with one BillingService.IssueInvoices and one
   KeysService.IssueCustomerAccess call (issue 16: two RPCs and two downstream commits per pass instead of
   three and three per session), each with a deadline and each item idempotent on the session id
   downstream. A retry after any crash (or after a lease ran out mid-call) gets the same invoice, key and
   token back, never a second one;
3. complete: ONE statement for the whole pass stores each session's ids, audits each step, marks the rows
   done and queues their mails (each row judged on its own inside it; if that statement fails, the rows
   are recorded one by one, so a row that cannot be recorded goes back alone).
The `email` rows of one claim are one task as well: their mails are rendered to SMTP bytes once and sent
side by side over the pooled connections, then every sent or skipped row is recorded with one statement.
Failures stay per session: an item refused downstream, or a whole call that failed, sends only the rows it
concerns back with `attempts`, `next_attempt_at` (domain backoff, full jitter) and `last_error`; the other
rows of the pass complete. UNIMPLEMENTED counts as a passing failure too: during a rolling deploy the peer
may be old (and a peer without the batched calls is asked one session at a time, see Downstream).

The shared lease worker (paygate_runtime.lease_worker) runs the queue: it wakes on LISTEN `session_outbox` (a
trigger NOTIFYs on every outbox insert, delivered at commit) and also polls, so a lost notification or a dropped
listener connection only delays work; it hands a claim's fulfil rows to `process_batch` in one task and its
mail rows in another (`batch_key`), and on a stop hands the leases of rows in flight back. A pass that raised
(a bug, not a refused item) sends its rows to `failed`: retried with the domain backoff like any passing
failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiosmtplib
import asyncpg
import grpc

from paygate_runtime import tracing
from paygate_runtime.errors import DomainError
from paygate_runtime.lease_worker import LeaseSettings, LeaseWorker
from paygate_runtime.money import Money
from session_service.adapters import session_repository as repo
from session_service.adapters.downstream import (
    Downstream,
    IssuedAccess,
    IssuedInvoice,
    ItemRefused,
    describe_rpc_error,
)
from session_service.adapters.mailer import SmtpMailer
from session_service.adapters.merchant_event_objects import invoice_event_object
from session_service.domain.customer_mail import AccessMail, render_access_mail
from session_service.domain.fulfilment import BackoffPolicy

log = logging.getLogger(__name__)

CHANNEL = "session_outbox"


@dataclass(frozen=True, slots=True)
class DispatcherSettings:
    lease_s: float = 30.0
    poll_s: float = 1.0
    concurrency: int = 64
    policy: BackoffPolicy = field(default_factory=BackoffPolicy)


class StepFailed(Exception):
    """A passing failure of one outbox row: retried later with backoff."""


class OutboxDispatcher:
    """The outbox queue (`BatchLeaseQueue` of paygate_runtime.lease_worker) and the worker that runs it."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        listen_dsn: str,
        downstream: Downstream,
        mailer: SmtpMailer | None,
        settings: DispatcherSettings,
        *,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.pool = pool
        self.listen_dsn = listen_dsn
        self.downstream = downstream
        self.mailer = mailer
        self.settings = settings
        self.rng = rng
        # `paygate_fulfilment_seconds{provider,mode}` (session_service.entrypoints.metrics), set by assemble:
        # seconds from the session becoming paid to its fulfilment completing, observed once per session.
        self.fulfilment_seconds: Any = None
        # Wake-up, slots, leases and the clean stop are the shared worker's. While rows are in flight it claims
        # again only once a quarter of the slots are free: under load every finishing pass wakes it, and a claim
        # per finished row cost a statement per row.
        self.worker: LeaseWorker[repo.ClaimedRow] = LeaseWorker(
            self,
            LeaseSettings(
                name="outbox",
                channel=CHANNEL,
                concurrency=settings.concurrency,
                poll_s=settings.poll_s,
                refill_at=max(1, settings.concurrency // 4),
            ),
            listen_dsn=listen_dsn,
        )

    async def run(self) -> None:
        await self.worker.run()

    # ------------------------------------------------------------------------------------------ LeaseQueue
    async def claim(self, limit: int) -> Sequence[repo.ClaimedRow]:
        async with self.pool.acquire() as conn:
            return await repo.claim_outbox(conn, limit, self.settings.lease_s)

    def row_id(self, row: repo.ClaimedRow) -> int:
        return row.id

    async def process(self, row: repo.ClaimedRow) -> None:
        await self.process_batch([row])

    def batch_key(self, row: repo.ClaimedRow) -> str:
        # A claim's fulfilments are one batch and its mails another: each holds its own slots, so neither kind
        # waits for the other to finish.
        return "fulfil" if row.kind == "fulfil" else "email"

    async def process_batch(self, rows: Sequence[repo.ClaimedRow]) -> None:
        """One claim's rows of one kind (see batch_key): fulfilments as one pass (one batched call per
        downstream service), mails as one task (sent side by side, recorded with one statement). Each row is
        judged and retried on its own; if the batch raises (a bug, not a refused item), the worker sends its
        rows to `failed`."""
        if rows[0].kind == "fulfil":
            await self._fulfil_rows(list(rows))
        else:
            await self._mail_rows(list(rows))

    async def failed(self, row: repo.ClaimedRow, error: Exception) -> None:
        await self._retry_later(row, _describe(error))

    async def release(self, row_ids: Sequence[int]) -> None:
        async with self.pool.acquire() as conn:
            await repo.release_leases(conn, row_ids)

    async def next_due_in(self) -> float | None:
        async with self.pool.acquire() as conn:
            return await repo.next_due_in(conn)

    # ------------------------------------------------------------------------------------------ rows
    async def _mail_rows(self, rows: list[repo.ClaimedRow]) -> None:
        """Send the claimed mails side by side (the SMTP pool bounds how many at once), then record every
        sent or skipped one with ONE statement (issue 16: a transaction of two statements per mail, with its
        pool acquire and reset, was the largest per-session cost left in the dispatcher). A mail that failed
        goes back for a retry on its own; so does one whose record failed (sent again then, with the same
        Message-ID: SMTP is at-least-once, as before)."""
        outcomes = await asyncio.gather(*(self._mail_traced(row) for row in rows))
        finished = [outcome for outcome in outcomes if isinstance(outcome, repo.MailFinish)]
        failed = [
            (row, outcome) for row, outcome in zip(rows, outcomes, strict=True) if isinstance(outcome, str)
        ]
        unrecorded = await self._record_mails(finished)
        failed.extend((row, unrecorded[row.id]) for row in rows if row.id in unrecorded)
        for row, reason in failed:
            await self._retry_later(row, reason)

    async def _mail_traced(self, row: repo.ClaimedRow) -> repo.MailFinish | str:
        """The row's mail sent (or skipped), to be recorded; or why it must be retried."""
        if not tracing.ENABLED:
            return await self._mail_outcome(row)
        # The row continues the trace of the fulfilment that queued it.
        with tracing.continued(
            row.session["outbox_traceparent"],
            f"paygate.outbox.{row.kind}",
            {"paygate.session_id": str(row.session_id), "paygate.attempt": row.attempts},
        ):
            return await self._mail_outcome(row)

    async def _mail_outcome(self, row: repo.ClaimedRow) -> repo.MailFinish | str:
        try:
            return await self.send_mail(row.id, row.session)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return _reason(exc)

    async def _record_mails(self, finished: list[repo.MailFinish]) -> dict[int, str]:
        """One statement for all; if it fails, one by one, so a row that cannot be recorded goes back alone.
        Returns why each row that could not be recorded must be retried."""
        if not finished:
            return {}
        unrecorded: dict[int, str] = {}
        try:
            async with self.pool.acquire() as conn:
                try:
                    await repo.finish_mails(conn, finished)
                    return {}
                except asyncpg.PostgresError as error:
                    log.warning(
                        "outbox mails could not be recorded at once; recording them one by one",
                        extra={"rows": len(finished), "error": _reason(error)},
                    )
                for index, finish in enumerate(finished):
                    try:
                        await repo.finish_mails(conn, [finish])
                    except asyncpg.PostgresError as error:
                        unrecorded[finish.outbox_id] = _reason(error)
                    except (asyncpg.InterfaceError, OSError) as error:
                        unrecorded.update((f.outbox_id, _reason(error)) for f in finished[index:])
                        break
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
            # No connection for the record: nothing of it stands; every row not yet judged goes back.
            for finish in finished:
                unrecorded.setdefault(finish.outbox_id, _reason(error))
        return unrecorded

    async def _retry_later(self, row: repo.ClaimedRow, reason: str) -> None:
        attempts = row.attempts
        delay = self.settings.policy.delay(attempts, self.rng)
        level = logging.ERROR if self.settings.policy.needs_attention(attempts) else logging.WARNING
        log.log(
            level,
            "outbox step failed; will retry",
            extra={"outbox_id": row.id, "kind": row.kind, "attempts": attempts, "error": reason},
        )
        with contextlib.suppress(Exception):
            async with self.pool.acquire() as conn, conn.transaction():
                await repo.retry_outbox(conn, row.id, delay, reason)
                await repo.write_audit(
                    conn,
                    row.session_id,
                    None,
                    "dispatcher",
                    f"{row.kind}_attempt_failed",
                    {"attempt": attempts, "error": reason[:300], "retry_in_s": round(delay, 3)},
                )

    async def _fulfil_rows(self, rows: list[repo.ClaimedRow]) -> None:
        if not tracing.ENABLED:
            await self.fulfil_batch(rows)
            return
        # One call carries many sessions, so it can continue one trace only: the first row's. Every other
        # row completes in a span of its own trace (see _row_traceparent).
        first = rows[0]
        with tracing.continued(
            first.session["outbox_traceparent"],
            "paygate.outbox.fulfil",
            {
                "paygate.session_id": str(first.session_id),
                "paygate.attempt": first.attempts,
                "paygate.batch_size": len(rows),
            },
        ):
            await self.fulfil_batch(rows)

    async def fulfil_batch(self, rows: list[repo.ClaimedRow]) -> None:
        """Fulfil the claimed `fulfil` rows: one IssueInvoices for the sessions without an invoice and one
        IssueCustomerAccess for those without a key or token, side by side; then each row completes (or goes
        back for a retry) on its own."""
        invoiced, accessed = await asyncio.gather(
            self._call(self.downstream.issue_invoices, [r for r in rows if not r.session["invoice_id"]]),
            self._call(
                self.downstream.issue_customer_access,
                [r for r in rows if not (r.session["api_key_id"] and r.session["access_token_id"])],
            ),
        )
        records: list[repo.FulfilmentRecord] = []
        failed: list[tuple[repo.ClaimedRow, str]] = []
        for index, row in enumerate(rows):
            record, errors = self._judge(row, invoiced.get(row.id), accessed.get(row.id), first=index == 0)
            if record is not None:
                records.append(record)
            if errors:
                failed.append((row, "; ".join(_describe(error) for error in errors)))
        unrecorded = await self._record(records, {row.id: row.session for row in rows})
        failed.extend((row, unrecorded[row.id]) for row in rows if row.id in unrecorded)
        # Retries after the shared connection is back: each takes a connection of its own.
        for row, reason in failed:
            await self._retry_later(row, reason)

    async def _record(self, records: list[repo.FulfilmentRecord], sessions: dict[int, Any]) -> dict[int, str]:
        """Record the pass: ONE statement for all its rows (issue 16: a statement and commit per row cost
        more than the rest of the pass). Returns why each row that could not be recorded must be retried.

        That statement writes all or nothing; if it fails, the rows are recorded one by one on the same
        connection, so a row that cannot be recorded goes back alone and the others complete."""
        if not records:
            return {}
        by_id = {record.outbox_id: record for record in records}
        try:
            async with self.pool.acquire() as conn:
                try:
                    completed = await repo.record_fulfilments(conn, records)
                except asyncpg.PostgresError as error:
                    log.warning(
                        "outbox pass could not be recorded at once; recording its rows one by one",
                        extra={"rows": len(records), "error": _reason(error)},
                    )
                    return await self._record_each(conn, records, sessions)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
            # No connection for the record (or it broke): nothing of the statement stands; all go back.
            return dict.fromkeys(by_id, _reason(error))
        self._observe(records, completed, sessions)
        return {}

    async def _record_each(
        self, conn: asyncpg.Connection, records: list[repo.FulfilmentRecord], sessions: dict[int, Any]
    ) -> dict[int, str]:
        unrecorded: dict[int, str] = {}
        for index, record in enumerate(records):
            try:
                completed = await repo.record_fulfilments(conn, [record])
            except asyncpg.PostgresError as error:
                unrecorded[record.outbox_id] = _reason(error)
                continue
            except (asyncpg.InterfaceError, OSError) as error:
                # The connection is gone: this row and those not yet recorded go back.
                unrecorded.update((r.outbox_id, _reason(error)) for r in records[index:])
                break
            self._observe([record], completed, sessions)
        return unrecorded

    def _observe(
        self, records: list[repo.FulfilmentRecord], completed: set[int], sessions: dict[int, Any]
    ) -> None:
        """paid -> fulfilled seconds, once per session this pass completed."""
        if self.fulfilment_seconds is None:
            return
        now = time.time()
        for record in records:
            session = sessions[record.outbox_id]
            if record.outbox_id in completed and session["paid_at"] is not None:
                waited = now - session["paid_at"].timestamp()
                self.fulfilment_seconds.labels(session["provider"], session["mode"]).observe(max(waited, 0.0))

    @staticmethod
    async def _call(
        issue: Callable[[list[Any]], Awaitable[Sequence[object]]], rows: list[repo.ClaimedRow]
    ) -> dict[int, object]:
        """Each row's outcome of one batched call; a call that failed as a whole is every row's error."""
        if not rows:
            return {}
        try:
            outcomes: Sequence[object] = await issue([row.session for row in rows])
        except asyncio.CancelledError:
            raise
        except Exception as error:
            return dict.fromkeys((row.id for row in rows), error)
        return {row.id: outcome for row, outcome in zip(rows, outcomes, strict=True)}

    def _judge(
        self, row: repo.ClaimedRow, invoice_outcome: object, access_outcome: object, *, first: bool
    ) -> tuple[repo.FulfilmentRecord | None, list[BaseException]]:
        """What to record for one row (None: nothing new to store) and the errors it met. An outcome is None
        when the session needed no such call, else the issued thing or the error. A row with errors stores
        what it did get and is retried for the rest."""
        session = row.session
        invoice = invoice_outcome if isinstance(invoice_outcome, IssuedInvoice) else None
        access = access_outcome if isinstance(access_outcome, IssuedAccess) else None
        errors = [o for o in (invoice_outcome, access_outcome) if isinstance(o, BaseException)]
        key_id = access.api_key_id if access and not session["api_key_id"] else None
        token_id = access.access_token_id if access and not session["access_token_id"] else None
        steps = [
            (action, detail)
            for action, detail in (
                ("invoice_issued", {"invoice_id": invoice.id, "number": invoice.number} if invoice else None),
                ("customer_key_issued", {"api_key_id": key_id} if key_id else None),
                ("access_token_issued", {"access_token_id": token_id} if token_id else None),
            )
            if detail is not None
        ]
        if not steps and errors:
            return None, errors
        record = repo.FulfilmentRecord(
            outbox_id=row.id,
            session_id=session["id"],
            merchant_id=session["merchant_id"],
            invoice_id=invoice.id if invoice else None,
            invoice_number=invoice.number if invoice else None,
            api_key_id=key_id,
            access_token_id=token_id,
            steps=steps,
            complete=not errors,
            send_mail=bool(session["customer_email"]),
            # Stored with the invoice id, so `invoice.issued` needs no GetInvoice per event.
            invoice_object=(
                invoice_event_object(invoice.message) if invoice and invoice.message is not None else None
            ),
            # The mail continues the trace of this row's fulfilment (None with tracing off).
            traceparent=self._row_traceparent(row, first=first),
        )
        return record, errors

    @staticmethod
    def _row_traceparent(row: repo.ClaimedRow, *, first: bool) -> str | None:
        """The first row's fulfilment is the batch's span; every other row's has a span of its own trace."""
        if first or not tracing.ENABLED:
            return tracing.current_traceparent()
        with tracing.continued(
            row.session["outbox_traceparent"],
            "paygate.outbox.fulfil",
            {"paygate.session_id": str(row.session_id), "paygate.attempt": row.attempts},
        ):
            return tracing.current_traceparent()

    async def send_mail(self, outbox_id: int, session: Any) -> repo.MailFinish:
        """Send the customer's mail (or decide to skip it); what to record. Raises StepFailed (or any error)
        when it must be retried."""
        session_id = session["id"]
        if self.mailer is None or not session["customer_email"]:
            reason = (
                "mail is disabled (PAYGATE_SMTP_HOST unset)" if self.mailer is None else "no customer email"
            )
            return _finish(outbox_id, session, "skipped", "email_skipped", {"reason": reason})
        try:
            name, url, contact = await asyncio.gather(
                self.downstream.merchant_name(str(session["merchant_id"])),
                self.downstream.access_link(str(session_id), str(session["merchant_id"])),
                self.downstream.contact_email(str(session["merchant_id"]), session["mode"]),
            )
        except grpc.aio.AioRpcError as error:
            raise StepFailed(describe_rpc_error(error)) from None
        amount = Money(int(session["amount_minor"]), session["currency"], session["exponent"])
        mail = AccessMail(
            session_id=str(session_id),
            to=session["customer_email"],
            merchant_name=name,
            invoice_number=session["invoice_number"] or "",
            amount_display=amount.display(),
            access_url=url,
            reply_to=contact,
        )
        try:
            # Rendered once to the bytes SMTP sends: flattening an EmailMessage cost a fifth of this service's
            # CPU in a burst (issue 16).
            message = render_access_mail(mail, self.mailer.sender)
        except DomainError as error:
            return _finish(outbox_id, session, "skipped", "email_skipped", {"reason": error.code})
        try:
            await self.mailer.send(message)
        except (aiosmtplib.SMTPException, OSError) as error:
            raise StepFailed(f"smtp: {type(error).__name__}: {error}"[:300]) from None
        return _finish(outbox_id, session, "done", "email_sent", {"to_domain": mail.to.rsplit("@", 1)[-1]})


def _finish(
    outbox_id: int, session: Any, status: str, action: str, detail: dict[str, Any]
) -> repo.MailFinish:
    return repo.MailFinish(outbox_id, session["id"], session["merchant_id"], status, action, detail)


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, StepFailed) else f"{type(exc).__name__}: {exc}"


def _describe(error: BaseException) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return describe_rpc_error(error)
    if isinstance(error, ItemRefused):
        return str(error)
    return f"{type(error).__name__}: {error}"[:300]
