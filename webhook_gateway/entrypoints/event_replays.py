"""Replaying an inbox event the merchant owns: shared by the JSON route and the dashboard's Replay button, so
both act exactly alike."""

from __future__ import annotations

import grpc
from aiohttp import web

from paygate.session.v1 import session_pb2
from webhook_gateway.adapters.inbox_repository import InboxEvent, InboxRepository
from webhook_gateway.entrypoints.app_keys import CLIENTS, INBOX, PROCESSOR
from webhook_gateway.entrypoints.http_errors import ApiError, raise_for_rpc_error
from webhook_gateway.entrypoints.merchant_auth import AuthenticatedMerchant
from webhook_gateway.service_layer.payment_events import mode_name


def belongs_to(event: InboxEvent, merchant: AuthenticatedMerchant) -> bool:
    """An event is the caller's when it is of the caller's merchant AND of the key's mode (the event's own
    mode when a provider or its secret told it, else its session's)."""
    return event.merchant_id == merchant.merchant_id and event.mode == merchant.mode_name


async def _owned_event(
    request: web.Request, merchant: AuthenticatedMerchant, repo: InboxRepository
) -> InboxEvent:
    """The event if it is the merchant's in the key's mode; an event whose merchant is not known yet is
    theirs when it names one of their sessions of that mode. Another merchant's event, one of the other
    mode and a missing one look the same: 404."""
    not_found = ApiError(404, "not_found", "no such event")
    event = await repo.get(request.match_info["id"])
    if event is None:
        raise not_found
    if belongs_to(event, merchant):
        return event
    if event.merchant_id is not None or event.session_id is None:
        raise not_found
    if event.mode is not None and event.mode != merchant.mode_name:
        raise not_found
    try:
        session = await request.app[CLIENTS].session.GetSession(
            session_pb2.GetSessionRequest(session_id=event.session_id, **merchant.scope)
        )
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            raise not_found from None
        raise ApiError(503, "unavailable", "a backend service is unavailable; retry later") from None
    await repo.set_merchant(event.id, merchant.merchant_id, mode_name(session.mode))
    return event


async def replay_owned_event(
    request: web.Request, merchant: AuthenticatedMerchant, actor: str | None = None
) -> InboxEvent:
    """Replay the event `{id}` of the route if it is the merchant's and not final; the event after it. Shared
    by the JSON route and the dashboard's Replay button, so both act exactly alike. The replay is audited
    (session service, `inbox_event_replayed`, as `actor`: the dashboard passes its own) once this request holds
    the event and before it runs: a replay the audit cannot record is refused (503), and the lease lapses
    into the relay's usual retry."""
    repo = request.app[INBOX]
    event = await _owned_event(request, merchant, repo)
    if event.is_final:
        raise ApiError(
            409, "event_already_final", f"event {event.id} already has a final outcome ({event.status})"
        )
    processor = request.app[PROCESSOR]
    claimed = await repo.claim_one(event.id, processor.settings.lease_s)
    if claimed is None:
        current = await repo.get(event.id)
        if current is not None and current.is_final:
            raise ApiError(409, "event_already_final", f"event {event.id} already has a final outcome")
        raise ApiError(409, "event_in_progress", "this event is being applied right now; retry shortly")
    try:
        await request.app[CLIENTS].session.RecordInboxReplay(
            session_pb2.RecordInboxReplayRequest(
                **merchant.scope,
                actor=actor or merchant.api_actor,
                inbox_event_id=claimed.id,
                provider=claimed.provider,
                provider_event_id=claimed.event_id,
                provider_event_type=claimed.event_type,
                session_id=claimed.session_id or "",
                inbox_status=event.status,
            )
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    # Idempotent downstream: the session service applies one (provider, event id) at most once.
    await processor.process(claimed)
    after = await repo.get(event.id)
    assert after is not None
    return after
