"""Unauthenticated routes: the public session status."""

from __future__ import annotations

import grpc
from aiohttp import web

from paygate.session.v1 import session_pb2
from paygate_runtime.api_objects import public_status
from webhook_gateway.entrypoints.app_keys import CLIENTS
from webhook_gateway.entrypoints.http_errors import raise_for_rpc_error


async def session_status(request: web.Request) -> web.Response:
    try:
        session = await request.app[CLIENTS].session.GetSession(
            session_pb2.GetSessionRequest(session_id=request.match_info["id"])
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    return web.json_response(public_status(session), headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    app.router.add_get("/session/{id}/status", session_status)
