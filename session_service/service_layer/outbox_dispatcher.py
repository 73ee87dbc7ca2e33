"""The outbox dispatcher: fulfils paid sessions and sends the customer's mail, exactly once in effect.

How a row is processed, and why no crash can double an invoice or a key:
1. claim: one autocommit statement leases due rows (`FOR UPDATE SKIP LOCKED`, then `locked_until`), so
   replicas share the queue and no transaction stays open while we call other services;
2. call: BillingService.IssueInvoice, KeysService.IssueCustomerKey and KeysService.IssueAccessToken, each
   with a deadline and each idempotent on the session id downstream. A retry after any crash (or after a
   lease ran out mid-call) gets the same invoice, key and token back, never a second one;
3. complete: one statement stores the ids on the session, audits each step, marks the row done and
   queues the mail.
On failure the row keeps its place with `attempts`, `next_attempt_at` (domain backoff, full jitter) and
`last_error`. UNIMPLEMENTED counts as a passing failure too: during a rolling deploy the peer may be old.

The dispatcher wakes on LISTEN `session_outbox` (a trigger NOTIFYs on every outbox insert, delivered at
commit) and also polls, so a lost notification or a dropped listener connection only delays work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiosmtplib
import asyncpg
import grpc

from paygate_runtime import tracing
from paygate_runtime.errors import DomainError
from paygate_runtime.money import Money
from paygate_runtime.tasks import cancel_and_wait, wait_event
from session_service.adapters import session_repository as repo
from session_service.adapters.downstream import Downstream, IssuedInvoice, describe_rpc_error
from session_service.adapters.mailer import SmtpMailer
from session_service.adapters.merchant_event_objects import invoice_event_object
from session_service.domain.customer_mail import AccessMail, compose_access_mail
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
        self._wake = asyncio.Event()
        self._inflight: dict[int, asyncio.Task[None]] = {}
        # `paygate_fulfilment_seconds{provider,mode}` (session_service.entrypoints.metrics), set by assemble:
        # seconds from the session becoming paid to its fulfilment completing, observed once per session.
        self.fulfilment_seconds: Any = None

    # ------------------------------------------------------------------------------------------ loop
    async def run(self) -> None:
        listener = asyncio.create_task(self._listen(), name="outbox-listener")
        try:
            while True:
                self._wake.clear()
                await self._fill()
                timeout = await self._sleep_for()
                await wait_event(self._wake, timeout)
        finally:
            await cancel_and_wait([listener], timeout=2)
            await self._abandon_inflight()

    async def _sleep_for(self) -> float:
        if self._inflight:
            # A finishing row wakes the loop anyway; only an idle loop needs to know when a retry is due.
            return self.settings.poll_s
        try:
            async with self.pool.acquire() as conn:
                due = await repo.next_due_in(conn)
        except (asyncpg.PostgresError, OSError):
            return self.settings.poll_s
        if due is None:
            return self.settings.poll_s
        return min(self.settings.poll_s, max(due, 0.01))

    async def _fill(self) -> None:
        """Lease as many due rows as there are free slots and start them.

        While rows are in flight, a claim waits until a quarter of the slots are free: under load every
        finishing row wakes the loop, and claiming one replacement per finished row cost a statement per
        row. An idle or lightly loaded dispatcher claims at once."""
        refill_at = max(1, self.settings.concurrency // 4)
        while (free := self.settings.concurrency - len(self._inflight)) > 0:
            if self._inflight and free < refill_at:
                return
            async with self.pool.acquire() as conn:
                rows = await repo.claim_outbox(conn, free, self.settings.lease_s)
            for row in rows:
                task = asyncio.create_task(self._process(row), name=f"outbox-{row.id}")
                self._inflight[row.id] = task
                task.add_done_callback(self._done(row.id))
            if len(rows) < free:
                return

    def _done(self, outbox_id: int) -> Callable[[asyncio.Task[None]], None]:
        def finished(task: asyncio.Task[None]) -> None:
            self._inflight.pop(outbox_id, None)
            self._wake.set()

        return finished

    async def _abandon_inflight(self) -> None:
        """On stop: cancel running rows and hand their leases back so another replica takes them at once."""
        tasks = dict(self._inflight)
        await cancel_and_wait(tasks.values(), timeout=5)
        if tasks:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    async with self.pool.acquire() as conn:
                        await repo.release_leases(conn, list(tasks))

    async def _listen(self) -> None:
        """Keep a dedicated LISTEN connection; on every (re)connect, wake once in case we missed a NOTIFY."""
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.listen_dsn)
                await conn.add_listener(CHANNEL, lambda *_: self._wake.set())
                self._wake.set()
                while not conn.is_closed():
                    await asyncio.sleep(1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "outbox listener lost its connection; polling meanwhile", extra={"error": str(exc)}
                )
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), timeout=1)
            await asyncio.sleep(1.0)

    # ------------------------------------------------------------------------------------------ rows
    async def _process(self, row: repo.ClaimedRow) -> None:
        if not tracing.ENABLED:
            await self._process_row(row)
            return
        # The row continues the trace of what queued it: the payment's ApplyPaymentEvent for `fulfil`, the
        # fulfilment for `email`; the billing and keys calls below carry it on.
        with tracing.continued(
            row.session["outbox_traceparent"],
            f"paygate.outbox.{row.kind}",
            {"paygate.session_id": str(row.session_id), "paygate.attempt": row.attempts},
        ):
            await self._process_row(row)

    async def _process_row(self, row: repo.ClaimedRow) -> None:
        try:
            if row.kind == "fulfil":
                await self.fulfil(row.id, row.session)
            else:
                await self.send_mail(row.id, row.session)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = str(exc) if isinstance(exc, StepFailed) else f"{type(exc).__name__}: {exc}"
            await self._retry_later(row, reason)

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

    async def fulfil(self, outbox_id: int, session: Any) -> None:
        """`session`: the session's row as the claim read it."""
        session_id = session["id"]
        invoice_call = None if session["invoice_id"] else self.downstream.issue_invoice(session)
        results = await asyncio.gather(
            invoice_call if invoice_call is not None else _none(),
            self._key_and_token(session),
            return_exceptions=True,
        )
        invoice = results[0] if isinstance(results[0], IssuedInvoice) else None
        key_result = results[1]
        key_id, token_id, key_error = (
            key_result if isinstance(key_result, tuple) else (None, None, key_result)
        )
        errors = [r for r in (results[0], key_error) if isinstance(r, BaseException)]
        steps = [
            (action, detail)
            for action, detail in (
                ("invoice_issued", {"invoice_id": invoice.id, "number": invoice.number} if invoice else None),
                ("customer_key_issued", {"api_key_id": key_id} if key_id else None),
                ("access_token_issued", {"access_token_id": token_id} if token_id else None),
            )
            if detail is not None
        ]
        if steps or not errors:
            # Stored with the invoice id, so `invoice.issued` needs no GetInvoice per event.
            invoice_object = (
                invoice_event_object(invoice.message) if invoice and invoice.message is not None else None
            )
            async with self.pool.acquire() as conn:
                completed = await repo.record_fulfilment(
                    conn,
                    outbox_id,
                    session_id,
                    session["merchant_id"],
                    invoice_id=invoice.id if invoice else None,
                    invoice_number=invoice.number if invoice else None,
                    api_key_id=key_id,
                    access_token_id=token_id,
                    steps=steps,
                    complete=not errors,
                    send_mail=bool(session["customer_email"]),
                    invoice_object=invoice_object,
                )
            if completed and self.fulfilment_seconds is not None and session["paid_at"] is not None:
                waited = time.time() - session["paid_at"].timestamp()
                self.fulfilment_seconds.labels(session["provider"], session["mode"]).observe(max(waited, 0.0))
        if errors:
            raise StepFailed("; ".join(_describe(error) for error in errors))

    async def _key_and_token(self, session: Any) -> tuple[str | None, str | None, BaseException | None]:
        """Key first, then the access token (the portal link leads to that key); returns what was issued."""
        issued_key: str | None = None
        issued_token: str | None = None
        try:
            if not session["api_key_id"]:
                issued_key = await self.downstream.issue_customer_key(session)
            if not session["access_token_id"]:
                issued_token = await self.downstream.issue_access_token(session)
        except (grpc.aio.AioRpcError, DomainError) as error:
            return issued_key, issued_token, error
        return issued_key, issued_token, None

    async def send_mail(self, outbox_id: int, session: Any) -> None:
        session_id = session["id"]
        if self.mailer is None or not session["customer_email"]:
            reason = (
                "mail is disabled (PAYGATE_SMTP_HOST unset)" if self.mailer is None else "no customer email"
            )
            await self._finish_mail(outbox_id, session, "skipped", "email_skipped", {"reason": reason})
            return
        try:
            name, url = await asyncio.gather(
                self.downstream.merchant_name(str(session["merchant_id"])),
                self.downstream.access_link(str(session_id), str(session["merchant_id"])),
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
        )
        try:
            message = compose_access_mail(mail, self.mailer.sender)
        except DomainError as error:
            await self._finish_mail(outbox_id, session, "skipped", "email_skipped", {"reason": error.code})
            return
        try:
            await self.mailer.send(message)
        except (aiosmtplib.SMTPException, OSError) as error:
            raise StepFailed(f"smtp: {type(error).__name__}: {error}"[:300]) from None
        await self._finish_mail(
            outbox_id, session, "done", "email_sent", {"to_domain": mail.to.rsplit("@", 1)[-1]}
        )

    async def _finish_mail(
        self, outbox_id: int, session: Any, status: str, action: str, detail: dict[str, Any]
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await repo.finish_outbox(
                conn, outbox_id, status, json.dumps(detail) if status == "skipped" else None
            )
            await repo.write_audit(conn, session["id"], session["merchant_id"], "dispatcher", action, detail)


async def _none() -> None:
    return None


def _describe(error: BaseException) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return describe_rpc_error(error)
    return f"{type(error).__name__}: {error}"[:300]
