"""`GET /openapi.json`: the OpenAPI 3.1 document of the gateway's API (see openapi_document)."""

from __future__ import annotations

from aiohttp import web

from webhook_gateway.entrypoints.app_keys import CONFIG
from webhook_gateway.entrypoints.openapi_document import document_bytes


def _server_url(request: web.Request) -> str:
    """The gateway's public base URL (PAYGATE_PUBLIC_URL, the one its own links use) as the document's server,
    so a client generated from it calls the gateway there, not wherever the document was fetched from (a
    proxy's inside address); "/" when the app has no configuration (an app built for a test)."""
    config = request.app.get(CONFIG)
    return config.public_url if config is not None and config.public_url else "/"


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(
        body=document_bytes(_server_url(request)),
        content_type="application/json",
        headers={"Cache-Control": "public, max-age=300"},
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/openapi.json", openapi_json)
