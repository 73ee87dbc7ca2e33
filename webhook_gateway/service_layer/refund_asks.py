"""Asking a provider to refund one paygate refund: for the merchant's request, and again until the provider
answers when it could not be reached.

The session service records the refund `pending`, its amount reserved; the gateway asks the provider with one
idempotency key per refund and records the provider's refund id (or its refusal) with AttachProviderRefund;
the provider's webhook then settles it. When the provider cannot be reached (a timeout, a 5xx, the circuit
open) the request may or may not have reached it, so the refund is neither cancelled nor sent again under a
new key: it is kept (`provider_refund_asks`, migration 0960) and asked for again, with backoff, under the same
key. A first ask that did reach the provider and an ask again are then one refund at the provider, and a
webhook that came meanwhile is merged with it by the provider's refund id. Before, such a refund stayed
pending for good unless the merchant resent it with the same Idempotency-Key, and a merchant who sent it again
without a key refunded the customer twice.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import grpc

from paygate.session.v1 import session_pb2, session_pb2_grpc
from paygate_runtime.lease_worker import Backoff, LeaseSettings, LeaseWorker
from paygate_runtime.proto_convert import mode_enum
from paygate_runtime.refund_failures import failure_reason_of
from webhook_gateway.adapters.payment_providers import PaymentProvider
from webhook_gateway.adapters.provider_errors import ProviderError
from webhook_gateway.adapters.refund_asks_repository import RefundAsk, RefundAsksRepository

log = logging.getLogger(__name__)

# The session service's answers that mean the refund is no longer one to ask for (settled, merged, gone).
_SETTLED_ELSEWHERE = frozenset(
    {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT}
)


def idempotency_key_for_refund(refund_id: str) -> str:
    """The provider's idempotency key of one paygate refund: every ask is the same request."""
    return f"paygate-refund-{refund_id}"


@dataclass(frozen=True, slots=True)
class Asked:
    refund: session_pb2.Refund
    session: session_pb2.Session
    # The provider's refusal ({"code", "message"}) when it refused: the refund is then failed.
    provider_error: dict[str, str] | None = None


async def ask_provider(
    provider: PaymentProvider, sessions: session_pb2_grpc.SessionServiceStub, ask: RefundAsk
) -> Asked:
    """Ask the provider to refund, then record its refund id (or its refusal) on paygate's refund. Raises the
    provider's transient ProviderError when it could not be reached (nothing recorded), and the session
    service's errors as they come."""
    try:
        provider_refund_id = await provider.refund(
            ask.mode,
            ask.paid_reference,
            ask.amount_minor,
            ask.currency,
            ask.exponent,
            idempotency_key_for_refund(ask.refund_id),
            # Echoed in Stripe's refund webhooks: one that overtakes this call's answer settles this very
            # refund (matched by paygate_refund_id) instead of being merged into it afterwards.
            metadata={"paygate_refund_id": ask.refund_id, "session_id": ask.session_id},
        )
        status, refusal, reason = "pending", None, ""
    except ProviderError as error:
        if error.transient:
            raise
        # The provider refused: the refund failed and releases its amount. The provider's own error code
        # (Stripe's decline_code or code, One.com's error.code) is why; codes are matched case-blind, and one
        # that is no short token is `unknown`. Empty when the provider sent no code.
        provider_refund_id, status = f"refused:{ask.refund_id}", "failed"
        refusal = {"code": error.code, "message": error.message}
        code = error.provider_code
        reason = failure_reason_of(code.lower()) if code else ""
    reply = await sessions.AttachProviderRefund(
        session_pb2.AttachProviderRefundRequest(
            merchant_id=ask.merchant_id,
            mode=mode_enum(ask.mode),
            refund_id=ask.refund_id,
            provider_refund_id=provider_refund_id,
            status=status,
            failure_reason=reason,
        )
    )
    return Asked(reply.refund, reply.session, refusal)


@dataclass(frozen=True, slots=True)
class RefundAskSettings:
    interval_s: float = 5.0
    concurrency: int = 4
    lease_s: float = 60.0
    max_delay_s: float = 600.0


class RefundAsker:
    """Keeps the refunds a provider could not be asked for, and asks again until it answers: a queue of the
    shared lease worker (claims, slots, failures and a clean stop are the worker's)."""

    def __init__(
        self,
        asks: RefundAsksRepository,
        providers: Mapping[str, PaymentProvider],
        sessions: session_pb2_grpc.SessionServiceStub,
        settings: RefundAskSettings,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.asks = asks
        self.providers = providers
        self.sessions = sessions
        self.settings = settings
        self.backoff = Backoff(base_s=settings.interval_s, cap_s=settings.max_delay_s)
        self.rng = rng
        self.worker: LeaseWorker[RefundAsk] = LeaseWorker(
            self,
            LeaseSettings(
                name="refund-asks", channel=None, concurrency=settings.concurrency, poll_s=settings.interval_s
            ),
            listen_dsn=None,
        )

    async def keep(self, ask: RefundAsk) -> None:
        """The provider could not be reached for `ask`: ask again from the next pass on."""
        await self.asks.remember(ask, first_in_s=self.settings.interval_s)

    async def run(self) -> None:
        await self.worker.run()

    # ---- the lease worker's queue ----------------------------------------------------------------------

    async def claim(self, limit: int) -> list[RefundAsk]:
        return await self.asks.claim_due(limit, self.settings.lease_s)

    def row_id(self, row: RefundAsk) -> int:
        return row.id

    async def process(self, row: RefundAsk) -> None:
        provider = self.providers.get(row.provider)
        if provider is None or not provider.available(row.mode):
            await self.asks.later(row.id, delay_s=self.settings.max_delay_s, error="provider_not_configured")
            return
        try:
            await ask_provider(provider, self.sessions, row)
        except ProviderError as error:
            await self._later(row, f"{error.code}: {error.message}")
            return
        except grpc.aio.AioRpcError as error:
            if error.code() not in _SETTLED_ELSEWHERE:
                raise
            log.info(
                "refund no longer to ask for", extra={"refund_id": row.refund_id, "code": error.code().name}
            )
        else:
            log.info("provider asked again for a refund", extra={"refund_id": row.refund_id})
        await self.asks.done(row.id)

    async def failed(self, row: RefundAsk, error: Exception) -> None:
        await self._later(row, f"{type(error).__name__}: {error}")

    async def release(self, row_ids: Sequence[int]) -> None:
        await self.asks.release(list(row_ids))

    async def next_due_in(self) -> float | None:
        return await self.asks.next_due_in()

    async def _later(self, row: RefundAsk, error: str) -> None:
        await self.asks.later(row.id, delay_s=self.backoff.delay(row.attempts, self.rng), error=error)
