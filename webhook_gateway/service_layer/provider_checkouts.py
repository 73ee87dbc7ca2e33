"""Keeping our sessions and the providers' payments in step: the checkout coordinator.

A `stripe` session gets a Stripe Checkout Session and a `onecom` session a One.com payment (when that
provider's API is configured for the session's mode), both through the provider interface
(adapters.payment_providers). Each payment created is also recorded in the gateway's own
`provider_payments`, which the reconciliation worker reads (service_layer.reconciliation).

Failure policy (a payments choice). Once our session is committed it is the merchant's object, so a provider
failure never turns the create into an error that invites a blind retry (which, without an Idempotency-Key,
would make a second session). The create answers 201 without `provider_checkout_url` and with
`provider_checkout_error: {code, message}`; the checkout page says the card rail is unavailable. The payment
is then created lazily, under the same provider idempotency key, when the customer opens `/checkout` (the `url`
every session has) or when the merchant calls `POST /v1/sessions/{id}/provider_checkout`. A provider URL is
shown only once the session service has recorded it, so that an expiry can always close the payment it
belongs to.

Expiry: the merchant's expire closes the provider's page or payment first; if the provider cannot be reached
our session stays open (503), and if the customer already paid there the expire is refused (409), so the
payment on its way is applied instead of quarantined. Sessions the sweeper expires: Stripe's page is made to
close no later than our session (see adapters.stripe_checkout.stripe_expires_at); a One.com payment is
cancelled by the reconciliation worker once it sees the session expired.

The decisions live in service_layer.checkout_rules; this module makes the calls. A failed session-service
call is raised as the gRPC error, for the entrypoint's one error table; a refused provider close is raised as
checkout_rules.ExpireRefused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

import grpc

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2, session_pb2_grpc
from paygate_runtime.proto_convert import to_datetime
from webhook_gateway.adapters.payment_providers import PaymentProvider, mode_of
from webhook_gateway.adapters.provider_errors import ProviderError
from webhook_gateway.adapters.provider_payments_repository import ProviderPaymentsRepository
from webhook_gateway.service_layer import checkout_rules as rules

log = logging.getLogger(__name__)

_MAX_REMEMBERED_FAILURES = 10_000


class ProviderCheckouts:
    """Creates the provider's page or payment for a session (at most one, retried safely), records it for
    reconciliation, and closes it first when the merchant expires the session."""

    def __init__(
        self,
        providers: Mapping[str, PaymentProvider],
        payments: ProviderPaymentsRepository | None = None,
        *,
        first_check_in_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.providers = dict(providers)
        self.payments = payments
        self.first_check_in_s = first_check_in_s
        self._clock = clock
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}  # lock and its users
        self._failures: OrderedDict[str, tuple[float, ProviderError]] = OrderedDict()

    @property
    def stripe(self) -> PaymentProvider | None:
        return self.providers.get("stripe")

    def provider_for(self, session: session_pb2.Session) -> PaymentProvider | None:
        provider = self.providers.get(session.provider)
        if provider is None:
            return None
        # A Stripe key of the other mode is reported when creating (provider_mode_mismatch); a mode without
        # a One.com key simply has no One.com API (the page then shows the manual instructions).
        if provider.name != "stripe" and not provider.available(mode_of(session)):
            return None
        return provider

    def wanted(self, session: session_pb2.Session) -> bool:
        return rules.wants_page(session, has_provider=self.provider_for(session) is not None)

    def _lock(self, session_id: str) -> asyncio.Lock:
        # One provider call per session at a time in this process: concurrent requests with one idempotency
        # key would get the provider's "request in progress" conflict instead of the payment.
        entry = self._locks.setdefault(session_id, (asyncio.Lock(), [0]))
        entry[1][0] += 1
        return entry[0]

    def _release(self, session_id: str) -> None:
        entry = self._locks[session_id]
        entry[1][0] -= 1
        if entry[1][0] == 0:
            del self._locks[session_id]

    def _remember_failure(self, session_id: str, error: ProviderError) -> None:
        self._failures[session_id] = (self._clock(), error)
        self._failures.move_to_end(session_id)
        while len(self._failures) > _MAX_REMEMBERED_FAILURES:
            self._failures.popitem(last=False)

    async def ensure(
        self,
        sessions: session_pb2_grpc.SessionServiceStub,
        session: session_pb2.Session,
        *,
        pause_after_failure: bool = False,
    ) -> tuple[session_pb2.Session, ProviderError | None]:
        """The session with its provider page recorded, or unchanged with the reason it has none."""
        provider = self.provider_for(session)
        if provider is None or not self.wanted(session):
            return session, None
        if pause_after_failure:
            failed = self._failures.get(session.id)
            if failed is not None and rules.still_paused(failed[0], failed[1], self._clock()):
                return session, failed[1]
        lock = self._lock(session.id)
        try:
            async with lock:
                try:
                    created = await provider.create_payment(session)
                    await self._watch(provider.name, created.payment_id, session)
                except ProviderError as error:
                    log.warning(
                        "provider checkout not created",
                        extra={
                            "session_id": session.id,
                            "provider": provider.name,
                            "code": error.code,
                            "detail": error.message,
                        },
                    )
                    self._remember_failure(session.id, error)
                    return session, error
                self._failures.pop(session.id, None)
                return await self._record(
                    sessions, session, provider, created.payment_id, created.checkout_url or ""
                )
        finally:
            self._release(session.id)

    async def _watch(self, provider: str, payment_id: str, session: session_pb2.Session) -> None:
        """Record the payment for reconciliation before it is shown anywhere: a payment the customer can reach
        is always one the worker knows about."""
        if self.payments is None:
            return
        try:
            await self.payments.record(
                provider=provider,
                payment_id=payment_id,
                session_id=session.id,
                merchant_id=session.merchant_id,
                mode=mode_of(session),
                session_expires_at=to_datetime(session.expires_at),
                first_check_in_s=self.first_check_in_s,
            )
        except Exception:
            log.warning(
                "provider payment not recorded",
                extra={"session_id": session.id, "provider": provider},
                exc_info=True,
            )
            raise rules.not_recorded_yet("payment") from None

    async def _record(
        self,
        sessions: session_pb2_grpc.SessionServiceStub,
        session: session_pb2.Session,
        provider: PaymentProvider,
        payment_id: str,
        url: str,
    ) -> tuple[session_pb2.Session, ProviderError | None]:
        try:
            recorded = await sessions.SetProviderCheckout(
                session_pb2.SetProviderCheckoutRequest(
                    session_id=session.id,
                    merchant_id=session.merchant_id,
                    mode=session.mode,
                    provider_session_id=payment_id,
                    provider_checkout_url=url,
                )
            )
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                return session, rules.not_recorded_yet("page")
            # Another page was recorded first (a replica with another idempotency outcome): keep that one.
            try:
                current = await sessions.GetSession(session_pb2.GetSessionRequest(session_id=session.id))
            except grpc.aio.AioRpcError:
                return session, rules.not_recorded_yet("page")
            if current.provider_session_id != payment_id:
                await self.close_page(provider, mode_of(session), payment_id)
            return current, None
        if rules.closed_while_creating(recorded.status):
            await self.close_page(provider, mode_of(session), payment_id)
        return recorded, None

    async def close_page(self, provider: PaymentProvider, mode: str, payment_id: str) -> None:
        """Best-effort close of a provider page or payment that no open session of ours points to."""
        try:
            await provider.cancel_payment(mode, payment_id)
        except ProviderError as error:
            log.warning(
                "orphan provider payment not closed",
                extra={"provider": provider.name, "payment_id": payment_id, "code": error.code},
            )
            return
        if self.payments is not None:
            await self.payments.mark_canceled(provider.name, payment_id)

    async def expire(
        self,
        sessions: session_pb2_grpc.SessionServiceStub,
        session_id: str,
        merchant_id: str,
        mode: common_pb2.Mode = common_pb2.MODE_UNSPECIFIED,
    ) -> session_pb2.Session:
        """Merchant expiry: the provider's page or payment first (so it stops taking money), then our
        session. `mode` is the caller's key's mode: a session of the other mode is NOT_FOUND. Raises the
        session service's gRPC error, or rules.ExpireRefused when the provider's page could not be closed."""
        if not self.providers:
            return await _expire_ours(sessions, session_id, merchant_id, mode)
        lock = self._lock(session_id)
        try:
            async with lock:  # waits for a page being created for this session right now
                session = await sessions.GetSession(
                    session_pb2.GetSessionRequest(session_id=session_id, merchant_id=merchant_id, mode=mode)
                )
                provider = self.provider_for(session)
                closed = ""
                if provider is not None and rules.must_close_before_expiry(session, has_provider=True):
                    await self._close_or_refuse(provider, mode_of(session), session.provider_session_id)
                    closed = session.provider_session_id
                expired = await _expire_ours(sessions, session_id, merchant_id, mode)
        finally:
            self._release(session_id)
        was_open = session.status == session_pb2.SESSION_STATUS_CREATED
        if provider is not None and rules.raced_page(was_open, closed, expired, has_provider=True):
            await self.close_page(provider, mode_of(expired), expired.provider_session_id)
        return expired

    async def _close_or_refuse(self, provider: PaymentProvider, mode: str, payment_id: str) -> None:
        try:
            await provider.cancel_payment(mode, payment_id)
        except ProviderError as error:
            raise rules.expire_refusal(error) from None
        if self.payments is not None:
            await self.payments.mark_canceled(provider.name, payment_id)

    async def close(self) -> None:
        for provider in self.providers.values():
            await provider.close()


async def _expire_ours(
    sessions: session_pb2_grpc.SessionServiceStub,
    session_id: str,
    merchant_id: str,
    mode: common_pb2.Mode = common_pb2.MODE_UNSPECIFIED,
) -> session_pb2.Session:
    return await sessions.ExpireSession(
        session_pb2.ExpireSessionRequest(session_id=session_id, merchant_id=merchant_id, mode=mode)
    )
