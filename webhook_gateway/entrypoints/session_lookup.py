"""Loading the caller's session for any merchant route (the JSON API, refunds, the dashboard)."""

from __future__ import annotations

import grpc
from aiohttp import web

from paygate.session.v1 import session_pb2
from webhook_gateway.entrypoints.app_keys import CLIENTS
from webhook_gateway.entrypoints.http_errors import raise_for_rpc_error
from webhook_gateway.entrypoints.merchant_auth import AuthenticatedMerchant


async def load_session(
    request: web.Request, merchant: AuthenticatedMerchant, session_id: str
) -> session_pb2.Session:
    """The caller's session, found only in its merchant and its key's mode: another merchant's session and
    one of the other mode are both 404 `not_found`. Every merchant route that names a session loads it here
    (or passes `**merchant.scope` itself)."""
    try:
        return await request.app[CLIENTS].session.GetSession(
            session_pb2.GetSessionRequest(session_id=session_id, **merchant.scope)
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
