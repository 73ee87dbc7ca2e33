"""Merchant API for a session's customer access links (contract §6a, "Access links can be revoked").

- DELETE /v1/sessions/{id}/access   revoke every access link of the session. The portal answers 401 from then
                                    on, for the link and for a portal cookie already exchanged for it (the
                                    portal checks its token with the keys service on every request), and
                                    `access_url` is null until a reissue. Replies with the session.
- POST /v1/sessions/{id}/access     revoke whatever link still stands and issue a fresh 7-day one (same
                                    customer); the session with the new link in `access_url` (201).

The session is loaded through the session service scoped to the caller's merchant and mode, so another
merchant's session, one of the other mode and an unknown id are all 404 `not_found`; the keys service scopes
the tokens the same way. Only a paid session whose fulfilment issued a link has links: otherwise 409
(`session_not_paid`, `session_not_fulfilled`), and nothing is changed.
"""

from __future__ import annotations

from aiohttp import web

from paygate_runtime.api_objects import session_detail
from webhook_gateway.entrypoints.merchant_auth import authenticate
from webhook_gateway.entrypoints.session_access_links import (
    reissue_session_link,
    revoke_session_links,
)

_NO_STORE = {"Cache-Control": "no-store"}


async def revoke_access(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    session, revoked = await revoke_session_links(request, merchant, merchant.api_actor)
    body = session_detail(session, None)
    body["access_links_revoked"] = revoked
    return web.json_response(body, headers=_NO_STORE)


async def reissue_access(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    session, url = await reissue_session_link(request, merchant, merchant.api_actor)
    return web.json_response(session_detail(session, url), status=201, headers=_NO_STORE)


def setup(app: web.Application) -> None:
    app.router.add_delete("/v1/sessions/{id}/access", revoke_access)
    app.router.add_post("/v1/sessions/{id}/access", reissue_access)
