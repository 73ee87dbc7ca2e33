"""gRPC adapter of the session service: wire messages in, use cases called, wire messages out.

No decisions here; DomainErrors raised by the layers below become status codes in the shared RPC wrapper
(`paygate_runtime.grpc_server.guarded_rpc`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
import grpc

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2, session_pb2_grpc
from paygate_runtime import tracing
from paygate_runtime.audit_listing import list_audit_entries
from paygate_runtime.errors import InvalidArgument, require
from paygate_runtime.grpc_errors import item_error
from paygate_runtime.money import Money
from paygate_runtime.proto_convert import mode_enum, optional_datetime
from session_service.adapters import session_messages as msg
from session_service.domain.deposit_addresses import derive_deposit_address
from session_service.entrypoints import refund_rpcs
from session_service.service_layer import (
    inbox_replays,
    payment_events,
    payment_settings,
    quarantine,
    sessions,
)
from session_service.service_layer.event_groups import GroupedEventApplier
from session_service.service_layer.session_customer import set_session_customer

if TYPE_CHECKING:
    from session_service.entrypoints.session_config import SessionConfig

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

# ApplyPaymentEvents: one call stays short, and a gateway sends at most what its relay claims at once.
MAX_APPLY_BATCH = 256


class SessionServicer(session_pb2_grpc.SessionServiceServicer):
    def __init__(
        self,
        pool: asyncpg.Pool,
        config: SessionConfig,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.pool = pool
        self.config = config
        self.clock = clock
        self.events = GroupedEventApplier(pool, max_group=config.event_group_max)
        # Set by the assembly to the refund effects worker's wake-up (issue 19).
        self.refund_wake: Callable[[], None] = lambda: None

    async def ListAuditEntries(
        self, request: common_pb2.ListAuditEntriesRequest, context: Context
    ) -> common_pb2.ListAuditEntriesResponse:
        # The merchant's hash-chained audit of this service (issue 20, GET /v1/audit).
        return await list_audit_entries(self.pool, "session", request)

    async def CreateSession(
        self, request: session_pb2.CreateSessionRequest, context: Context
    ) -> session_pb2.CreateSessionResponse:
        created = await sessions.create_session(
            self.pool,
            sessions.CreateSession(
                merchant_id=request.merchant_id,
                mode=msg.mode_name(request.mode),
                amount=request.amount,
                currency=request.currency,
                provider=request.provider,
                customer_email=request.customer_email,
                metadata=dict(request.metadata),
                expires_in_seconds=request.expires_in_seconds,
                idempotency_key=request.idempotency_key,
                request_fingerprint=request.request_fingerprint,
                description=request.description,
                scopes=tuple(request.scopes),
                scopes_given=request.set_scopes,
                customer=msg.customer_from_proto(request.customer) if request.HasField("customer") else None,
                actor=request.actor,
            ),
            max_amount_major=self.config.max_amount_major,
            now=self.clock(),
            derive_address=derive_deposit_address,
            live_chain_ids=self.config.chain.mainnet_ids,
        )
        return session_pb2.CreateSessionResponse(
            session=msg.session_message(created.session), replayed=created.replayed
        )

    async def GetSession(
        self, request: session_pb2.GetSessionRequest, context: Context
    ) -> session_pb2.Session:
        require(request.session_id, "session_id")
        return msg.session_message(
            await sessions.get_session(
                self.pool, request.session_id, request.merchant_id, msg.scope_mode(request.mode)
            )
        )

    async def ListSessions(
        self, request: session_pb2.ListSessionsRequest, context: Context
    ) -> session_pb2.ListSessionsResponse:
        status = msg.STATUS_FROM_PROTO.get(request.status) if request.status else None
        if request.status and status is None:
            raise InvalidArgument("invalid_status", "unknown status", field="status")
        mode = msg.scope_mode(request.mode)
        rows, has_more = await sessions.list_sessions(
            self.pool,
            request.merchant_id,
            status,
            mode,
            request.limit,
            request.starting_after,
            filters=sessions.SessionListFilter(
                provider=request.provider,
                customer_email=request.customer_email,
                created_from=_when(request, "created_from"),
                created_to=_when(request, "created_to"),
                amount_min_minor=request.amount_min_minor,
                amount_max_minor=request.amount_max_minor,
                currency=request.currency,
            ),
        )
        return session_pb2.ListSessionsResponse(
            sessions=[msg.session_message(row) for row in rows], has_more=has_more
        )

    async def ApplyPaymentEvent(
        self, request: session_pb2.ApplyPaymentEventRequest, context: Context
    ) -> session_pb2.ApplyPaymentEventResponse:
        return await self._apply_event(request)

    async def ApplyPaymentEvents(
        self, request: session_pb2.ApplyPaymentEventsRequest, context: Context
    ) -> session_pb2.ApplyPaymentEventsResponse:
        # The items join the event groups side by side, as concurrent single calls would, for one call's
        # cost on both ends (the gateway's relay sends what it claimed together).
        if len(request.items) > MAX_APPLY_BATCH:
            raise InvalidArgument(
                "too_many_items", f"at most {MAX_APPLY_BATCH} events per call", field="items"
            )
        outcomes = await asyncio.gather(
            *(self._apply_traced(item) for item in request.items), return_exceptions=True
        )
        results = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome
                error = item_error(outcome, "payment event item")
                results.append(session_pb2.ApplyPaymentEventsResult(error=error))
            else:
                results.append(session_pb2.ApplyPaymentEventsResult(applied=outcome))
        return session_pb2.ApplyPaymentEventsResponse(results=results)

    async def _apply_traced(
        self, request: session_pb2.ApplyPaymentEventRequest
    ) -> session_pb2.ApplyPaymentEventResponse:
        """A batched item under its own event's trace (the call's metadata carries only one trace)."""
        if not tracing.ENABLED or not request.traceparent:
            return await self._apply_event(request)
        with tracing.continued(
            request.traceparent, "paygate.session.apply_event", {"paygate.session_id": request.session_id}
        ):
            return await self._apply_event(request)

    async def _apply_event(
        self, request: session_pb2.ApplyPaymentEventRequest
    ) -> session_pb2.ApplyPaymentEventResponse:
        amount = None
        if request.amount.amount_minor:
            amount = Money.from_wire(
                request.amount.amount_minor, request.amount.currency, request.amount.exponent
            )
        occurred_at = optional_datetime(request, "occurred_at") or self.clock()
        command = payment_events.EventCommand(
            session_id=request.session_id,
            provider=request.provider,
            provider_event_id=request.provider_event_id,
            kind=msg.event_kind(request.kind),
            amount=amount,
            provider_reference=request.provider_reference,
            occurred_at=occurred_at,
            mode=msg.MODE_FROM_PROTO.get(request.mode),
            provider_event_type=request.provider_event_type,
        )
        if command.kind in refund_rpcs.REFUND_KINDS:
            # Refunds and disputes (issue 19) have their own rules; they never join a payment group.
            applied = await refund_rpcs.apply_refund_event(self.pool, request, command, wake=self.refund_wake)
        else:
            applied = await self.events.apply(command)
        reply = session_pb2.ApplyPaymentEventResponse(
            outcome=msg.OUTCOME_TO_PROTO[applied.outcome],
            session=msg.session_message(applied.session),
            quarantine_id=str(applied.quarantine_id) if applied.quarantine_id else "",
        )
        if applied.first_outcome is not None:
            reply.first_outcome = msg.OUTCOME_TO_PROTO[applied.first_outcome]
        return reply

    async def ExpireSession(
        self, request: session_pb2.ExpireSessionRequest, context: Context
    ) -> session_pb2.Session:
        return msg.session_message(
            await sessions.expire_session(
                self.pool,
                request.session_id,
                request.merchant_id,
                msg.scope_mode(request.mode),
                actor=request.actor,
            )
        )

    async def ListQuarantine(
        self, request: session_pb2.ListQuarantineRequest, context: Context
    ) -> session_pb2.ListQuarantineResponse:
        rows, has_more = await quarantine.list_quarantine(
            self.pool,
            request.merchant_id,
            request.status,
            request.limit,
            request.starting_after,
            msg.scope_mode(request.mode),
            session_id=request.session_id,
        )
        return session_pb2.ListQuarantineResponse(
            entries=[msg.quarantine_message(row) for row in rows], has_more=has_more
        )

    async def ResolveQuarantine(
        self, request: session_pb2.ResolveQuarantineRequest, context: Context
    ) -> session_pb2.QuarantineEntry:
        decision = msg.DECISION_FROM_PROTO.get(request.decision)
        if decision is None:
            raise InvalidArgument(
                "invalid_decision", "decision must be refunded, dismissed or accepted", field="decision"
            )
        row = await quarantine.resolve(
            self.pool,
            request.merchant_id,
            request.quarantine_id,
            decision,
            request.note,
            msg.scope_mode(request.mode),
            actor=request.actor,
        )
        return msg.quarantine_message(row)

    async def GetPaymentSettings(
        self, request: session_pb2.GetPaymentSettingsRequest, context: Context
    ) -> session_pb2.PaymentSettings:
        return msg.settings_message(await payment_settings.get_settings(self.pool, request.merchant_id))

    async def UpdatePaymentSettings(
        self, request: session_pb2.UpdatePaymentSettingsRequest, context: Context
    ) -> session_pb2.PaymentSettings:
        wanted = request.settings
        settings = await payment_settings.update_settings(
            self.pool,
            wanted.merchant_id,
            wanted.default_currency,
            msg.onchain_from_message(wanted),
            probes=self.config.chain.probes(),
            allow_used_xpub=request.allow_used_xpub,
        )
        return msg.settings_message(settings)

    async def ListActiveDeposits(
        self, request: session_pb2.ListActiveDepositsRequest, context: Context
    ) -> session_pb2.ListActiveDepositsResponse:
        rows = await sessions.active_deposits(
            self.pool, request.chain_id, request.include_closed_within_seconds
        )
        return session_pb2.ListActiveDepositsResponse(
            deposits=[
                session_pb2.ActiveDeposit(
                    session_id=str(row["id"]),
                    merchant_id=str(row["merchant_id"]),
                    payment=msg.web3_payment(row),
                    amount=msg.money(row["amount_minor"], row["currency"], row["exponent"]),
                    status=msg.STATUS_TO_PROTO[row["status"]],
                    created_at=msg.ts(row["created_at"]),
                    expires_at=msg.ts(row["expires_at"]),
                    mode=mode_enum(row["mode"]),
                )
                for row in rows
            ]
        )

    async def GetSessionByDepositAddress(
        self, request: session_pb2.GetSessionByDepositAddressRequest, context: Context
    ) -> session_pb2.Session:
        return msg.session_message(
            await sessions.session_by_deposit_address(self.pool, request.chain_id, request.deposit_address)
        )

    async def RaiseSessionAlert(
        self, request: session_pb2.RaiseSessionAlertRequest, context: Context
    ) -> session_pb2.Session:
        return msg.session_message(
            await sessions.raise_alert(
                self.pool,
                request.session_id,
                request.code,
                request.detail,
                request.reference,
                _alert_amount(request),
            )
        )

    async def RefundSession(
        self, request: session_pb2.RefundSessionRequest, context: Context
    ) -> session_pb2.RefundSessionResponse:
        return await refund_rpcs.refund_session(
            self.pool, request, max_amount_major=self.config.max_amount_major, wake=self.refund_wake
        )

    async def AttachProviderRefund(
        self, request: session_pb2.AttachProviderRefundRequest, context: Context
    ) -> session_pb2.RefundSessionResponse:
        return await refund_rpcs.attach_provider_refund(self.pool, request, wake=self.refund_wake)

    async def SetProviderCheckout(
        self, request: session_pb2.SetProviderCheckoutRequest, context: Context
    ) -> session_pb2.Session:
        return msg.session_message(
            await sessions.set_provider_checkout(
                self.pool,
                request.session_id,
                request.merchant_id,
                request.provider_session_id,
                request.provider_checkout_url,
                msg.scope_mode(request.mode),
            )
        )

    async def RecordInboxReplay(
        self, request: session_pb2.RecordInboxReplayRequest, context: Context
    ) -> session_pb2.RecordInboxReplayResponse:
        mode = msg.scope_mode(request.mode)
        if mode is None:
            raise InvalidArgument("missing_mode", "mode is required", field="mode")
        await inbox_replays.record_inbox_replay(
            self.pool,
            inbox_replays.InboxReplay(
                merchant_id=request.merchant_id,
                mode=mode,
                actor=request.actor,
                inbox_event_id=request.inbox_event_id,
                provider=request.provider,
                provider_event_id=request.provider_event_id,
                provider_event_type=request.provider_event_type,
                session_id=request.session_id,
                inbox_status=request.inbox_status,
            ),
        )
        return session_pb2.RecordInboxReplayResponse()

    async def SetSessionCustomer(
        self, request: session_pb2.SetSessionCustomerRequest, context: Context
    ) -> session_pb2.Session:
        return msg.session_message(
            await set_session_customer(
                self.pool,
                request.session_id,
                request.merchant_id,
                msg.scope_mode(request.mode),
                msg.customer_from_proto(request.customer),
            )
        )


def _alert_amount(request: session_pb2.RaiseSessionAlertRequest) -> tuple[int, str, int] | None:
    """The optional money of an alert (issue 13: a reorg after paid), as (minor units, currency, exponent)."""
    if not request.HasField("amount") or not request.amount.currency:
        return None
    try:
        minor = int(request.amount.amount_minor)
    except ValueError:
        raise InvalidArgument("invalid_amount", "amount_minor must be an integer", field="amount") from None
    return minor, request.amount.currency, request.amount.exponent


def _when(request: session_pb2.ListSessionsRequest, name: str) -> datetime | None:
    """An optional timestamp filter of a list request (unset: no bound)."""
    return optional_datetime(request, name)
