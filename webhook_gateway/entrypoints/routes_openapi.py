"""`GET /openapi.json`: the OpenAPI 3.1 document of the gateway's API (see openapi_document)."""

from __future__ import annotations

from aiohttp import web

from webhook_gateway.entrypoints.openapi_document import document_bytes


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(
        body=document_bytes(),
        content_type="application/json",
        headers={"Cache-Control": "public, max-age=300"},
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/openapi.json", openapi_json)
