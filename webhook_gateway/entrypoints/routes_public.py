"""Unauthenticated routes: the public session status and the favicon of the customer pages."""

from __future__ import annotations

import grpc
from aiohttp import web

from paygate.session.v1 import session_pb2
from paygate_runtime.api_objects import public_status
from webhook_gateway.entrypoints.app_keys import CLIENTS
from webhook_gateway.entrypoints.browser_session import TEMPLATE_DIR
from webhook_gateway.entrypoints.http_errors import raise_for_rpc_error

# The paygate mark: the dashboard's own icon file, read once. The portal and checkout pages link /favicon.svg;
# browsers still ask every host for /favicon.ico, which answers the same icon, so no visit leaves a 404 in the
# log. Cached for 30 days (the URL carries no version: a new icon reaches a browser within that).
FAVICON_SVG = (TEMPLATE_DIR / "dashboard" / "static" / "favicon.svg").read_bytes()
FAVICON_CACHE = "public, max-age=2592000"


async def session_status(request: web.Request) -> web.Response:
    try:
        session = await request.app[CLIENTS].session.GetSession(
            session_pb2.GetSessionRequest(session_id=request.match_info["id"])
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    return web.json_response(public_status(session), headers={"Cache-Control": "no-store"})


async def favicon(request: web.Request) -> web.Response:
    return web.Response(
        body=FAVICON_SVG,
        content_type="image/svg+xml",
        headers={
            "Cache-Control": FAVICON_CACHE,
            "X-Content-Type-Options": "nosniff",
            # An SVG opened on its own is a document: let it run nothing and load nothing.
            "Content-Security-Policy": "default-src 'none'",
        },
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/session/{id}/status", session_status)
    app.router.add_get("/favicon.svg", favicon)
    app.router.add_get("/favicon.ico", favicon)
