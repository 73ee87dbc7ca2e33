"""Revoke and reissue a session's customer access links (contract §6a): shared by the JSON routes and the
dashboard, which differ only in the audit actor."""

from __future__ import annotations

import grpc
from aiohttp import web

from paygate.keys.v1 import keys_pb2
from paygate.session.v1 import session_pb2
from webhook_gateway.entrypoints.app_keys import CLIENTS
from webhook_gateway.entrypoints.http_errors import ApiError, raise_for_rpc_error
from webhook_gateway.entrypoints.merchant_auth import AuthenticatedMerchant


async def _own_session(request: web.Request, merchant: AuthenticatedMerchant) -> session_pb2.Session:
    try:
        session = await request.app[CLIENTS].session.GetSession(
            session_pb2.GetSessionRequest(
                session_id=request.match_info["id"][:64], merchant_id=merchant.merchant_id, mode=merchant.mode
            )
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    # The session service filters on both already; checked again because a link to the other mode's
    # customer is exactly what must never leak.
    if session.merchant_id != merchant.merchant_id or session.mode != merchant.mode:
        raise ApiError(404, "not_found", "session not found")
    return session


def _not_fulfilled() -> ApiError:
    return ApiError(409, "session_not_fulfilled", "this session has no access link yet (fulfilment pending)")


def _raise_for_keys_error(error: grpc.aio.AioRpcError) -> None:
    # The session is ours (checked above): NOT_FOUND from the keys service means it has no token yet.
    if error.code() == grpc.StatusCode.NOT_FOUND:
        raise _not_fulfilled() from None
    raise_for_rpc_error(error)


async def revoke_session_links(
    request: web.Request, merchant: AuthenticatedMerchant, actor: str
) -> tuple[session_pb2.Session, int]:
    """Revoke every link of the route's session `{id}`: (the session, links revoked now). Shared by the JSON
    route and the dashboard, which differ only in the audit `actor`."""
    session = await _own_session(request, merchant)
    if not session.access_token_id:
        raise _not_fulfilled()
    try:
        reply = await request.app[CLIENTS].keys.RevokeAccessLinks(
            keys_pb2.RevokeAccessLinksRequest(
                session_id=session.id,
                merchant_id=merchant.merchant_id,
                mode=merchant.mode,
                actor=actor,
            )
        )
    except grpc.aio.AioRpcError as error:
        _raise_for_keys_error(error)
    return session, reply.revoked


async def reissue_session_link(
    request: web.Request, merchant: AuthenticatedMerchant, actor: str
) -> tuple[session_pb2.Session, str]:
    """Revoke what still stands and issue a fresh link for the route's session `{id}`: (session, new url)."""
    session = await _own_session(request, merchant)
    if session.status != session_pb2.SESSION_STATUS_PAID:
        raise ApiError(409, "session_not_paid", "only a paid session has an access link")
    if not session.access_token_id:
        raise _not_fulfilled()
    try:
        link = await request.app[CLIENTS].keys.ReissueAccessLink(
            keys_pb2.ReissueAccessLinkRequest(
                session_id=session.id,
                merchant_id=merchant.merchant_id,
                mode=merchant.mode,
                actor=actor,
            )
        )
    except grpc.aio.AioRpcError as error:
        _raise_for_keys_error(error)
    return session, link.url
