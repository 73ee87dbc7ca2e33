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
from paygate_runtime.api_objects import iso
from paygate_runtime.proto_convert import mode_label
from webhook_gateway.entrypoints.http_errors import ApiError
from webhook_gateway.entrypoints.merchant_auth import authenticate
from webhook_gateway.entrypoints.merchant_requests import (
    EVENT_ID,
    EXPIRES_IN_OMITTED,
    audit_actor,
    create_endpoint_request,
    endpoint_description,
    endpoint_events,
    endpoint_ref,
    endpoint_url,
    id_param,
    merchant_events_stub,
    optional_idempotency_key,
    redeliver_request,
    roll_secret_request,
)
from webhook_gateway.entrypoints.request_body import (
    body_fingerprint,
    cursor_refused,
    page_cursor,
    page_limit,
    read_json_object,
)

# A delivery attempt's id: a positive bigint.
_ATTEMPT_ID = re.compile(r"[1-9][0-9]{0,17}")


def _cursor(request: web.Request, shape: re.Pattern[str]) -> str:
    """The list's cursor in its list's id shape ("" when absent); the session service then refuses one that
    names no item of the list in the caller's merchant and mode, with the same code."""
    raw = request.query.get("starting_after", "")
    if raw and not shape.fullmatch(raw):
        raise cursor_refused()
    return raw


def endpoint_json(endpoint: pb.WebhookEndpoint) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": endpoint.id,
        "object": "webhook_endpoint",
        "url": endpoint.url,
        "events": list(endpoint.events),
        "description": endpoint.description,
        "status": endpoint.status,
        "mode": mode_label(endpoint.mode),
        "created_at": iso(endpoint.created_at),
        "updated_at": iso(endpoint.updated_at),
        "disabled_reason": endpoint.disabled_reason or None,
        "failing_since": iso(endpoint.failing_since, endpoint.HasField("failing_since")),
        "previous_secret_expires_at": iso(
            endpoint.previous_secret_expires_at, endpoint.HasField("previous_secret_expires_at")
        ),
        "previous_secrets": [{"expires_at": iso(end)} for end in endpoint.previous_secrets_expire_at],
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


async def create_endpoint(request: web.Request) -> web.Response:
    """With an `Idempotency-Key` (as POST /v1/sessions): the session service keeps the key with the endpoint,
    so the same key and body give the same endpoint as it stands now, a deleted one too (its secret was shown
    once and is not shown again: `replayed_endpoint_json`), and the same key with another body gets 409
    `idempotency_conflict`."""
    merchant = await authenticate(request)
    key = optional_idempotency_key(request)
    body = await read_json_object(request)
    create = create_endpoint_request(
        merchant, body.get("url"), body.get("events", ["*"]), body.get("description")
    )
    if key:
        create.idempotency_key = key
        create.request_fingerprint = body_fingerprint(await request.read())
    endpoint = await merchant_events_stub(request).CreateWebhookEndpoint(create)
    if not endpoint.replayed:
        return web.json_response(endpoint_json(endpoint), status=201)
    return web.json_response(
        replayed_endpoint_json(endpoint), status=201, headers={"Idempotent-Replayed": "true"}
    )


def replayed_endpoint_json(endpoint: pb.WebhookEndpoint) -> dict[str, Any]:
    """A replayed create answers 201 and the endpoint as it stands now, as a refund's replay does: the key's
    create did happen, and a client retrying after a lost reply must not read a refusal as "not created" and
    register a second endpoint under a new key. A deleted endpoint is said so exactly as its DELETE reply said
    (`"deleted": true`). The secret was shown once: never here, even should the service send one."""
    body = endpoint_json(endpoint)
    body.pop("secret", None)
    if endpoint.status == "deleted":
        body["deleted"] = True
    return body


async def list_endpoints(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    reply = await merchant_events_stub(request).ListWebhookEndpoints(
        pb.ListWebhookEndpointsRequest(
            **merchant.scope, limit=page_limit(request.query), starting_after=page_cursor(request.query)
        )
    )
    return web.json_response(
        {"object": "list", "data": [endpoint_json(e) for e in reply.endpoints], "has_more": reply.has_more}
    )


def _ref(request: web.Request, merchant: Any) -> pb.WebhookEndpointRef:
    return endpoint_ref(merchant, request.match_info["id"])


async def get_endpoint(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    return web.json_response(
        endpoint_json(await merchant_events_stub(request).GetWebhookEndpoint(_ref(request, merchant)))
    )


async def update_endpoint(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    endpoint_id = id_param(request.match_info["id"])
    body = await read_json_object(request)
    update = pb.UpdateWebhookEndpointRequest(
        **merchant.scope, endpoint_id=endpoint_id, actor=audit_actor(merchant)
    )
    if "url" in body:
        update.url = endpoint_url(body)
    if "events" in body:
        update.set_events = True
        update.events.extend(endpoint_events(body["events"]))
    if "description" in body:
        update.description = endpoint_description(body["description"])
    if "status" in body:
        if body["status"] not in ("enabled", "disabled"):
            raise ApiError(400, "invalid_status", "status must be enabled or disabled")
        update.status = body["status"]
    return web.json_response(endpoint_json(await merchant_events_stub(request).UpdateWebhookEndpoint(update)))


async def delete_endpoint(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    endpoint = await merchant_events_stub(request).DeleteWebhookEndpoint(_ref(request, merchant))
    return web.json_response({**endpoint_json(endpoint), "deleted": True})


async def roll_secret(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    endpoint_id = id_param(request.match_info["id"])
    body = await read_json_object(request, allow_empty=True)
    endpoint = await merchant_events_stub(request).RollWebhookSecret(
        roll_secret_request(merchant, endpoint_id, body.get("expires_in", EXPIRES_IN_OMITTED))
    )
    return web.json_response(endpoint_json(endpoint))


async def list_deliveries(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    reply = await merchant_events_stub(request).ListWebhookDeliveries(
        pb.ListWebhookDeliveriesRequest(
            **merchant.scope,
            endpoint_id=id_param(request.query.get("endpoint")),
            event_id=id_param(request.query.get("event")),
            limit=page_limit(request.query),
            starting_after=_cursor(request, _ATTEMPT_ID),
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
    reply = await merchant_events_stub(request).ListMerchantEvents(
        pb.ListMerchantEventsRequest(
            **merchant.scope,
            type=event_type,
            limit=page_limit(request.query),
            starting_after=_cursor(request, EVENT_ID),
        )
    )
    return web.json_response(
        {"object": "list", "data": [event_json(e) for e in reply.events], "has_more": reply.has_more}
    )


async def redeliver(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    event_id = request.match_info["id"]
    if not EVENT_ID.fullmatch(event_id):
        raise ApiError(404, "not_found", "no such event")
    body = await read_json_object(request)
    if body.get("endpoint") is None:
        # Left out (or null): the field is missing, as the OpenAPI document lists; a wrong value is invalid.
        raise ApiError(400, "missing_endpoint", "endpoint is required: the id of the webhook endpoint")
    reply = await merchant_events_stub(request).RedeliverMerchantEvent(
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
