"""The merchant webhook worker: delivers merchant events to endpoints, at least once.

How a delivery is processed, and why nothing is lost or sent more often than at-least-once needs:
1. claim: one autocommit statement leases due deliveries (`FOR UPDATE SKIP LOCKED`, then `locked_until`),
   fair per endpoint: an endpoint gets at most `per_endpoint` deliveries in flight (counting every replica's
   leases), the whole process at most `concurrency`. A hanging endpoint thus holds at most its own few slots
   for at most the 10 s timeout; other endpoints' deliveries are claimed and sent meanwhile.
2. send: the event's body (rendered once from what the trigger stored), signed with the Standard Webhooks
   library with every secret that signs right now (the current one and every rolled one still within the end
   promised for it), POSTed
   with a 10 s timeout through the hardened client (`adapters/webhook_http.py`).
3. record: one statement appends the attempt to the log and moves the delivery (delivered, retry at a later
   time, or failed once the retry window is over) and the endpoint's failure clock.
A crash between 2 and 3 leaves the lease to run out; the delivery is then sent again (at least once: the
receiver deduplicates on `webhook-id`, which is the event id, as Standard Webhooks prescribes).

The shared lease worker (paygate_runtime.lease_worker) runs the queue: it wakes on LISTEN `merchant_webhooks`
(the emit trigger NOTIFYs on commit when it fanned an event out) and also polls, so a lost notification only
delays; on a stop it hands the leases of deliveries in flight back. Beside it, a periodic job prunes what the
retention allows (finished deliveries and their attempts, then events nothing waits on; see
service_layer.merchant_events.prune).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import asyncpg
import grpc
from standardwebhooks.webhooks import Webhook

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from paygate_runtime.config import ConfigError, Env
from paygate_runtime.crypto.secret_box import SecretBox, SecretBoxError
from paygate_runtime.lease_worker import LeaseSettings, LeaseWorker, Periodic
from session_service.adapters import merchant_events_repository as repo
from session_service.adapters.mailer import SmtpMailer
from session_service.adapters.merchant_event_objects import FetchInvoice, render_object
from session_service.adapters.webhook_http import WebhookHttpClient
from session_service.domain.merchant_events import RetryPolicy, event_body
from session_service.service_layer import merchant_events
from session_service.service_layer.merchant_events import Retention, open_secret

log = logging.getLogger(__name__)

CHANNEL = "merchant_webhooks"


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    concurrency: int = 64
    per_endpoint: int = 4
    lease_s: float = 60.0
    poll_s: float = 1.0
    allow_loopback: bool = False
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    retention: Retention = field(default_factory=Retention)


def signatures(secrets: list[str], msg_id: str, timestamp: datetime, body: str) -> str:
    """Standard Webhooks: one `v1,<b64>` per signing secret, space-separated; a receiver accepts any."""
    return " ".join(Webhook(secret).sign(msg_id, timestamp, body) for secret in secrets)


def _secret(box: SecretBox, row: Any, sealed: str, plain: str) -> str | None:
    # A plain value is only there for a row a previous release wrote during a rolling update (sealed at the
    # next start); decryption happens here, right before signing, and the plaintext is never kept.
    if row[sealed] is not None:
        return open_secret(box, row["endpoint_id"], row[sealed])
    return row[plain] or None


def signing_secrets(box: SecretBox, row: Any, now: datetime) -> list[str]:
    """The current secret, then every previous one still before its own end: the rolled ones (migration
    0220, newest first; at most MAX_PREVIOUS_SECRETS) and one a previous release may have left in the old
    columns during a rolling update. Each secret once."""
    current = _secret(box, row, "secret_sealed", "secret")
    if current is None:
        raise SecretBoxError("the endpoint has no signing secret")
    secrets = [current]
    for sealed, expires in zip(
        row["previous_secrets_sealed"] or (), row["previous_secrets_expire_at"] or (), strict=True
    ):
        if expires > now:
            secrets.append(open_secret(box, row["endpoint_id"], sealed))
    expires = row["previous_secret_expires_at"]
    if expires is not None and expires > now:
        previous = _secret(box, row, "previous_secret_sealed", "previous_secret")
        if previous is not None:
            secrets.append(previous)
    return list(dict.fromkeys(secrets))


def attempt_result(delivered: bool, error: str | None) -> str:
    """The bounded `result` label of one attempt: `delivered` (a 2xx answer), `refused` (never sent: the
    endpoint's address is one paygate does not connect to, see adapters/webhook_http.py), `failed` (anything
    else: a non-2xx answer, a timeout, a connection error, an event or secret that could not be prepared)."""
    if delivered:
        return "delivered"
    if error is not None and error.startswith("address_not_allowed"):
        return "refused"
    return "failed"


class WebhookDeliveryWorker:
    """The delivery queue (`LeaseQueue` of paygate_runtime.lease_worker) and the worker that runs it: wake-up,
    slots, leases and the clean stop are the shared worker's; claiming fairly per endpoint, sending, recording
    and retention are this queue's."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        listen_dsn: str,
        settings: WebhookSettings,
        *,
        fetch_invoice: FetchInvoice | None = None,
        billing: Any = None,
        mailer: SmtpMailer | None = None,
        http: WebhookHttpClient | None = None,
        rng: Callable[[], float] = random.random,
        secret_box: SecretBox,
    ) -> None:
        self.pool = pool
        self.secret_box = secret_box
        self.billing = billing
        self.mailer = mailer
        self.listen_dsn = listen_dsn
        self.settings = settings
        self.fetch_invoice = fetch_invoice
        self.http = http or WebhookHttpClient(
            timeout_s=settings.policy.timeout_s, max_connections=settings.concurrency
        )
        self.rng = rng
        self.recorder = GroupRecorder(pool, settings.policy.disable_after_s)
        # `paygate_merchant_webhook_deliveries_total{result,mode}` and `paygate_merchant_webhook_delivery_seconds`
        # (session_service.entrypoints.metrics), set by assemble; None (no metrics) in tools and unit tests.
        self.deliveries_total: Any = None
        self.delivery_seconds: Any = None
        self.worker: LeaseWorker[Any] = LeaseWorker(
            self,
            LeaseSettings(
                name="webhook", channel=CHANNEL, concurrency=settings.concurrency, poll_s=settings.poll_s
            ),
            listen_dsn=listen_dsn,
            periodic=[
                Periodic(
                    "retention",
                    settings.retention.interval_s,
                    self.prune,
                    # Soon after a start too, so a process that restarts more often than hourly still prunes.
                    first_after_s=min(60.0, settings.retention.interval_s),
                )
            ],
        )

    async def run(self) -> None:
        try:
            # Notices a previous process recorded but did not get to mail.
            with contextlib.suppress(asyncpg.PostgresError, OSError):
                await self.send_pending_notices()
            await self.worker.run()
        finally:
            await self.http.close()

    async def prune(self) -> merchant_events.Pruned:
        return await merchant_events.prune(self.pool, self.settings.retention)

    # ------------------------------------------------------------------------------------------ LeaseQueue
    async def claim(self, limit: int) -> Sequence[Any]:
        async with self.pool.acquire() as conn:
            rows: Sequence[Any] = await repo.claim_deliveries(
                conn, limit, self.settings.per_endpoint, self.settings.lease_s
            )
        return rows

    def row_id(self, row: Any) -> int:
        return int(row["delivery_id"])

    async def process(self, row: Any) -> None:
        await self.deliver(row)

    async def failed(self, row: Any, error: Exception) -> None:
        # A bug or the database: the lease runs out and the delivery is attempted again.
        log.error(
            "webhook delivery failed before it was recorded",
            extra={"delivery_id": row["delivery_id"], "error": f"{type(error).__name__}: {error}"[:300]},
        )

    async def release(self, row_ids: Sequence[int]) -> None:
        async with self.pool.acquire() as conn:
            await repo.release_leases(conn, row_ids)

    async def next_due_in(self) -> float | None:
        async with self.pool.acquire() as conn:
            return await repo.next_due_in(conn)

    # ------------------------------------------------------------------------------------------ one delivery
    async def body_of(self, row: Any) -> str:
        obj, fetched = await render_object(row, self.fetch_invoice)
        if fetched:
            async with self.pool.acquire() as conn:
                obj = await repo.store_object(conn, row["event_id"], obj)
        return event_body(row["event_id"], row["type"], row["created_at"], row["mode"], obj)

    async def deliver(self, row: Any) -> None:
        now = datetime.now(UTC)
        attempts = int(row["attempts"])
        try:
            body = await self.body_of(row)
        except grpc.aio.AioRpcError as error:
            await self._record(row, attempts, None, f"object_unavailable: {error.code().name}", 0, None, now)
            return
        except Exception as exc:
            # A bug in rendering must still leave a trace in the log and back off, not retry every lease.
            log.exception("merchant event could not be rendered", extra={"event_id": row["event_id"]})
            await self._record(row, attempts, None, f"render_failed: {type(exc).__name__}", 0, None, now)
            return
        try:
            signature = signatures(signing_secrets(self.secret_box, row, now), row["event_id"], now, body)
        except SecretBoxError as error:
            # Sealed under an encryption key no longer configured (or tampered): retried with backoff, so
            # restoring the key version to PAYGATE_SESSION_ENCRYPTION_KEYS lets the delivery go out.
            log.error("webhook signing secret does not open", extra={"endpoint_id": str(row["endpoint_id"])})
            await self._record(
                row, attempts, None, f"signing_secret_unavailable: {error}"[:200], 0, None, now
            )
            return
        headers = {
            "content-type": "application/json",
            "user-agent": "paygate-webhooks/1",
            "webhook-id": row["event_id"],
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        }
        allow_loopback = self.settings.allow_loopback and row["endpoint_mode"] == "test"
        result = await self.http.post(row["url"], body.encode(), headers, allow_loopback=allow_loopback)
        if self.delivery_seconds is not None:
            self.delivery_seconds.observe(result.latency_ms / 1000)
        await self._record(
            row,
            attempts,
            result.status_code,
            result.error,
            result.latency_ms,
            result.body,
            now,
            delivered=result.delivered,
        )

    async def _record(
        self,
        row: Any,
        attempts: int,
        status_code: int | None,
        error: str | None,
        latency_ms: int,
        body: str | None,
        now: datetime,
        *,
        delivered: bool = False,
    ) -> None:
        policy = self.settings.policy
        retry_in: float | None = None
        if not delivered:
            delay = policy.delay(attempts, self.rng)
            window_ends = row["window_start"].timestamp() + policy.window_s
            if now.timestamp() + delay <= window_ends:
                retry_in = delay
        notices = await self.recorder.record(
            repo.AttemptRecord(
                delivery_id=row["delivery_id"],
                event_type=row["type"],
                merchant_id=row["merchant_id"],
                mode=row["mode"],
                status_code=status_code,
                error=error,
                latency_ms=latency_ms,
                response_body=body,
                delivered=delivered,
                retry_in_s=retry_in,
                window_start=row["window_start"],
            )
        )
        # Counted once the attempt is in the log: an attempt lost to a crash before this is sent again when
        # its lease runs out, and counted then.
        if self.deliveries_total is not None:
            self.deliveries_total.labels(attempt_result(delivered, error), row["endpoint_mode"]).inc()
        if notices:
            log.warning(
                "webhook endpoint disabled after days of failures",
                extra={"endpoint_id": str(row["endpoint_id"]), "merchant_id": str(row["merchant_id"])},
            )
            await self.send_pending_notices()

    # ------------------------------------------------------------------------------------------ notices
    async def send_pending_notices(self) -> None:
        """Mail each recorded notice to the merchant's contact address (the billing profile's seller email,
        else its support email); without one, or without SMTP, the notice stays recorded, marked skipped."""
        async with self.pool.acquire() as conn:
            notices = await repo.claim_notices(conn)
        for notice in notices:
            status = await self._mail_notice(notice)
            async with self.pool.acquire() as conn:
                # None: billing or SMTP unreachable; pending again, for the next notice or restart.
                await repo.finish_notice(conn, notice["id"], status or "pending")

    async def _mail_notice(self, notice: Any) -> str | None:
        """The notice's mail status, or None to try again later (billing or SMTP unreachable)."""
        if self.mailer is None:
            return "skipped: mail is disabled (PAYGATE_SMTP_HOST unset)"
        if self.billing is None:
            return "skipped: no billing client"
        try:
            profile = await self.billing.GetBillingProfile(
                billing_pb2.GetBillingProfileRequest(
                    merchant_id=str(notice["merchant_id"]),
                    # The endpoint's mode's profile: test and live each have their own contact (§6a).
                    mode=common_pb2.MODE_LIVE if notice["mode"] == "live" else common_pb2.MODE_TEST,
                )
            )
        except grpc.aio.AioRpcError:
            return None
        to = profile.seller.email or profile.support_email
        if not to:
            return "skipped: no contact email in the billing profile"
        detail = json.loads(notice["detail"]) if isinstance(notice["detail"], str) else notice["detail"]
        message = EmailMessage()
        message["From"] = self.mailer.sender
        message["To"] = to
        message["Subject"] = "paygate: a webhook endpoint was disabled"
        message.set_content(
            f"Your {notice['mode']} webhook endpoint {notice['endpoint_id']} ({detail.get('url', '')}) failed "
            "every delivery for 5 days and has been disabled. Events are still recorded: fix the receiver, "
            "enable the endpoint again (PATCH /v1/webhook_endpoints/{id} with status enabled) and redeliver "
            "what it missed (POST /v1/merchant_events/{id}/redeliver).\n"
        )
        try:
            await self.mailer.send(message)
        except (aiosmtplib.SMTPException, OSError, ValueError):
            return None
        return "sent"


class GroupRecorder:
    """Group commit for finished attempts: while one group's statement is in the database, the attempts that
    finish meanwhile queue up and go out together as the next group (one statement, one WAL flush). The
    first waiting caller writes; an idle recorder writes a lone attempt at once, so nothing waits for a
    timer. A group that fails is written again one attempt at a time, so one bad row never holds up others."""

    MAX_GROUP = 256

    def __init__(self, pool: asyncpg.Pool, disable_after_s: float) -> None:
        self.pool = pool
        self.disable_after_s = disable_after_s
        self._queue: list[tuple[repo.AttemptRecord, asyncio.Future[list[int]]]] = []
        self._writing = False

    async def record(self, record: repo.AttemptRecord) -> list[int]:
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._queue.append((record, future))
        if not self._writing:
            self._writing = True
            try:
                while self._queue:
                    await self._write(self._take())
            finally:
                self._writing = False
                # Cancelled while writing (shutdown): fail the rest so no caller waits forever; their leases
                # run out and the deliveries are attempted again.
                for _, waiting in self._queue:
                    if not waiting.done():
                        waiting.set_exception(RuntimeError("attempt not recorded: the worker stopped"))
                self._queue.clear()
        return await future

    def _take(self) -> list[tuple[repo.AttemptRecord, asyncio.Future[list[int]]]]:
        """Up to MAX_GROUP queued attempts, each delivery once (a row may change only once per statement)."""
        group: list[tuple[repo.AttemptRecord, asyncio.Future[list[int]]]] = []
        later: list[tuple[repo.AttemptRecord, asyncio.Future[list[int]]]] = []
        seen: set[int] = set()
        for item in self._queue:
            if len(group) < self.MAX_GROUP and item[0].delivery_id not in seen:
                seen.add(item[0].delivery_id)
                group.append(item)
            else:
                later.append(item)
        self._queue = later
        return group

    async def _write(self, group: list[tuple[repo.AttemptRecord, asyncio.Future[list[int]]]]) -> None:
        try:
            async with self.pool.acquire() as conn:
                notices = await repo.record_attempts(conn, [r for r, _ in group], self.disable_after_s)
        except Exception as error:  # every waiting caller must get an answer, whatever went wrong
            if len(group) == 1:
                if not group[0][1].done():
                    group[0][1].set_exception(error)
                return
            for item in group:
                await self._write([item])
            return
        for _, future in group:
            if not future.done():
                future.set_result(notices)


def billing_fetcher(stub: Any) -> FetchInvoice:
    async def fetch(request: billing_pb2.GetInvoiceRequest) -> billing_pb2.Invoice:
        return await stub.GetInvoice(request)

    return fetch


def load_webhook_settings(env: Env) -> WebhookSettings:
    base_ms = env.int("PAYGATE_MERCHANT_WEBHOOK_BACKOFF_BASE_MS", 5000, minimum=1, maximum=3_600_000)
    settings = WebhookSettings(
        concurrency=env.int("PAYGATE_MERCHANT_WEBHOOK_CONCURRENCY", 64, minimum=1, maximum=1000),
        per_endpoint=env.int("PAYGATE_MERCHANT_WEBHOOK_PER_ENDPOINT", 4, minimum=1, maximum=100),
        lease_s=env.millis("PAYGATE_MERCHANT_WEBHOOK_LEASE_MS", 60_000, minimum=100, maximum=3_600_000),
        poll_s=env.millis("PAYGATE_MERCHANT_WEBHOOK_POLL_MS", 1000, minimum=10, maximum=60_000),
        allow_loopback=env.bool("PAYGATE_ALLOW_LOOPBACK_WEBHOOKS", False),
        policy=RetryPolicy(
            base_s=base_ms / 1000,
            cap_s=env.millis(
                "PAYGATE_MERCHANT_WEBHOOK_BACKOFF_CAP_MS", 3 * 3_600_000, minimum=base_ms, maximum=86_400_000
            ),
            window_s=env.int(
                "PAYGATE_MERCHANT_WEBHOOK_RETRY_WINDOW_S", 3 * 86_400, minimum=1, maximum=30 * 86_400
            ),
            disable_after_s=env.int(
                "PAYGATE_MERCHANT_WEBHOOK_DISABLE_AFTER_S", 5 * 86_400, minimum=1, maximum=60 * 86_400
            ),
            timeout_s=env.millis("PAYGATE_MERCHANT_WEBHOOK_TIMEOUT_MS", 10_000, minimum=100, maximum=60_000),
        ),
        retention=Retention(
            days=env.int("PAYGATE_MERCHANT_EVENTS_RETENTION_DAYS", 30, minimum=1, maximum=3650),
            interval_s=env.millis(
                "PAYGATE_MERCHANT_EVENTS_PRUNE_INTERVAL_MS", 3_600_000, minimum=1000, maximum=86_400_000
            ),
        ),
    )
    if settings.lease_s < settings.policy.timeout_s + 1:
        # A lease that ran out while its POST is still waiting would let another worker send the same
        # delivery at the same time, past the endpoint's cap.
        raise ConfigError(
            "PAYGATE_MERCHANT_WEBHOOK_LEASE_MS", "must be at least PAYGATE_MERCHANT_WEBHOOK_TIMEOUT_MS + 1000"
        )
    return settings
