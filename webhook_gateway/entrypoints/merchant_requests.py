"""Request builders and parsers the merchant API routes and the dashboard share (keys, webhook endpoints,
merchant events): one reading of each input, whichever page or route it comes from."""

from __future__ import annotations

import re
from typing import Any, Final

from aiohttp import web

from paygate.session.v1 import merchant_events_pb2 as pb
from paygate.session.v1 import merchant_events_pb2_grpc
from webhook_gateway.entrypoints.app_keys import CLIENTS
from webhook_gateway.entrypoints.http_errors import ApiError
from webhook_gateway.providers.payload import storable_text

MAX_GRACE_PERIOD_SECONDS = 7 * 24 * 3600
MAX_IDEMPOTENCY_KEY_CHARS = 255


def parse_grace_period(body: dict[str, Any]) -> int:
    """`grace_period` of a roll: whole seconds, 0..604800; absent means 0 (the old key stops at once)."""
    value = body.get("grace_period", 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, "invalid_grace_period", "grace_period must be a whole number of seconds")
    if not 0 <= value <= MAX_GRACE_PERIOD_SECONDS:
        raise ApiError(400, "invalid_grace_period", "grace_period must be between 0 and 604800 seconds")
    return value


# aiohttp hands a header's bytes that are not UTF-8 over as lone surrogates, which gRPC and PostgreSQL cannot
# encode: `storable_text` refuses them (a 400 where the caller's bad header would otherwise make a 500).


def idempotency_key_header(request: web.Request) -> str:
    """The key routes' Idempotency-Key: "" when absent or empty."""
    value = request.headers.get("Idempotency-Key", "")
    if len(value) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key is longer than 255 characters")
    if not storable_text(value):
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key is not UTF-8 text")
    return value


def optional_idempotency_key(request: web.Request) -> str | None:
    """The Idempotency-Key of a create (sessions, refunds, webhook endpoints): None when absent; present, it
    must be 1 to 255 characters of text that can be stored."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY_CHARS and storable_text(key)):
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 characters")
    return key


def path_key_id(request: web.Request) -> str:
    # Cut, not refused: an oversize id names no key and the keys service answers NOT_FOUND.
    return request.match_info["id"][:64]


MAX_ID = 100
EVENT_ID = re.compile(r"evt_[0-9a-f]{32}")
_MAX_URL = 2048
_MAX_DESCRIPTION = 500


def audit_actor(merchant: Any) -> str:
    """The audit trail's actor (the secret key that asked); the service writes "merchant" when unknown."""
    return str(getattr(merchant, "api_actor", "") or "")


def merchant_events_stub(request: web.Request) -> merchant_events_pb2_grpc.MerchantEventsServiceStub:
    """The session service's MerchantEventsService stub; the dashboard acts through this same stub."""
    return request.app[CLIENTS].merchant_events


def id_param(raw: str | None) -> str:
    """An id from the path or query: anything odd is simply not found (the service answers 404 for it)."""
    if raw is None:
        return ""
    if len(raw) > MAX_ID or not raw.isascii() or not raw.isprintable():
        raise ApiError(404, "not_found", "no such object")
    return raw


def endpoint_url(body: dict[str, Any]) -> str:
    url = body.get("url")
    if not isinstance(url, str) or not url or len(url) > _MAX_URL:
        raise ApiError(400, "invalid_url", "url must be an absolute URL string")
    return url


def endpoint_events(value: Any) -> list[str]:
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= 32
        or not all(isinstance(e, str) and 0 < len(e) <= 64 for e in value)
    ):
        raise ApiError(400, "invalid_events", 'events must be a list of 1 to 32 event types, or ["*"]')
    return value


def endpoint_description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > _MAX_DESCRIPTION:
        raise ApiError(
            400,
            "invalid_description",
            f"description must be a string of at most {_MAX_DESCRIPTION} characters",
        )
    return value


# Each builds one RPC request after the JSON API's checks (ApiError with the field's code), so the JSON API
# and the dashboard cannot drift apart.


def create_endpoint_request(
    merchant: Any, url: Any, events: Any, description: Any
) -> pb.CreateWebhookEndpointRequest:
    return pb.CreateWebhookEndpointRequest(
        **merchant.scope,
        url=endpoint_url({"url": url}),
        events=endpoint_events(events),
        description=endpoint_description(description),
        actor=audit_actor(merchant),
    )


# `expires_in` of a webhook secret roll left out: the session service's default (24 h).
EXPIRES_IN_OMITTED: Final = object()
MAX_SECRET_OVERLAP_SECONDS = 7 * 86_400


def roll_secret_request(
    merchant: Any, endpoint_id: str, expires_in: Any = EXPIRES_IN_OMITTED
) -> pb.RollWebhookSecretRequest:
    """`expires_in`: seconds the old secret keeps signing beside the new one, 0..604800. 0 retires it at once
    (sent as set, so it is never mistaken for "left out"); left out, the default 24 h."""
    rpc = pb.RollWebhookSecretRequest(
        **merchant.scope, endpoint_id=id_param(endpoint_id), actor=audit_actor(merchant)
    )
    if expires_in is EXPIRES_IN_OMITTED:
        return rpc
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int)
        or not 0 <= expires_in <= MAX_SECRET_OVERLAP_SECONDS
    ):
        raise ApiError(
            400,
            "invalid_expires_in",
            "expires_in: seconds the old secret keeps signing, 0..604800 (0: stops now; default 86400)",
        )
    rpc.overlap_seconds = expires_in
    return rpc


def endpoint_ref(merchant: Any, endpoint_id: str) -> pb.WebhookEndpointRef:
    return pb.WebhookEndpointRef(
        **merchant.scope, endpoint_id=id_param(endpoint_id), actor=audit_actor(merchant)
    )


def redeliver_request(merchant: Any, event_id: str, endpoint: Any) -> pb.RedeliverMerchantEventRequest:
    if not EVENT_ID.fullmatch(event_id):
        raise ApiError(404, "not_found", "no such event")
    if not isinstance(endpoint, str) or not endpoint:
        raise ApiError(400, "invalid_endpoint", "endpoint must be a webhook endpoint id")
    return pb.RedeliverMerchantEventRequest(
        **merchant.scope, event_id=event_id, endpoint_id=id_param(endpoint), actor=audit_actor(merchant)
    )
