"""Keeping our sessions and the providers' payments in step: the checkout coordinator.

A `stripe` session gets a Stripe Checkout Session and a `onecom` session a One.com payment (when that
provider's API is configured for the session's mode), both through the provider interface
(adapters.payment_providers). Each payment created is also recorded in the gateway's own
`provider_payments`, which the reconciliation worker reads (service_layer.reconciliation).

Failure policy (a payments choice). Once our session is committed it is the merchant's object, so a provider
failure never turns the create into an error that invites a blind retry (which, without an Idempotency-Key,
would make a second session). The create answers 201 without `provider_checkout_url` and with
`provider_checkout_error: {code, message}`; the checkout page says the card rail is unavailable. The reason is
kept in the gateway's own `provider_checkout_errors` (a later failure replaces it, a recorded page deletes it),
so the merchant's later `GET /v1/sessions/{id}` and the list show it while the session has no page. The payment
is then created lazily, under the same provider idempotency key, when the customer opens `/checkout` (the `url`
every session has) or when the merchant calls `POST /v1/sessions/{id}/provider_checkout`. A provider URL is
shown only once the session service has recorded it, so that an expiry can always close the payment it
belongs to.

A card session (created without a provider, contract §6a) gets no payment until its customer chooses a card
rail on the checkout page (`pay_with`): then that rail's payment is created, once per session and rail (the
providers' idempotency keys are per session), recorded in `provider_payments` before its page is shown, and
found there again on the next click, reload or tab. Its URL is not recorded on the session: the session
service keeps one provider page per session, and either rail may still pay until the first payment event binds
the session. The merchant's expiry closes every recorded payment of a card session first.

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
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

import grpc

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2, session_pb2_grpc
from paygate_runtime.proto_convert import to_datetime
from webhook_gateway.adapters.payment_providers import PaymentProvider, mode_of
from webhook_gateway.adapters.provider_errors import ProviderError
from webhook_gateway.adapters.provider_payments_repository import (
    OPEN,
    CheckoutError,
    ProviderPaymentsRepository,
)
from webhook_gateway.service_layer import checkout_rules as rules

log = logging.getLogger(__name__)

_MAX_REMEMBERED_FAILURES = 10_000


@dataclass(frozen=True, slots=True)
class RailCheckout:
    """A customer's choice of a card rail: the session as it stands after the payment was made or found, and the
    provider's page to send the customer to, or why there is none."""

    session: session_pb2.Session
    url: str | None
    problem: ProviderError | None = None


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

    def configured_card_rails(self, mode: str) -> list[str]:
        """The card rails this gateway has an API key of `mode` for (a new card session is checked against
        them: checkout_rules.card_session_refusal)."""
        return [
            name
            for name in rules.CARD_RAILS
            if (provider := self.providers.get(name)) is not None and provider.available(mode)
        ]

    def card_rails(self, session: session_pb2.Session) -> list[str]:
        """The card rails this gateway can take `session`'s payment with: those with an API key of its mode that
        can charge its amount."""
        return [
            name
            for name in self.configured_card_rails(mode_of(session))
            if rules.rail_can_charge(name, session)
        ]

    def page_origins(self, rails: Collection[str]) -> list[str]:
        """Where the hosted pages of `rails` live (the checkout page's CSP lets its form redirect there)."""
        origins: list[str] = []
        for name in rails:
            provider = self.providers.get(name)
            if provider is not None:
                origins.extend(o for o in provider.page_origins() if o not in origins)
        return origins

    async def pay_with(
        self, sessions: session_pb2_grpc.SessionServiceStub, session: session_pb2.Session, rail: str
    ) -> RailCheckout:
        """The provider page on which the customer pays `session` with `rail`, which the caller has checked
        (checkout_rules.rail_refusal, card_rails). A session created with that provider, or bound to it, has
        its page recorded on the session (`ensure`). A card session's payment is created once per rail and
        found again afterwards; a failed session-service call is raised as the gRPC error."""
        if session.provider != rules.CARD:
            session, problem = await self.ensure(sessions, session)
            return RailCheckout(session, session.provider_checkout_url or None, problem)
        provider = self.providers[rail]
        mode = mode_of(session)
        created_now: str | None = None
        lock = self._lock(session.id)
        try:
            async with lock:
                try:
                    known = await self._known_payment(session.id, rail)
                    if known is None:
                        created = await provider.create_payment(session)
                        await self._watch(rail, created.payment_id, session)
                        created_now, url = created.payment_id, created.checkout_url
                    else:
                        current = await provider.read_payment(mode, known)
                        if current.final or not current.checkout_url:
                            return RailCheckout(session, None, rules.rail_payment_closed(rail))
                        url = current.checkout_url
                except ProviderError as error:
                    log.warning(
                        "card rail payment not created",
                        extra={
                            "session_id": session.id,
                            "provider": rail,
                            "code": error.code,
                            "detail": error.message,
                        },
                    )
                    return RailCheckout(session, None, error)
        finally:
            self._release(session.id)
        after = await sessions.GetSession(session_pb2.GetSessionRequest(session_id=session.id))
        if created_now is not None and (
            rules.closed_while_creating(after.status) or after.provider not in (rules.CARD, rail)
        ):
            # Closed, or bound to the other rail, while the payment was made: that page must not take money.
            await self.close_page(provider, mode, created_now)
        if not url:
            return RailCheckout(after, None, rules.not_recorded_yet("page"))
        return RailCheckout(after, url)

    async def _known_payment(self, session_id: str, rail: str) -> str | None:
        """The id of `rail`'s payment already made for the session, if any."""
        if self.payments is None:
            return None  # the provider's idempotency key (per session) still returns the same payment
        try:
            recorded = await self.payments.for_session(session_id)
        except Exception:
            log.warning("provider payments not read", extra={"session_id": session_id}, exc_info=True)
            raise rules.not_recorded_yet("payment") from None
        ids = [p.payment_id for p in recorded if p.provider == rail]
        return ids[-1] if ids else None

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
                    await self._keep_outcome(session, provider.name, error)
                    return session, error
                self._failures.pop(session.id, None)
                recorded, problem = await self._record(
                    sessions, session, provider, created.payment_id, created.checkout_url or ""
                )
                await self._keep_outcome(session, provider.name, problem)
                return recorded, problem
        finally:
            self._release(session.id)

    async def _keep_outcome(
        self, session: session_pb2.Session, provider: str, problem: ProviderError | None
    ) -> None:
        """Keep why the session has no provider page (`provider_checkout_error` on the merchant's later reads),
        or forget it once the page is recorded. Best effort: the session is the merchant's already, and a
        recorded page hides a reason left behind (checkout_errors)."""
        if self.payments is None:
            return
        try:
            if problem is None:
                await self.payments.clear_checkout_error(session.id)
            else:
                await self.payments.record_checkout_error(
                    session_id=session.id,
                    merchant_id=session.merchant_id,
                    provider=provider,
                    code=problem.code,
                    message=problem.message,
                )
        except Exception:
            log.warning(
                "provider checkout error not kept",
                extra={"session_id": session.id, "provider": provider},
                exc_info=True,
            )

    async def forget_old_errors(self, age_s: float) -> int:
        """Remove kept reasons older than `age_s` (the longest a session can live): one row was kept per
        session whose page could not be made, and nothing else removes it once the session is over."""
        if self.payments is None:
            return 0
        return await self.payments.remove_checkout_errors_older_than(age_s)

    async def checkout_errors(self, sessions: Iterable[session_pb2.Session]) -> dict[str, CheckoutError]:
        """Why each of `sessions` that still lacks its provider page has none, as the last failed attempt said
        (the merchant reads it as `provider_checkout_error`). A session whose page is recorded, or whose
        provider this gateway no longer talks to, shows none.
        Best effort: unread, the reads show no reason rather than fail."""
        waiting = [
            s.id
            for s in sessions
            if not s.provider_session_id and not s.provider_checkout_url and self.provider_for(s) is not None
        ]
        if self.payments is None or not waiting:
            return {}
        try:
            return await self.payments.checkout_errors(waiting)
        except Exception:
            log.warning("provider checkout errors not read", extra={"sessions": len(waiting)}, exc_info=True)
            return {}

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
        actor: str = "",
    ) -> session_pb2.Session:
        """Merchant expiry: the provider's page or payment first (so it stops taking money), then our
        session. `mode` is the caller's key's mode: a session of the other mode is NOT_FOUND; `actor` is the
        key that asked, for the audit trail. Raises the session service's gRPC error, or rules.ExpireRefused
        when the provider's page could not be closed."""
        if not self.providers:
            return await _expire_ours(sessions, session_id, merchant_id, mode, actor)
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
                card = session.provider == rules.CARD and session.status == session_pb2.SESSION_STATUS_CREATED
                closed_card = await self._close_card_payments(session.id) if card else set()
                expired = await _expire_ours(sessions, session_id, merchant_id, mode, actor)
        finally:
            self._release(session_id)
        was_open = session.status == session_pb2.SESSION_STATUS_CREATED
        if provider is not None and rules.raced_page(was_open, closed, expired, has_provider=True):
            await self.close_page(provider, mode_of(expired), expired.provider_session_id)
        if card:
            # A payment another replica made between our read and the expiry (pay_with closes it itself when
            # it reads the session after us).
            await self._close_card_payments(expired.id, skip=closed_card, refuse=False)
        return expired

    async def _close_card_payments(
        self, session_id: str, *, skip: Collection[tuple[str, str]] = (), refuse: bool = True
    ) -> set[tuple[str, str]]:
        """Close the open payments recorded for a card session (one per rail the customer chose). `refuse`:
        a payment that cannot be closed refuses the expiry (checkout_rules.ExpireRefused); else best effort."""
        if self.payments is None:
            return set()
        try:
            recorded = await self.payments.for_session(session_id)
        except Exception:
            log.warning("provider payments not read", extra={"session_id": session_id}, exc_info=True)
            if refuse:
                raise rules.ExpireRefused(
                    "provider_unavailable",
                    "the session's provider payments could not be read; the session was not expired",
                    retryable=True,
                ) from None
            return set()
        closed: set[tuple[str, str]] = set()
        for payment in recorded:
            key = (payment.provider, payment.payment_id)
            provider = self.providers.get(payment.provider)
            if key in skip or payment.state != OPEN or payment.canceled_at is not None:
                continue
            if provider is None or not provider.available(payment.mode):
                continue  # no API to close it with any more; reconciliation keeps asking
            if refuse:
                await self._close_or_refuse(provider, payment.mode, payment.payment_id)
            else:
                await self.close_page(provider, payment.mode, payment.payment_id)
            closed.add(key)
        return closed

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
    actor: str = "",
) -> session_pb2.Session:
    return await sessions.ExpireSession(
        session_pb2.ExpireSessionRequest(
            session_id=session_id, merchant_id=merchant_id, mode=mode, actor=actor
        )
    )
