"""Merchant session routes: create (with Idempotency-Key), get, list, expire."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

import grpc
from aiohttp import web

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate.session.v1 import session_pb2
from webhook_gateway.adapters.idempotency_store import IdempotencyStore
from webhook_gateway.entrypoints.app_keys import CLIENTS, POOL
from webhook_gateway.entrypoints.http_errors import ApiError, raise_for_rpc_error
from webhook_gateway.entrypoints.merchant_auth import AuthenticatedMerchant, authenticate
from webhook_gateway.entrypoints.request_body import page_limit, parse_json_object
from webhook_gateway.entrypoints.routes_checkout import checkout_error_body, provider_checkouts
from webhook_gateway.entrypoints.session_json import STATUS_BY_NAME, session_detail, session_summary

_PROVIDERS = {"stripe", "onecom", "web3"}
_MAX_METADATA_KEYS = 50


def _field_error(field: str, code: str, message: str) -> ApiError:
    return ApiError(400, code, f"{field}: {message}")


def build_create_request(
    merchant: AuthenticatedMerchant, body: dict[str, Any]
) -> session_pb2.CreateSessionRequest:
    amount = body.get("amount")
    if amount is None:
        raise _field_error("amount", "missing_amount", "is required")
    if isinstance(amount, bool) or not isinstance(amount, str | int | Decimal):
        raise _field_error("amount", "invalid_amount", "must be a decimal string or a JSON number")
    currency = body.get("currency", "")
    if not isinstance(currency, str):
        raise _field_error("currency", "invalid_currency", "must be a string")
    provider = body.get("provider", "onecom")
    if provider not in _PROVIDERS:
        raise _field_error("provider", "invalid_provider", "must be stripe, onecom or web3")
    mode = body.get("mode")
    if mode is not None and mode not in ("test", "live"):
        raise _field_error("mode", "invalid_mode", "must be test or live")
    if mode is not None and mode != merchant.mode_name:
        raise _field_error("mode", "mode_mismatch", f"this key is a {merchant.mode_name} key")
    email = body.get("customer_email")
    if email is not None and (not isinstance(email, str) or "@" not in email or len(email) > 254):
        raise _field_error("customer_email", "invalid_customer_email", "must be an email address")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict) or len(metadata) > _MAX_METADATA_KEYS:
        raise _field_error("metadata", "invalid_metadata", "must be an object of at most 50 string values")
    for key, value in metadata.items():
        if not isinstance(value, str) or len(key) > 40 or len(value) > 500:
            raise _field_error(
                "metadata", "invalid_metadata", "keys up to 40 chars, values strings up to 500 chars"
            )
    expires_in = body.get("expires_in", 0)
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in < 0:
        raise _field_error("expires_in", "invalid_expires_in", "must be a whole number of seconds")
    description = body.get("description", "")
    if not isinstance(description, str) or len(description) > 200:
        raise _field_error("description", "invalid_description", "must be a string of at most 200 chars")
    return session_pb2.CreateSessionRequest(
        merchant_id=merchant.merchant_id,
        mode=merchant.mode,
        amount=str(amount),
        currency=currency,
        provider=provider,
        customer_email=email or "",
        metadata=metadata,
        expires_in_seconds=expires_in,
        description=description,
    )


def fingerprint(raw: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(raw, parse_float=Decimal), sort_keys=True, default=str).encode()
    except ValueError:
        canonical = raw
    return hashlib.sha256(canonical).hexdigest()


async def create_session(request: web.Request) -> web.StreamResponse:
    merchant = await authenticate(request)
    raw = await request.read()
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= 255):
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 characters")
    if key is None:
        return await _create(request, merchant, raw, None)
    store = IdempotencyStore(request.app[POOL])
    print_ = fingerprint(raw)
    previous = await store.claim(merchant.merchant_id, key, print_)
    if previous is not None:
        if previous.fingerprint != print_:
            raise ApiError(
                409, "idempotency_conflict", "this Idempotency-Key was used with another request body"
            )
        if previous.status_code is None:
            previous = await store.wait_for_response(merchant.merchant_id, key)
        if previous is None or previous.status_code is None:
            raise ApiError(
                409, "idempotency_in_progress", "a request with this Idempotency-Key is still running"
            )
        return web.Response(
            status=previous.status_code,
            body=previous.body,
            content_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    try:
        response = await _create(request, merchant, raw, key)
    except ApiError as error:
        if error.status_code >= 500:
            await store.release(merchant.merchant_id, key)
        else:
            await store.complete(merchant.merchant_id, key, error.status_code, error.text.encode())
        raise
    except BaseException:
        await store.release(merchant.merchant_id, key)
        raise
    await store.complete(merchant.merchant_id, key, response.status, response.body)
    return response


async def _create(
    request: web.Request, merchant: AuthenticatedMerchant, raw: bytes, idempotency_key: str | None
) -> web.Response:
    body = parse_json_object(raw)
    create = build_create_request(merchant, body)
    if idempotency_key:
        create.idempotency_key = idempotency_key
        create.request_fingerprint = fingerprint(raw)
    sessions = request.app[CLIENTS].session
    try:
        reply = await sessions.CreateSession(create)
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    # The session is committed: a Stripe failure now must not become an error (see routes_checkout).
    session, problem = await provider_checkouts(request.app).ensure(sessions, reply.session)
    body = session_summary(session)
    if problem is not None:
        body["provider_checkout_error"] = checkout_error_body(problem)
    return web.json_response(body, status=201)


async def access_url_for(request: web.Request, session: session_pb2.Session) -> str | None:
    if not session.access_token_id:
        return None
    try:
        link = await request.app[CLIENTS].keys.GetAccessLink(
            keys_pb2.GetAccessLinkRequest(session_id=session.id, merchant_id=session.merchant_id)
        )
    except grpc.aio.AioRpcError:
        return None
    return link.url


async def get_session(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    try:
        session = await request.app[CLIENTS].session.GetSession(
            session_pb2.GetSessionRequest(
                session_id=request.match_info["id"], merchant_id=merchant.merchant_id
            )
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    return web.json_response(session_detail(session, await access_url_for(request, session)))


async def list_sessions(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    query = request.query
    status_name = query.get("status")
    if status_name is not None and status_name not in STATUS_BY_NAME:
        raise ApiError(400, "invalid_status", "status must be created, pending, paid, failed or expired")
    limit = page_limit(query)
    try:
        reply = await request.app[CLIENTS].session.ListSessions(
            session_pb2.ListSessionsRequest(
                merchant_id=merchant.merchant_id,
                status=STATUS_BY_NAME.get(status_name or "", 0),
                limit=limit,
                starting_after=query.get("starting_after", ""),
                mode=merchant.mode if merchant.mode else common_pb2.MODE_UNSPECIFIED,
            )
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    return web.json_response(
        {"object": "list", "data": [session_summary(s) for s in reply.sessions], "has_more": reply.has_more}
    )


async def expire_session(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    # Stripe's page is expired first, so that it can no longer take money for a session we closed.
    session = await provider_checkouts(request.app).expire(
        request.app[CLIENTS].session, request.match_info["id"], merchant.merchant_id
    )
    return web.json_response(session_detail(session, None))


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/sessions", create_session)
    app.router.add_post("/create_session", create_session)
    app.router.add_get("/v1/sessions", list_sessions)
    app.router.add_get("/v1/sessions/{id}", get_session)
    app.router.add_post("/v1/sessions/{id}/expire", expire_session)
