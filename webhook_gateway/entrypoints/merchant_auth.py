"""Merchant authentication: `X-API-Key: sk_...` or `Authorization: Bearer sk_...`, checked by the keys service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from aiohttp import web

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate_runtime.proto_convert import mode_label
from webhook_gateway.entrypoints.app_keys import CLIENTS
from webhook_gateway.entrypoints.http_errors import ApiError, raise_for_rpc_error

_MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class AuthenticatedMerchant:
    merchant_id: str
    name: str
    mode: common_pb2.Mode
    key_prefix: str
    key_id: str = ""  # the secret key that authenticated this request (audit trails name it as the actor)

    @property
    def mode_name(self) -> str:
        return mode_label(self.mode)

    @property
    def scope(self) -> dict[str, Any]:
        """The caller's (merchant_id, mode) as request fields: every RPC that loads or lists a merchant's
        object takes `**merchant.scope`, so the services find it only in this merchant AND this key's mode
        (the other mode's objects answer NOT_FOUND, exactly as another merchant's)."""
        return {"merchant_id": self.merchant_id, "mode": self.mode}

    @property
    def api_actor(self) -> str:
        """The audit trail's actor of a JSON API request: the secret key that made it."""
        return f"merchant_key:{self.key_id}" if self.key_id else "merchant_key"


def presented_key(request: web.Request) -> str | None:
    key = request.headers.get("X-API-Key")
    if not key:
        auth = request.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer":
            key = value.strip()
    return key or None


async def authenticate(request: web.Request) -> AuthenticatedMerchant:
    key = presented_key(request)
    if key is None:
        raise ApiError(401, "unauthenticated", "missing API key", headers={"WWW-Authenticate": "Bearer"})
    # Secret keys are ASCII; other text (aiohttp passes non-UTF-8 header bytes on as lone surrogates, which
    # protobuf cannot encode) names no key.
    if len(key) > _MAX_KEY_LENGTH or not key.isascii():
        raise ApiError(401, "unauthenticated", "invalid API key", headers={"WWW-Authenticate": "Bearer"})
    try:
        reply = await request.app[CLIENTS].keys.AuthenticateMerchant(
            keys_pb2.AuthenticateMerchantRequest(secret_key=key)
        )
    except grpc.aio.AioRpcError as error:
        if error.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            raise ApiError(
                401, "unauthenticated", "invalid API key", headers={"WWW-Authenticate": "Bearer"}
            ) from None
        raise_for_rpc_error(error)
    return AuthenticatedMerchant(
        merchant_id=reply.merchant.id,
        name=reply.merchant.name,
        mode=reply.mode,
        key_prefix=reply.merchant.key_prefix,
        key_id=reply.secret_key_id,
    )
