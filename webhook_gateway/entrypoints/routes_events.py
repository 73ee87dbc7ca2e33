"""The merchant's view of the webhook inbox: list events with their status, replay an unfinished one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from paygate_runtime.api_objects import utc_millis
from webhook_gateway.adapters.inbox_repository import STATUSES, InboxEvent
from webhook_gateway.entrypoints.app_keys import INBOX
from webhook_gateway.entrypoints.event_replays import belongs_to, replay_owned_event
from webhook_gateway.entrypoints.http_errors import ApiError
from webhook_gateway.entrypoints.merchant_auth import authenticate
from webhook_gateway.entrypoints.request_body import cursor_refused, page_cursor, page_limit
from webhook_gateway.service_layer.payment_events import mode_name


def _iso(value: datetime | None) -> str | None:
    return None if value is None else utc_millis(value)


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
    repo = request.app[INBOX]
    starting_after = page_cursor(query)
    if starting_after:
        # Another merchant's event, one of the other mode and a missing one are the same refusal.
        cursor = await repo.get(starting_after)
        if cursor is None or not belongs_to(cursor, merchant):
            raise cursor_refused()
    events, has_more = await repo.list_for_merchant(
        merchant.merchant_id,
        limit=limit,
        starting_after=starting_after or None,
        status=status,
        mode=mode_name(merchant.mode),
    )
    return web.json_response(
        {"object": "list", "data": [event_json(e) for e in events], "has_more": has_more},
        headers={"Cache-Control": "no-store"},
    )


async def replay_event(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    return web.json_response(event_json(await replay_owned_event(request, merchant)))


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/events", list_events)
    app.router.add_post("/v1/events/{id}/replay", replay_event)
