"""Merchant API for customer keys (contract §2) and the public JWK Set (contract §3).

- GET /v1/api_keys                 the merchant's customer keys (metadata and hint, never a secret)
- POST /v1/api_keys/{id}/roll      {"grace_period": seconds (0..604800, default 0)}: the new secret, once
- DELETE /v1/api_keys/{id}         revoke
- POST /v1/api_keys/verify         {"key": "...", "ip": "203.0.113.7" (optional)}
                                   -> {"valid", "code", "key_id", "merchant_id", "session_id", "mode", "scopes"}
  A key with an IP allow-list answers IP_NOT_ALLOWED for an IP outside it, and without "ip" (fail closed).
- GET /.well-known/jwks.json       public keys of access tokens

Every merchant call is scoped to the calling merchant and to its key's mode (test and live never mix):
another merchant's key, or a key of the other mode, is 404 / NOT_FOUND.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import grpc
from aiohttp import web

from paygate.keys.v1 import keys_pb2
from paygate_runtime.api_objects import KEY_STATUS_NAMES, api_key_json
from webhook_gateway.entrypoints.app_keys import CLIENTS
from webhook_gateway.entrypoints.http_errors import ApiError, raise_for_rpc_error
from webhook_gateway.entrypoints.key_replies import NO_STORE, key_reply_headers
from webhook_gateway.entrypoints.merchant_auth import authenticate
from webhook_gateway.entrypoints.merchant_requests import (
    idempotency_key_header,
    parse_grace_period,
    path_key_id,
)
from webhook_gateway.entrypoints.request_body import page_cursor, page_limit, read_json_object


async def list_keys(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    try:
        reply = await request.app[CLIENTS].keys.ListKeys(
            keys_pb2.ListKeysRequest(
                merchant_id=merchant.merchant_id,
                mode=merchant.mode,
                limit=page_limit(request.query),
                starting_after=page_cursor(request.query),
            )
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    return web.json_response(
        {"object": "list", "data": [api_key_json(k) for k in reply.keys], "has_more": reply.has_more},
        headers=NO_STORE,
    )


async def roll_key(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    body = await read_json_object(request, allow_empty=True)
    idempotency_key = idempotency_key_header(request)
    try:
        reply = await request.app[CLIENTS].keys.RollKey(
            keys_pb2.RollKeyRequest(
                merchant_id=merchant.merchant_id,
                key_id=path_key_id(request),
                grace_period_seconds=parse_grace_period(body),
                idempotency_key=idempotency_key,
                mode=merchant.mode,
                actor=merchant.api_actor,
            )
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    payload = api_key_json(reply.key)
    # Shown this once; an idempotent replay has no secret to show again.
    payload["secret"] = reply.secret or None
    payload["previous"] = api_key_json(reply.previous)
    return web.json_response(payload, headers=key_reply_headers(idempotency_key, reply.secret))


async def revoke_key(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    try:
        reply = await request.app[CLIENTS].keys.RevokeKey(
            keys_pb2.RevokeKeyRequest(
                merchant_id=merchant.merchant_id,
                key_id=path_key_id(request),
                mode=merchant.mode,
                actor=merchant.api_actor,
            )
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    return web.json_response(api_key_json(reply), headers=NO_STORE)


def _caller_ip(value: Any) -> str:
    """The optional caller IP of a verify: absent or null is "", anything else must be one IP address."""
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 64:
        raise ApiError(400, "invalid_ip", "ip must be an IPv4 or IPv6 address")
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ApiError(400, "invalid_ip", "ip must be an IPv4 or IPv6 address") from None


async def verify_key(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    body = await read_json_object(request)
    if "key" not in body:
        raise ApiError(400, "missing_key", "key is required")
    key = body["key"]
    if not isinstance(key, str):
        raise ApiError(400, "invalid_key", "key must be a string")
    ip = _caller_ip(body.get("ip"))
    try:
        reply = await request.app[CLIENTS].keys.VerifyKey(
            # An oversize key is cut, not forwarded: it matches nothing either way and the answer is NOT_FOUND.
            keys_pb2.VerifyKeyRequest(
                key=key[:200], merchant_id=merchant.merchant_id, mode=merchant.mode, ip=ip
            )
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    code = KEY_STATUS_NAMES.get(reply.status, "NOT_FOUND")
    return web.json_response(
        {
            "valid": code == "VALID",
            "code": code,
            "key_id": reply.key_id or None,
            "merchant_id": reply.merchant_id or None,
            "session_id": reply.session_id or None,
            "mode": {1: "test", 2: "live"}.get(reply.mode),
            "scopes": list(reply.scopes) if code != "NOT_FOUND" else None,
        },
        headers=NO_STORE,
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
