"""Merchant API for customer keys (contract §2) and the public JWK Set (contract §3).

- GET /v1/api_keys                 the merchant's customer keys (metadata and hint, never a secret)
- POST /v1/api_keys/{id}/roll      {"grace_period": seconds (0..604800, default 0)}: the new secret, once
- DELETE /v1/api_keys/{id}         revoke
- POST /v1/api_keys/verify         {"key": "..."} -> {"valid", "code", "key_id", "merchant_id", "session_id"}
- GET /.well-known/jwks.json       public keys of access tokens

Every merchant call is scoped to the calling merchant and to its key's mode (test and live never mix):
another merchant's key, or a key of the other mode, is 404 / NOT_FOUND.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import grpc
from aiohttp import web
from google.protobuf.timestamp_pb2 import Timestamp

from paygate.keys.v1 import keys_pb2
from webhook_gateway.entrypoints.app_keys import CLIENTS
from webhook_gateway.entrypoints.http_errors import ApiError, raise_for_rpc_error
from webhook_gateway.entrypoints.merchant_auth import authenticate
from webhook_gateway.entrypoints.request_body import page_limit, read_json_object

MAX_GRACE_PERIOD_SECONDS = 7 * 24 * 3600
_STATUS_NAMES = {
    keys_pb2.KEY_STATUS_VALID: "VALID",
    keys_pb2.KEY_STATUS_NOT_FOUND: "NOT_FOUND",
    keys_pb2.KEY_STATUS_EXPIRED: "EXPIRED",
    keys_pb2.KEY_STATUS_REVOKED: "REVOKED",
}
_NO_STORE = {"Cache-Control": "no-store"}


def _time(message: Any, field: str) -> str | None:
    if not message.HasField(field):
        return None
    ts: Timestamp = getattr(message, field)
    return ts.ToDatetime(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def api_key_json(key: keys_pb2.ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "object": "api_key",
        "prefix": key.prefix,
        "hint": key.hint,
        "status": _STATUS_NAMES.get(key.status, "NOT_FOUND"),
        "mode": "live" if key.mode == 2 else "test",
        "session_id": key.session_id,
        "revealed": key.revealed,
        "metadata": dict(key.metadata),
        "rolled_from_id": key.rolled_from_id or None,
        "created_at": _time(key, "created_at"),
        "expires_at": _time(key, "expires_at"),
        "revoked_at": _time(key, "revoked_at"),
        "last_used_at": _time(key, "last_used_at"),
    }


async def list_keys(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    try:
        reply = await request.app[CLIENTS].keys.ListKeys(
            keys_pb2.ListKeysRequest(
                merchant_id=merchant.merchant_id,
                mode=merchant.mode,
                limit=page_limit(request.query),
                starting_after=request.query.get("starting_after", "")[:64],
            )
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    return web.json_response(
        {"object": "list", "data": [api_key_json(k) for k in reply.keys], "has_more": reply.has_more},
        headers=_NO_STORE,
    )


def _grace_period(body: dict[str, Any]) -> int:
    value = body.get("grace_period", 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, "invalid_grace_period", "grace_period must be a whole number of seconds")
    if not 0 <= value <= MAX_GRACE_PERIOD_SECONDS:
        raise ApiError(400, "invalid_grace_period", "grace_period must be between 0 and 604800 seconds")
    return value


async def roll_key(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    body = await read_json_object(request, allow_empty=True)
    idempotency_key = request.headers.get("Idempotency-Key", "")
    if len(idempotency_key) > 255:
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key is longer than 255 characters")
    try:
        reply = await request.app[CLIENTS].keys.RollKey(
            keys_pb2.RollKeyRequest(
                merchant_id=merchant.merchant_id,
                key_id=request.match_info["id"][:64],
                grace_period_seconds=_grace_period(body),
                idempotency_key=idempotency_key,
                mode=merchant.mode,
            )
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    payload = api_key_json(reply.key)
    # Shown this once; an idempotent replay has no secret to show again.
    payload["secret"] = reply.secret or None
    payload["previous"] = api_key_json(reply.previous)
    return web.json_response(payload, headers=_NO_STORE)


async def revoke_key(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    try:
        reply = await request.app[CLIENTS].keys.RevokeKey(
            keys_pb2.RevokeKeyRequest(
                merchant_id=merchant.merchant_id, key_id=request.match_info["id"][:64], mode=merchant.mode
            )
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    return web.json_response(api_key_json(reply), headers=_NO_STORE)


async def verify_key(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    body = await read_json_object(request)
    if "key" not in body:
        raise ApiError(400, "missing_key", "key is required")
    key = body["key"]
    if not isinstance(key, str):
        raise ApiError(400, "invalid_key", "key must be a string")
    try:
        reply = await request.app[CLIENTS].keys.VerifyKey(
            # An oversize key is cut, not forwarded: it matches nothing either way and the answer is NOT_FOUND.
            keys_pb2.VerifyKeyRequest(key=key[:200], merchant_id=merchant.merchant_id, mode=merchant.mode)
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    code = _STATUS_NAMES.get(reply.status, "NOT_FOUND")
    return web.json_response(
        {
            "valid": code == "VALID",
            "code": code,
            "key_id": reply.key_id or None,
            "merchant_id": reply.merchant_id or None,
            "session_id": reply.session_id or None,
            "mode": {1: "test", 2: "live"}.get(reply.mode),
        },
        headers=_NO_STORE,
    )


async def jwks(request: web.Request) -> web.Response:
    try:
        reply = await request.app[CLIENTS].keys.GetJwks(keys_pb2.GetJwksRequest())
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    # Short caching: verifiers pick up a newly added kid within minutes, and a rotation adds the new key
    # to the set before it signs anything.
    return web.Response(
        text=reply.json,
        content_type="application/jwk-set+json",
        headers={"Cache-Control": "public, max-age=300"},
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/api_keys", list_keys)
    app.router.add_post("/v1/api_keys/verify", verify_key)
    app.router.add_post("/v1/api_keys/{id}/roll", roll_key)
    app.router.add_delete("/v1/api_keys/{id}", revoke_key)
    app.router.add_get("/.well-known/jwks.json", jwks)
