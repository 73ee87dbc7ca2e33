"""Applying stored events to the session service: right after the reply, and again by the relay until done.

An event is applied as the receiving handler normalised it (stored beside its raw body); only rows stored
without that reading (older rows, reconciliation's) are normalised from their body here.

One `EventProcessor.process(event)` is shared by the three callers: the background task started after a
webhook's 2xx, the relay worker that polls for due rows, and a merchant's replay. Each caller holds a lease
on the row (`next_attempt_at` in the future), so two gateways rarely work on one event, and when they do
the session service's idempotency on (provider, event id) keeps the effect single.

Failures:
- transient (session service down, slow, overloaded): the row stays `received` and is retried with
  exponential backoff and jitter;
- NOT_FOUND (the session does not exist, perhaps not committed yet): retried the same way until the unknown
  session window has passed since receipt, then `quarantined` with outcome `unknown_session`;
- any other refusal (INVALID_ARGUMENT, UNIMPLEMENTED, ...): `failed` with the error kept; a merchant may
  replay it once the cause is fixed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import grpc

from paygate.session.v1 import session_pb2, session_pb2_grpc
from paygate_runtime import tracing
from paygate_runtime.grpc_errors import error_code, is_transient
from paygate_runtime.tasks import cancel_and_wait
from webhook_gateway.adapters.batched_applies import BatchedApplier
from webhook_gateway.adapters.group_writer import GroupWriter
from webhook_gateway.adapters.inbox_repository import (
    FAILED,
    IGNORED,
    QUARANTINED,
    UNKNOWN_SESSION,
    Finish,
    InboxEvent,
    InboxRepository,
)
from webhook_gateway.providers.errors import WebhookRejected
from webhook_gateway.providers.normalized import NormalizedEvent, VerifiedEnvelope
from webhook_gateway.providers.normalized_json import load_normalized
from webhook_gateway.providers.payload import parse_json_object
from webhook_gateway.providers.standard_webhooks import normalize_onecom
from webhook_gateway.providers.stripe_webhooks import normalize_stripe
from webhook_gateway.service_layer.payment_events import InboxVerdict, apply_request, mode_name, verdict_for

log = logging.getLogger(__name__)

MAX_ERROR_LENGTH: Final[int] = 500


class RetryLater(Exception):
    """The event could not be applied now for a passing reason."""


class SessionUnknown(Exception):
    """The session service does not know the event's session (or payment) yet."""


# A provider's handler applies one stored event and says what to record; it raises RetryLater or
# SessionUnknown. The web3 provider registers its own (it checks the chain before applying).
EventHandler = Callable[[InboxEvent], Awaitable[InboxVerdict]]
Normalizer = Callable[[VerifiedEnvelope], NormalizedEvent]
# An async step that may complete a normalised event before it is applied (Stripe: the PaymentIntent of a
# charge that a refund or dispute names alone). It raises RetryLater for a passing failure.
Enricher = Callable[[NormalizedEvent], Awaitable[NormalizedEvent]]

NORMALIZERS: Final[dict[str, Normalizer]] = {"stripe": normalize_stripe, "onecom": normalize_onecom}


@dataclass(frozen=True)
class RelaySettings:
    apply_deadline_s: float = 2.0
    unknown_session_window_s: float = 600.0
    retry_base_s: float = 1.0
    retry_max_s: float = 300.0
    interval_s: float = 1.0
    lease_s: float = 10.0
    batch_size: int = 100
    concurrency: int = 32
    # During a burst of replies (see IngressGauge): an event is applied once it has been due this long, and at
    # the full rate again once fulfilment lags this far behind.
    busy_defer_s: float = 1.0
    busy_max_lag_s: float = 10.0


def backoff_delay(attempts: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: exponential, capped, with equal jitter.

    Half of the delay is fixed and half random, so retries of events that failed together (an outage)
    spread out instead of hitting the recovering service at once, yet never come back immediately.
    """
    exponent = max(attempts, 1) - 1
    ceiling = max_s if exponent >= 64 else min(max_s, base_s * (2**exponent))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"


def _rpc_error_text(error: grpc.aio.AioRpcError) -> str:
    code = error_code(error) or error.code().name.lower()
    return _clip(f"{code}: {error.details() or ''}".rstrip(": "))


def envelope_of(event: InboxEvent) -> VerifiedEnvelope:
    """Rebuild the envelope of a stored event; its signature was checked when it was received."""
    payload = parse_json_object(event.raw_body.decode("utf-8"))
    # The mode stored on receipt (the verifying secret's, for One.com) travels with the event again.
    return VerifiedEnvelope(
        event_id=event.event_id,
        event_type=event.event_type,
        payload=payload,
        raw=event.raw_body,
        mode=event.mode if event.provider != "stripe" else None,
    )


def normalized_of(event: InboxEvent, normalize: Normalizer) -> NormalizedEvent:
    """What the event means: as the receiving handler stored it, else (rows stored without it, or by
    another version) `normalize` of its raw body."""
    if event.normalized is not None:
        try:
            return load_normalized(event.normalized)
        except (ValueError, TypeError):
            log.warning(
                "stored normalised event unreadable; normalising its body", extra={"inbox_id": event.id}
            )
    return normalize(envelope_of(event))


class EventProcessor:
    def __init__(
        self,
        repo: InboxRepository,
        session: session_pb2_grpc.SessionServiceStub,
        settings: RelaySettings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.repo = repo
        # Applies finish together under load (the relay runs `concurrency` at once): one commit per batch.
        self.finisher: GroupWriter[Finish, None] = GroupWriter(repo.finish_many, max_inflight=2)
        self.session = session
        # Events applied side by side (the relay's claims, a burst's deferred applies) share one call.
        self.applier = BatchedApplier(session, settings.apply_deadline_s)
        self.settings = settings
        self.clock = clock
        self.enrichers: dict[str, Enricher] = {}
        self.handlers: dict[str, EventHandler] = {
            provider: self._normalizing_handler(normalize, provider)
            for provider, normalize in NORMALIZERS.items()
        }

    def register(self, provider: str, handler: EventHandler) -> None:
        self.handlers[provider] = handler

    def enrich(self, provider: str, enricher: Enricher) -> None:
        """Run `enricher` on this provider's normalised events before they are applied."""
        self.enrichers[provider] = enricher

    @property
    def providers(self) -> list[str]:
        return sorted(self.handlers)

    async def process(self, event: InboxEvent) -> None:
        """Apply one leased event and record the result; never raises for an event's own problems."""
        if not tracing.ENABLED:
            await self._process(event)
            return
        # The apply belongs to the trace of the webhook request that stored the event, whichever gateway
        # replica and whichever caller (inline, relay, replay) runs it.
        with tracing.continued(
            event.traceparent,
            "paygate.inbox.apply",
            {
                "paygate.provider": event.provider,
                "paygate.inbox_id": event.id,
                "paygate.attempt": event.attempts,
            },
        ):
            await self._process(event)

    async def _process(self, event: InboxEvent) -> None:
        handler = self.handlers.get(event.provider)
        if handler is None:
            await self._retry(event, f"no handler for provider {event.provider}")
            return
        try:
            verdict = await handler(event)
        except RetryLater as exc:
            await self._retry(event, str(exc))
            return
        except SessionUnknown as exc:
            if (self.clock() - event.received_at).total_seconds() >= self.settings.unknown_session_window_s:
                await self.repo.finish(
                    event.id, status=QUARANTINED, outcome=UNKNOWN_SESSION, last_error=_clip(str(exc))
                )
                # Counted by paygate_inbox_unknown_session_events; the line says which event, for the runbook.
                log.warning(
                    "webhook event matches no session: quarantined as unknown_session",
                    extra={"inbox_id": event.id, "provider": event.provider, "event_id": event.event_id},
                )
            else:
                await self._retry(event, f"{UNKNOWN_SESSION}: {exc}")
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A bug must not lose an event: it stays `received` and is retried with backoff.
            log.exception("applying a webhook event failed", extra={"inbox_id": event.id})
            await self._retry(event, f"internal_error: {type(exc).__name__}")
            return
        await self.finisher.submit(
            Finish(
                event.id,
                status=verdict.status,
                outcome=verdict.outcome,
                merchant_id=verdict.merchant_id,
                mode=verdict.mode,
                quarantine_id=verdict.quarantine_id,
                last_error=verdict.last_error,
                # Recorded only where the event named no session itself (InboxRepository.finish_many).
                session_id=verdict.session_id,
            )
        )

    async def _retry(self, event: InboxEvent, error: str) -> None:
        delay = backoff_delay(event.attempts, self.settings.retry_base_s, self.settings.retry_max_s)
        await self.repo.retry_later(event.id, delay_s=delay, error=_clip(error))

    def _normalizing_handler(self, normalize: Normalizer, provider: str) -> EventHandler:
        async def handle(event: InboxEvent) -> InboxVerdict:
            try:
                normalized = normalized_of(event, normalize)
            except (ValueError, WebhookRejected) as exc:  # stored bodies were verified JSON objects
                return InboxVerdict(status=IGNORED, outcome="malformed_payload", last_error=_clip(str(exc)))
            if normalized.ignored:
                return InboxVerdict(status=IGNORED, outcome=normalized.ignore_reason or "ignored")
            enricher = self.enrichers.get(provider)
            if enricher is not None:
                normalized = await enricher(normalized)
            return await self._apply(normalized, event)

        return handle

    async def _apply(self, normalized: NormalizedEvent, event: InboxEvent) -> InboxVerdict:
        try:
            reply = await self.applier.apply(apply_request(normalized, event.received_at))
        except grpc.aio.AioRpcError as error:
            if is_transient(error):
                raise RetryLater(_rpc_error_text(error)) from None
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise SessionUnknown(_rpc_error_text(error)) from None
            merchant_id, mode = await self._owner_of(normalized.session_id)
            return InboxVerdict(
                status=FAILED,
                outcome=error_code(error) or error.code().name.lower(),
                merchant_id=merchant_id,
                mode=mode,
                last_error=_rpc_error_text(error),
            )
        return verdict_for(reply)

    async def _owner_of(self, session_id: str | None) -> tuple[str | None, str | None]:
        """Best effort: a failed event is shown to the merchant whose session it names."""
        if not session_id:
            return None, None
        try:
            session = await self.session.GetSession(
                session_pb2.GetSessionRequest(session_id=session_id), timeout=self.settings.apply_deadline_s
            )
        except grpc.aio.AioRpcError:
            return None, None
        return session.merchant_id or None, mode_name(session.mode)


# During a burst (see IngressGauge): the relay's pace, BUSY_BATCH_SIZE events every BUSY_PAUSE_S, which is
# also how often a deferred inline apply looks whether the burst is over.
BUSY_BATCH_SIZE = 4
BUSY_PAUSE_S = 0.1


class IngressGauge:
    """How many webhook requests this gateway is answering right now, and whether a burst is on.

    Providers time out and retry when replies are slow, while an apply can wait a moment in the committed
    inbox. So during a burst, applying steps aside, in three steps:
    - an event is not applied before it has been due for `RelaySettings.busy_defer_s` (1 s): a short burst
      is answered first and applied right after, at the relay's full rate;
    - an older one is applied at a paced rate (`BUSY_BATCH_SIZE` every `BUSY_PAUSE_S`), so a long burst
      still fulfils while the replies keep most of the cores;
    - once an event has been due for `RelaySettings.busy_max_lag_s` (10 s), the relay applies at its full
      rate, burst or not: a stream that keeps the gateway busy never leaves fulfilment behind without
      bound.
    The burst flag holds for `hold_s` after the last crowded moment, because the in-flight count of a busy
    server flickers below the bound between requests.
    """

    def __init__(
        self, busy_above: int, hold_s: float = 0.5, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.busy_above = busy_above
        self.hold_s = hold_s
        self.clock = clock
        self.in_flight = 0
        self._crowded_at = float("-inf")

    @property
    def busy(self) -> bool:
        return self.in_flight > self.busy_above or self.clock() - self._crowded_at < self.hold_s

    def answering(self) -> IngressGauge:
        """`with gauge.answering():` around one reply. The gauge is its own context manager, since a
        generator-based one cost 2 µs on every webhook reply (issue 16); the count nests, as replies overlap."""
        return self

    def __enter__(self) -> None:
        self.in_flight += 1
        if self.in_flight > self.busy_above:
            self._crowded_at = self.clock()

    def __exit__(self, *exc_info: object) -> None:
        self.in_flight -= 1


class InlineApplier:
    """Background applies started right after a webhook's 2xx, bounded so a burst cannot pile up tasks.

    Above the bound, or while the gateway is busy answering a burst, the event is left due for the relay
    instead: it is stored either way. An event reserved just before a burst began (the gateway cannot see a
    burst coming) waits it out like the relay's events, for at most `busy_defer_s`, holding its lease.
    """

    def __init__(self, processor: EventProcessor, limit: int, gauge: IngressGauge | None = None) -> None:
        self.processor = processor
        self.limit = limit
        self.gauge = gauge
        self._reserved = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def reserve(self) -> bool:
        if self._reserved >= self.limit or (self.gauge is not None and self.gauge.busy):
            return False
        self._reserved += 1
        return True

    def release(self) -> None:
        self._reserved -= 1

    def start(self, event: InboxEvent) -> None:
        """Apply a reserved, freshly stored event in the background."""
        task = asyncio.create_task(self._run(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, event: InboxEvent) -> None:
        try:
            await self._wait_out_burst()
            await self.processor.process(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The row keeps its lease and becomes due for the relay when it ends.
            log.exception("background apply failed", extra={"inbox_id": event.id})
        finally:
            self.release()

    async def _wait_out_burst(self) -> None:
        gauge = self.gauge
        if gauge is None:
            return
        # Well inside the lease, so that the relay never takes the row over while it waits.
        wait_s = min(self.processor.settings.busy_defer_s, self.processor.settings.lease_s / 2)
        until = gauge.clock() + wait_s
        while gauge.busy and gauge.clock() < until:
            await asyncio.sleep(BUSY_PAUSE_S)

    async def drain(self, timeout: float) -> None:
        """On shutdown: let running applies finish briefly, then cancel (the relay redoes them later)."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        await cancel_and_wait(pending, timeout=5)


async def _fulfilment_keeps_up(processor: EventProcessor) -> bool:
    """No event has been waiting, due, for `busy_max_lag_s` or longer."""
    waited_s = await processor.repo.longest_due_wait_s(processor.providers)
    return waited_s < processor.settings.busy_max_lag_s


async def run_relay(
    processor: EventProcessor, stop: asyncio.Event | None = None, gauge: IngressGauge | None = None
) -> None:
    """Poll for due events forever (or until `stop`) and keep up to `concurrency` applies running; during a
    burst of webhook replies, deferred, then paced, unless fulfilment lags behind (see IngressGauge).

    A claim takes only as many rows as there are free slots, refilled once a quarter of them is free: no
    claimed row waits behind others while its lease runs, and the pipeline never empties to refill (waiting
    for a whole batch let its slowest apply idle the other slots)."""
    settings = processor.settings
    refill_at = max(1, settings.concurrency // 4)
    running: set[asyncio.Task[None]] = set()

    async def one(event: InboxEvent) -> None:
        try:
            await processor.process(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("relay apply failed", extra={"inbox_id": event.id})

    try:
        while stop is None or not stop.is_set():
            busy = gauge is not None and gauge.busy
            free = settings.concurrency - len(running)
            if free < refill_at:
                await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                continue
            paced, limit, events = busy, free, []  # what a failed claim leaves: wait, then try again
            try:
                paced = busy and await _fulfilment_keeps_up(processor)
                limit = min(free, BUSY_BATCH_SIZE if paced else settings.batch_size)
                events = await processor.repo.claim_due(
                    limit,
                    settings.lease_s,
                    processor.providers,
                    overdue_s=settings.busy_defer_s if paced else 0.0,
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("relay could not claim events; retrying", exc_info=True)
            for event in events:
                task = asyncio.create_task(one(event), name=f"relay-{event.id}")
                running.add(task)
                task.add_done_callback(running.discard)
            if paced:
                await asyncio.sleep(BUSY_PAUSE_S)
            elif len(events) < limit:
                await asyncio.sleep(settings.interval_s)
        # Stopped: let the applies already running record their verdicts.
        await asyncio.gather(*running, return_exceptions=True)
    finally:
        # Cancelled: the rows keep their lease and are due again when it ends.
        await cancel_and_wait(running, timeout=5)
