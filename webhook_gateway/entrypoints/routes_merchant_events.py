"""Merchant events (contract §7): webhook endpoints, the events sent to them, the delivery log and redelivery.

The session service owns all of it (`MerchantEventsService`); these handlers check the request's shape, scope
every call to the key's merchant AND mode (`merchant.scope`: another merchant's or mode's object is 404), and
render the replies. `/v1/events` stays the provider inbox; merchant events live under `/v1/merchant_events`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from paygate.session.v1 import merchant_events_pb2 as pb
from paygate.session.v1 import merchant_events_pb2_grpc
from paygate_runtime.api_objects import iso
from webhook_gateway.entrypoints.app_keys import CLIENTS, EXTRAS
from webhook_gateway.entrypoints.http_errors import ApiError
from webhook_gateway.entrypoints.merchant_auth import authenticate
from webhook_gateway.entrypoints.request_body import page_limit, read_json_object

_STUB = "merchant_events_stub"
_MAX_ID = 100
_EVENT_ID = re.compile(r"evt_[0-9a-f]{32}")
_MAX_URL = 2048
_MAX_DESCRIPTION = 500


def merchant_events_stub(request: web.Request) -> merchant_events_pb2_grpc.MerchantEventsServiceStub:
    """The session service's MerchantEventsService stub; the dashboard acts through this same stub."""
    return _stub(request)


def _stub(request: web.Request) -> merchant_events_pb2_grpc.MerchantEventsServiceStub:
    extras = request.app[EXTRAS]
    stub = extras.get(_STUB)
    if stub is None:
        # The session service's channel: merchant events are one more service on the same process.
        stub = merchant_events_pb2_grpc.MerchantEventsServiceStub(request.app[CLIENTS].channels["session"])
        extras[_STUB] = stub
    return stub


def _id_param(raw: str | None) -> str:
    """An id from the path or query: anything odd is simply not found (the service answers 404 for it)."""
    if raw is None:
        return ""
    if len(raw) > _MAX_ID or not raw.isascii() or not raw.isprintable():
        raise ApiError(404, "not_found", "no such object")
    return raw


def _cursor(request: web.Request) -> str:
    raw = request.query.get("starting_after", "")
    if len(raw) > _MAX_ID or not raw.isascii() or not raw.isprintable():
        raise ApiError(400, "invalid_starting_after", "starting_after must be an id from the previous page")
    return raw


def endpoint_json(endpoint: pb.WebhookEndpoint) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": endpoint.id,
        "object": "webhook_endpoint",
        "url": endpoint.url,
        "events": list(endpoint.events),
        "description": endpoint.description,
        "status": endpoint.status,
        "mode": "live" if endpoint.mode == 2 else "test",
        "created_at": iso(endpoint.created_at),
        "updated_at": iso(endpoint.updated_at),
        "disabled_reason": endpoint.disabled_reason or None,
        "failing_since": iso(endpoint.failing_since, endpoint.HasField("failing_since")),
        "previous_secret_expires_at": iso(
            endpoint.previous_secret_expires_at, endpoint.HasField("previous_secret_expires_at")
        ),
    }
    if endpoint.secret:
        body["secret"] = endpoint.secret
    return body


def attempt_json(attempt: pb.WebhookDeliveryAttempt) -> dict[str, Any]:
    return {
        "id": attempt.id,
        "object": "webhook_delivery",
        "endpoint_id": attempt.endpoint_id,
        "event_id": attempt.event_id,
        "event_type": attempt.event_type,
        "attempt": attempt.attempt,
        "status_code": attempt.status_code or None,
        "error": attempt.error or None,
        "at": iso(attempt.at),
        "next_attempt_at": iso(attempt.next_attempt_at, attempt.HasField("next_attempt_at")),
        "delivered": attempt.delivered,
        "latency_ms": attempt.latency_ms,
        "response_body": attempt.response_body or None,
    }


def event_json(event: pb.MerchantEvent) -> dict[str, Any]:
    """The event exactly as it is delivered (the same JSON body), so a listing and a delivery agree."""
    return json.loads(event.body_json)


def _url(body: dict[str, Any]) -> str:
    url = body.get("url")
    if not isinstance(url, str) or not url or len(url) > _MAX_URL:
        raise ApiError(400, "invalid_url", "url must be an absolute URL string")
    return url


def _events(value: Any) -> list[str]:
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= 32
        or not all(isinstance(e, str) and 0 < len(e) <= 64 for e in value)
    ):
        raise ApiError(400, "invalid_events", 'events must be a list of 1 to 32 event types, or ["*"]')
    return value


def _description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > _MAX_DESCRIPTION:
        raise ApiError(
            400,
            "invalid_description",
            f"description must be a string of at most {_MAX_DESCRIPTION} characters",
        )
    return value


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(400, "unknown_field", f"unknown field {unknown[0][:40]!r}")


# Shared with the dashboard (routes_dashboard): each builds one RPC request after the JSON API's checks
# (ApiError with the field's code), so the two front ends cannot drift apart.


def create_endpoint_request(
    merchant: Any, url: Any, events: Any, description: Any
) -> pb.CreateWebhookEndpointRequest:
    return pb.CreateWebhookEndpointRequest(
        **merchant.scope,
        url=_url({"url": url}),
        events=_events(events),
        description=_description(description),
    )


def roll_secret_request(merchant: Any, endpoint_id: str, expires_in: Any) -> pb.RollWebhookSecretRequest:
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or not 0 <= expires_in <= 7 * 86_400:
        raise ApiError(
            400,
            "invalid_expires_in",
            "expires_in: seconds the old secret keeps signing, 1..604800 (default 86400)",
        )
    return pb.RollWebhookSecretRequest(
        **merchant.scope, endpoint_id=_id_param(endpoint_id), overlap_seconds=expires_in
    )


def endpoint_ref(merchant: Any, endpoint_id: str) -> pb.WebhookEndpointRef:
    return pb.WebhookEndpointRef(**merchant.scope, endpoint_id=_id_param(endpoint_id))


def redeliver_request(merchant: Any, event_id: str, endpoint: Any) -> pb.RedeliverMerchantEventRequest:
    if not _EVENT_ID.fullmatch(event_id):
        raise ApiError(404, "not_found", "no such event")
    if not isinstance(endpoint, str) or not endpoint:
        raise ApiError(400, "invalid_endpoint", "endpoint must be a webhook endpoint id")
    return pb.RedeliverMerchantEventRequest(
        **merchant.scope, event_id=event_id, endpoint_id=_id_param(endpoint)
    )


async def create_endpoint(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    body = await read_json_object(request)
    _only(body, {"url", "events", "description"})
    endpoint = await _stub(request).CreateWebhookEndpoint(
        create_endpoint_request(merchant, body.get("url"), body.get("events", ["*"]), body.get("description"))
    )
    return web.json_response(endpoint_json(endpoint), status=201)


async def list_endpoints(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    reply = await _stub(request).ListWebhookEndpoints(
        pb.ListWebhookEndpointsRequest(
            **merchant.scope, limit=page_limit(request.query), starting_after=_cursor(request)
        )
    )
    return web.json_response(
        {"object": "list", "data": [endpoint_json(e) for e in reply.endpoints], "has_more": reply.has_more}
    )


def _ref(request: web.Request, merchant: Any) -> pb.WebhookEndpointRef:
    return endpoint_ref(merchant, request.match_info["id"])


async def get_endpoint(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    return web.json_response(endpoint_json(await _stub(request).GetWebhookEndpoint(_ref(request, merchant))))


async def update_endpoint(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    endpoint_id = _id_param(request.match_info["id"])
    body = await read_json_object(request)
    _only(body, {"url", "events", "description", "status"})
    update = pb.UpdateWebhookEndpointRequest(**merchant.scope, endpoint_id=endpoint_id)
    if "url" in body:
        update.url = _url(body)
    if "events" in body:
        update.set_events = True
        update.events.extend(_events(body["events"]))
    if "description" in body:
        update.description = _description(body["description"])
    if "status" in body:
        if body["status"] not in ("enabled", "disabled"):
            raise ApiError(400, "invalid_status", "status must be enabled or disabled")
        update.status = body["status"]
    return web.json_response(endpoint_json(await _stub(request).UpdateWebhookEndpoint(update)))


async def delete_endpoint(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    endpoint = await _stub(request).DeleteWebhookEndpoint(_ref(request, merchant))
    return web.json_response({**endpoint_json(endpoint), "deleted": True})


async def roll_secret(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    endpoint_id = _id_param(request.match_info["id"])
    body = await read_json_object(request, allow_empty=True)
    _only(body, {"expires_in"})
    endpoint = await _stub(request).RollWebhookSecret(
        roll_secret_request(merchant, endpoint_id, body.get("expires_in", 0))
    )
    return web.json_response(endpoint_json(endpoint))


async def list_deliveries(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    reply = await _stub(request).ListWebhookDeliveries(
        pb.ListWebhookDeliveriesRequest(
            **merchant.scope,
            endpoint_id=_id_param(request.query.get("endpoint")),
            event_id=_id_param(request.query.get("event")),
            limit=page_limit(request.query),
            starting_after=_cursor(request),
        )
    )
    return web.json_response(
        {"object": "list", "data": [attempt_json(a) for a in reply.attempts], "has_more": reply.has_more}
    )


async def list_events(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    event_type = request.query.get("type", "")
    if len(event_type) > 64 or not event_type.isascii():
        raise ApiError(400, "invalid_type", "type must be a merchant event type")
    reply = await _stub(request).ListMerchantEvents(
        pb.ListMerchantEventsRequest(
            **merchant.scope,
            type=event_type,
            limit=page_limit(request.query),
            starting_after=_cursor(request),
        )
    )
    return web.json_response(
        {"object": "list", "data": [event_json(e) for e in reply.events], "has_more": reply.has_more}
    )


async def redeliver(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    event_id = request.match_info["id"]
    if not _EVENT_ID.fullmatch(event_id):
        raise ApiError(404, "not_found", "no such event")
    body = await read_json_object(request)
    _only(body, {"endpoint"})
    reply = await _stub(request).RedeliverMerchantEvent(
        redeliver_request(merchant, event_id, body.get("endpoint"))
    )
    return web.json_response(
        {
            "event_id": reply.event_id,
            "endpoint_id": reply.endpoint_id,
            "next_attempt_at": iso(reply.next_attempt_at),
        },
        status=202,
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/webhook_endpoints", list_endpoints)
    app.router.add_post("/v1/webhook_endpoints", create_endpoint)
    app.router.add_get("/v1/webhook_endpoints/{id}", get_endpoint)
    app.router.add_patch("/v1/webhook_endpoints/{id}", update_endpoint)
    app.router.add_delete("/v1/webhook_endpoints/{id}", delete_endpoint)
    app.router.add_post("/v1/webhook_endpoints/{id}/roll_secret", roll_secret)
    app.router.add_get("/v1/webhook_deliveries", list_deliveries)
    app.router.add_get("/v1/merchant_events", list_events)
    app.router.add_post("/v1/merchant_events/{id}/redeliver", redeliver)
