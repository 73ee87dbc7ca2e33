"""gRPC adapter of refunds and disputes (issue 19): RefundSession, AttachProviderRefund, and the refund and
dispute kinds of ApplyPaymentEvent. Wire messages in, use cases called, wire messages out."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from paygate.session.v1 import session_pb2
from paygate_runtime.proto_convert import optional_datetime, optional_money
from session_service.adapters import session_messages as msg
from session_service.service_layer import refunds
from session_service.service_layer.payment_events import Applied, EventCommand

REFUND_KINDS = refunds.REFUND_KINDS


async def apply_refund_event(
    pool: asyncpg.Pool,
    request: session_pb2.ApplyPaymentEventRequest,
    command: EventCommand,
    *,
    wake: Callable[[], None],
) -> Applied:
    dispute = None
    if request.HasField("dispute"):
        dispute = refunds.DisputeReport(
            dispute_id=request.dispute.dispute_id,
            action=request.dispute.action,
            status=request.dispute.status,
            amount=optional_money(request.dispute.amount) if request.dispute.HasField("amount") else None,
        )
    detail = refunds.RefundEventDetail(
        refunds=tuple(
            refunds.ProviderRefundReport(
                refund_id=r.refund_id,
                amount=optional_money(r.amount),
                status=r.status,
                paygate_refund_id=r.paygate_refund_id,
                failure_reason=r.failure_reason,
            )
            for r in request.refunds
        ),
        refunded_total=optional_money(request.refunded_total) if request.HasField("refunded_total") else None,
        dispute=dispute,
        charge_id=request.provider_charge_id,
        reported_at=optional_datetime(request, "occurred_at"),
    )
    return await refunds.apply_refund_event(pool, command, detail, wake=wake)


def _reply(result: refunds.RefundResult) -> session_pb2.RefundSessionResponse:
    return session_pb2.RefundSessionResponse(
        refund=msg.refund_message(result.refund),
        session=msg.session_message(result.session),
        replayed=result.replayed,
    )


async def refund_session(
    pool: asyncpg.Pool,
    request: session_pb2.RefundSessionRequest,
    *,
    max_amount_major: int,
    wake: Callable[[], None],
) -> session_pb2.RefundSessionResponse:
    mode = msg.scope_mode(request.mode)
    result = await refunds.refund_session(
        pool,
        refunds.RefundRequest(
            merchant_id=request.merchant_id,
            mode=mode or "",
            session_id=request.session_id,
            amount=request.amount,
            reason=request.reason,
            idempotency_key=request.idempotency_key,
            request_fingerprint=request.request_fingerprint,
            via_provider=request.via_provider,
            provider_refund_id=request.provider_refund_id,
            chain_tx_hash=request.chain_tx_hash,
            actor=request.actor,
        ),
        max_amount_major=max_amount_major,
        wake=wake,
    )
    return _reply(result)


async def attach_provider_refund(
    pool: asyncpg.Pool, request: session_pb2.AttachProviderRefundRequest, *, wake: Callable[[], None]
) -> session_pb2.RefundSessionResponse:
    result = await refunds.attach(
        pool,
        request.merchant_id,
        msg.scope_mode(request.mode),
        request.refund_id,
        request.provider_refund_id,
        request.status,
        failure_reason=request.failure_reason,
        wake=wake,
    )
    return _reply(result)
