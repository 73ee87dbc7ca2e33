"""The merchant's view of the webhook inbox: list events with their status, replay an unfinished one."""

from __future__ import annotations

from typing import Any

import grpc
from aiohttp import web

from paygate.session.v1 import session_pb2
from webhook_gateway.adapters.inbox_repository import STATUSES, InboxEvent, InboxRepository
from webhook_gateway.entrypoints.app_keys import CLIENTS, POOL
from webhook_gateway.entrypoints.http_errors import ApiError
from webhook_gateway.entrypoints.merchant_auth import AuthenticatedMerchant, authenticate
from webhook_gateway.entrypoints.request_body import page_limit
from webhook_gateway.entrypoints.routes_webhooks import PROCESSOR
from webhook_gateway.service_layer.payment_events import mode_name


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def event_json(event: InboxEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "object": "event",
        "provider": event.provider,
        "mode": event.mode,
        "event_id": event.event_id,
        "type": event.event_type,
        "status": event.status,
        "outcome": event.outcome,
        "session_id": event.session_id,
        "provider_reference": event.provider_reference,
        "quarantine_id": event.quarantine_id,
        "attempts": event.attempts,
        "last_error": event.last_error,
        "received_at": _iso(event.received_at),
        "next_attempt_at": _iso(event.next_attempt_at),
        "updated_at": _iso(event.updated_at),
        "final": event.is_final,
        "source": event.source,
    }


async def list_events(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    query = request.query
    status = query.get("status")
    if status is not None and status not in STATUSES:
        raise ApiError(400, "invalid_status", f"status must be one of {', '.join(sorted(STATUSES))}")
    limit = page_limit(query)
    repo = InboxRepository(request.app[POOL])
    starting_after = query.get("starting_after")
    if starting_after:
        cursor = await repo.get(starting_after)
        if cursor is None or not _belongs_to(cursor, merchant):
            raise ApiError(400, "invalid_cursor", "starting_after must be the id of one of your events")
    events, has_more = await repo.list_for_merchant(
        merchant.merchant_id,
        limit=limit,
        starting_after=starting_after,
        status=status,
        mode=mode_name(merchant.mode),
    )
    return web.json_response(
        {"object": "list", "data": [event_json(e) for e in events], "has_more": has_more},
        headers={"Cache-Control": "no-store"},
    )


def _belongs_to(event: InboxEvent, merchant: AuthenticatedMerchant) -> bool:
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
    if _belongs_to(event, merchant):
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


async def replay_event(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    return web.json_response(event_json(await replay_owned_event(request, merchant)))


async def replay_owned_event(request: web.Request, merchant: AuthenticatedMerchant) -> InboxEvent:
    """Replay the event `{id}` of the route if it is the merchant's and not final; the event after it. Shared
    by the JSON route and the dashboard's Replay button, so both act exactly alike."""
    repo = InboxRepository(request.app[POOL])
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
    # Idempotent downstream: the session service applies one (provider, event id) at most once.
    await processor.process(claimed)
    after = await repo.get(event.id)
    assert after is not None
    return after


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/events", list_events)
    app.router.add_post("/v1/events/{id}/replay", replay_event)
