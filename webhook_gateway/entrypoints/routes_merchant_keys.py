"""Merchant API for the merchant's own secret keys (contract §6a, "Merchant secret keys have a lifecycle").

- GET /v1/merchant_keys               the caller's mode's keys: id, prefix, last4, status, times; never a secret
- POST /v1/merchant_keys              a new key of the caller's own mode; its secret once (201)
- POST /v1/merchant_keys/{id}/roll    {"grace_period": seconds (0..604800, default 0)}: a new key, its secret
                                      once; the old key works until the grace period ends
- DELETE /v1/merchant_keys/{id}       revoke at once; the mode's last active key is 409 `last_key`

Scope: the calling merchant and its key's mode. Another merchant's key, a key of the other mode and a
malformed id are all 404 `not_found`. The keys service reads the key on every authentication (no cache), so
a revoked or expired key is refused from the next request on, on every gateway replica.
"""

from __future__ import annotations

from typing import Any

import grpc
from aiohttp import web

from paygate.keys.v1 import keys_pb2
from paygate_runtime.api_objects import proto_time
from paygate_runtime.proto_convert import mode_label
from webhook_gateway.entrypoints.app_keys import CLIENTS
from webhook_gateway.entrypoints.http_errors import ApiError, raise_for_rpc_error
from webhook_gateway.entrypoints.key_replies import NO_STORE, key_reply_headers
from webhook_gateway.entrypoints.merchant_auth import AuthenticatedMerchant, authenticate
from webhook_gateway.entrypoints.merchant_requests import (
    idempotency_key_header,
    parse_grace_period,
    path_key_id,
)
from webhook_gateway.entrypoints.request_body import page_cursor, page_limit, read_json_object

_STATUS_NAMES = {
    keys_pb2.MERCHANT_KEY_STATUS_ACTIVE: "active",
    keys_pb2.MERCHANT_KEY_STATUS_EXPIRING: "expiring",
    keys_pb2.MERCHANT_KEY_STATUS_REVOKED: "revoked",
    keys_pb2.MERCHANT_KEY_STATUS_EXPIRED: "expired",
}


def merchant_key_json(key: keys_pb2.MerchantKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "object": "merchant_key",
        "prefix": key.prefix,
        "last4": key.last4,
        "mode": mode_label(key.mode),
        "status": _STATUS_NAMES.get(key.status, "revoked"),
        "created_at": proto_time(key, "created_at"),
        "last_used_at": proto_time(key, "last_used_at"),
        "expires_at": proto_time(key, "expires_at"),
        "revoked_at": proto_time(key, "revoked_at"),
        "rolled_from_id": key.rolled_from_id or None,
    }


def _grace_period(body: dict[str, Any]) -> int:
    """As for customer keys, except that null too means 0 (the old key stops at once)."""
    return 0 if body.get("grace_period") is None else parse_grace_period(body)


def _check_mode(merchant: AuthenticatedMerchant, body: dict[str, Any]) -> None:
    mode = body.get("mode")
    if mode is None:
        return
    if mode not in ("test", "live"):
        raise ApiError(400, "invalid_mode", "mode must be test or live")
    if mode != merchant.mode_name:
        # A test key never mints a live key: the first live key comes from an operator (CLI).
        raise ApiError(400, "mode_mismatch", f"mode: this is a {merchant.mode_name} key")


async def list_merchant_keys(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    limit = page_limit(request.query, default=100)
    cursor = page_cursor(request.query)
    try:
        reply = await request.app[CLIENTS].keys.ListMerchantKeys(
            keys_pb2.ListMerchantKeysRequest(
                merchant_id=merchant.merchant_id, mode=merchant.mode, limit=limit, starting_after=cursor
            )
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    return web.json_response(
        {"object": "list", "data": [merchant_key_json(k) for k in reply.keys], "has_more": reply.has_more},
        headers=NO_STORE,
    )


async def create_merchant_key(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    body = await read_json_object(request, allow_empty=True)
    _check_mode(merchant, body)
    idempotency_key = idempotency_key_header(request)
    try:
        reply = await request.app[CLIENTS].keys.CreateMerchantSecretKey(
            keys_pb2.CreateMerchantSecretKeyRequest(
                merchant_id=merchant.merchant_id,
                mode=merchant.mode,
                idempotency_key=idempotency_key,
                actor=merchant.api_actor,
            )
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    payload = merchant_key_json(reply.key)
    # Shown this once; an idempotent replay has no secret to show again.
    payload["secret"] = reply.secret_key or None
    return web.json_response(
        payload, status=201, headers=key_reply_headers(idempotency_key, reply.secret_key)
    )


async def roll_merchant_key(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    body = await read_json_object(request, allow_empty=True)
    grace = _grace_period(body)
    idempotency_key = idempotency_key_header(request)
    try:
        reply = await request.app[CLIENTS].keys.RollMerchantKey(
            keys_pb2.RollMerchantKeyRequest(
                merchant_id=merchant.merchant_id,
                key_id=path_key_id(request),
                grace_period_seconds=grace,
                mode=merchant.mode,
                idempotency_key=idempotency_key,
                actor=merchant.api_actor,
            )
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    payload = merchant_key_json(reply.key)
    payload["secret"] = reply.secret or None
    payload["previous"] = merchant_key_json(reply.previous)
    return web.json_response(payload, headers=key_reply_headers(idempotency_key, reply.secret))


async def revoke_merchant_key(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    try:
        reply = await request.app[CLIENTS].keys.RevokeMerchantKey(
            keys_pb2.RevokeMerchantKeyRequest(
                merchant_id=merchant.merchant_id,
                key_id=path_key_id(request),
                mode=merchant.mode,
                actor=merchant.api_actor,
            )
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    return web.json_response(merchant_key_json(reply), headers=NO_STORE)


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/merchant_keys", list_merchant_keys)
    app.router.add_post("/v1/merchant_keys", create_merchant_key)
    app.router.add_post("/v1/merchant_keys/{id}/roll", roll_merchant_key)
    app.router.add_delete("/v1/merchant_keys/{id}", revoke_merchant_key)
