"""Reconciliation: ask the provider's API about payments whose webhook never came (contract §11).

Providers lose webhooks (an endpoint down longer than their retry window, a wrong secret, an unsubscribed
event type). Every payment the gateway creates at a provider is recorded in `provider_payments`; this worker
looks at each one `after_s` after it was created, and again with backoff (doubling, capped at
`max_interval_s`) while its session stays open:

- the session is settled (paid, failed, refunded): a webhook did the work; the payment is done, without
  calling the provider;
- the session is `created` or `pending`: the payment is read at the provider's API, and what the API says is
  turned into the very webhook body the provider would have sent (adapters.payment_providers
  `reconcile_event`), stored in the inbox with `source = 'reconcile'` and applied by the webhook's own
  EventProcessor. So the same normaliser, the same ApplyPaymentEvent, the same quarantine rules (an amount that
  differs at the provider is quarantined as `amount_mismatch`). The session service counts one payment once
  (by its provider reference): a real webhook arriving later is a new inbox event whose apply is the recorded
  no-op `already_paid`;
- the session expired less than `late_window_s` ago: a payment still open at the provider is cancelled there
  first (an expiring One.com session's payment must stop taking money), and money found anyway is applied as
  the late webhook would be: quarantined as a payment on a closed session;
- a quarantined payment leaves its session open (`created`, or `expired`), but its money is final at the
  provider: once its webhook's money is in quarantine (short, another currency, late) the payment is done
  without a read (`money_quarantined`; One.com, whose webhook names the payment by its API id). The session
  service keeps one quarantine entry per payment anyway, so a read that races the webhook (or Stripe's, whose
  webhook names the PaymentIntent) is applied as the recorded no-op `already_quarantined`.

Replica-safe: payments are claimed with leases (`FOR UPDATE SKIP LOCKED`), and the inbox event id is a function
of the payment and its state, so two replicas that find the same thing store one event.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import grpc

from paygate.session.v1 import session_pb2, session_pb2_grpc
from paygate_runtime.grpc_errors import is_transient
from paygate_runtime.proto_convert import to_datetime
from webhook_gateway.adapters.onecom_api import ProviderMetrics
from webhook_gateway.adapters.payment_providers import (
    PaymentProvider,
    ProviderPayment,
    ReconcileEvent,
    webhook_reference,
)
from webhook_gateway.adapters.provider_errors import ProviderError
from webhook_gateway.adapters.provider_payments_repository import ProviderPaymentsRepository, WatchedPayment
from webhook_gateway.service_layer.relay import EventProcessor, backoff_delay

log = logging.getLogger(__name__)

_S = session_pb2
_OPEN_STATUSES: Final = (_S.SESSION_STATUS_CREATED, _S.SESSION_STATUS_PENDING)
_MAX_ERROR: Final = 300
# The outcome of a payment finished because its webhook's money is already in quarantine.
MONEY_QUARANTINED: Final = "money_quarantined"


@dataclass(frozen=True)
class ReconcileSettings:
    after_s: float = 300.0
    interval_s: float = 5.0  # how often the worker looks for due payments
    max_interval_s: float = 3600.0  # the longest pause between two reads of one open payment
    late_window_s: float = 86_400.0
    lease_s: float = 120.0  # a claimed payment is another replica's again after this
    batch_size: int = 16
    concurrency: int = 4
    error_base_s: float = 5.0  # first retry after the provider or the session service failed
    expiry_grace_s: float = 10.0  # look again this soon after expires_at (the sweeper's own period)
    rpc_deadline_s: float = 5.0


class Reconciler:
    def __init__(
        self,
        payments: ProviderPaymentsRepository,
        providers: Mapping[str, PaymentProvider],
        sessions: session_pb2_grpc.SessionServiceStub,
        processor: EventProcessor,
        settings: ReconcileSettings,
        *,
        metrics: ProviderMetrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self.payments = payments
        self.providers = dict(providers)
        self.sessions = sessions
        self.processor = processor
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self._rng = rng or random.Random()

    # ---- the loop ------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        while stop is None or not stop.is_set():
            try:
                claimed = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("reconciliation pass failed; retrying", exc_info=True)
                claimed = 0
            if claimed < self.settings.batch_size:
                await asyncio.sleep(self.settings.interval_s)

    async def run_once(self) -> int:
        """Claim the due payments and check each; returns how many were claimed."""
        due = await self.payments.claim_due(
            self.settings.batch_size, self.settings.lease_s, sorted(self.providers)
        )
        if not due:
            return 0
        slots = asyncio.Semaphore(self.settings.concurrency)

        async def one(payment: WatchedPayment) -> None:
            async with slots:
                try:
                    await self.check(payment)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # A bug must not lose the payment: the lease ends and it is checked again.
                    log.exception(
                        "reconciling a payment failed",
                        extra={"provider": payment.provider, "session_id": payment.session_id},
                    )

        await asyncio.gather(*(one(payment) for payment in due))
        return len(due)

    # ---- one payment ---------------------------------------------------------------------------------

    def _count(self, provider: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.reconciled.labels(provider, result).inc()

    def _error_delay(self, payment: WatchedPayment) -> float:
        return backoff_delay(
            payment.checks, self.settings.error_base_s, self.settings.max_interval_s, self._rng
        )

    def _next_delay(self, payment: WatchedPayment, session: session_pb2.Session) -> float:
        """Backoff between reads of a payment that is still open: after_s, 2·after_s, 4·after_s, ... capped;
        but never past the session's expiry, when its payment is to be cancelled."""
        exponent = min(max(payment.checks - 1, 0), 30)
        delay = min(self.settings.max_interval_s, self.settings.after_s * (2**exponent))
        delay = delay / 2 + self._rng.uniform(0, delay / 2)
        if session.status == _S.SESSION_STATUS_CREATED:
            until_expiry = (_expires_at(session) - self.clock()).total_seconds()
            delay = min(delay, max(until_expiry, 0.0) + self.settings.expiry_grace_s)
        return delay

    async def _again_later(self, payment: WatchedPayment, error: str, result: str) -> None:
        self._count(payment.provider, result)
        await self.payments.check_again(payment, delay_s=self._error_delay(payment), error=error[:_MAX_ERROR])

    async def check(self, payment: WatchedPayment) -> None:
        provider = self.providers.get(payment.provider)
        if provider is None or not provider.available(payment.mode):
            await self._again_later(payment, "provider_not_configured", "not_configured")
            return
        try:
            session = await self.sessions.GetSession(
                _S.GetSessionRequest(session_id=payment.session_id, merchant_id=payment.merchant_id),
                timeout=self.settings.rpc_deadline_s,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                await self.payments.done(payment, outcome="session_not_found")
                self._count(payment.provider, "session_not_found")
                return
            kind = "session_unavailable" if is_transient(error) else "session_error"
            await self._again_later(payment, f"{kind}: {error.code().name.lower()}", kind)
            return

        now = self.clock()
        if session.status == _S.SESSION_STATUS_EXPIRED:
            if (now - _expires_at(session)).total_seconds() > self.settings.late_window_s:
                await self.payments.done(payment, outcome="late_window_closed")
                self._count(payment.provider, "late_window_closed")
                return
        elif session.status not in _OPEN_STATUSES:
            # Paid, failed or refunded: a webhook (or an earlier check) settled it; no API call needed.
            await self.payments.done(payment, outcome="settled")
            self._count(payment.provider, "settled")
            return
        else:
            wait = (payment.created_at - now).total_seconds() + self.settings.after_s
            if wait > 0 and now < _expires_at(session):
                await self.payments.check_again(payment, delay_s=wait, checked=False)
                return

        if await self._money_quarantined(payment):
            return

        try:
            current = await provider.read_payment(payment.mode, payment.payment_id)
        except ProviderError as error:
            await self._again_later(payment, f"{error.code}: {error.message}", "provider_unavailable")
            return

        if session.status == _S.SESSION_STATUS_EXPIRED and not current.final:
            cancelled = await self._cancel(provider, payment)
            if cancelled is None:
                return
            current = cancelled

        event = provider.reconcile_event(current, session)
        outcome = None
        if event is not None:
            outcome = await self._apply(payment, event)
        self._count(payment.provider, outcome or "no_change")
        if current.final:
            await self.payments.done(
                payment,
                outcome=f"reconciled_{outcome}" if outcome else "final_at_provider",
                provider_status=current.status,
            )
        else:
            await self.payments.check_again(
                payment, delay_s=self._next_delay(payment, session), provider_status=current.status
            )

    async def _money_quarantined(self, payment: WatchedPayment) -> bool:
        """Finish a payment whose money its webhook already reported and the session service quarantined
        (short, another currency, late): the session stays open, but the payment is final at the provider and
        its money is in its one quarantine entry, so there is nothing left to ask. Only where the webhook's
        reference is known to be this payment's (One.com); a Stripe payment is read once more instead, and its
        event is the recorded no-op `already_quarantined`."""
        reference = webhook_reference(payment.provider, payment.payment_id)
        if reference is None or not await self.payments.money_quarantined(payment, reference):
            return False
        await self.payments.done(payment, outcome=MONEY_QUARANTINED)
        self._count(payment.provider, MONEY_QUARANTINED)
        return True

    async def _cancel(self, provider: PaymentProvider, payment: WatchedPayment) -> ProviderPayment | None:
        """Cancel the open payment of an expired session; None when it must be tried again later."""
        try:
            cancelled = await provider.cancel_payment(payment.mode, payment.payment_id)
        except ProviderError as error:
            if error.code != "provider_session_complete":
                await self._again_later(payment, f"cancel: {error.code}: {error.message}", "cancel_failed")
                return None
            # Paid meanwhile: read what was paid, and apply it as the late webhook would be.
            try:
                return await provider.read_payment(payment.mode, payment.payment_id)
            except ProviderError as again:
                await self._again_later(payment, f"{again.code}: {again.message}", "provider_unavailable")
                return None
        await self.payments.mark_canceled(payment.provider, payment.payment_id)
        log.info(
            "provider payment cancelled for an expired session",
            extra={"provider": payment.provider, "session_id": payment.session_id},
        )
        return cancelled

    async def _apply(self, payment: WatchedPayment, event: ReconcileEvent) -> str:
        """Store the event in the inbox (once per payment state) and apply it through the webhook path."""
        stored = await self.payments.store_reconcile_event(
            provider=payment.provider,
            event_id=event.event_id,
            event_type=event.event_type,
            raw_body=event.raw_body,
            session_id=payment.session_id,
            provider_reference=event.provider_reference,
            mode=payment.mode,
            lease_s=self.processor.settings.lease_s,
        )
        if stored is None:
            # Found before (by us or by another replica): its inbox row carries the outcome, or the relay is
            # still applying it.
            return "already_recorded"
        await self.processor.process(stored)
        recorded = await self.processor.repo.get(stored.id)
        outcome = (recorded.outcome if recorded is not None else None) or "received"
        log.info(
            "payment reconciled from the provider's API",
            extra={
                "provider": payment.provider,
                "session_id": payment.session_id,
                "event_type": event.event_type,
                "outcome": outcome,
            },
        )
        return outcome


def _expires_at(session: session_pb2.Session) -> datetime:
    return to_datetime(session.expires_at)
