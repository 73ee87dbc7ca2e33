"""The browser-session mechanics shared by the two server-rendered areas, the merchant dashboard
(routes_dashboard) and the customer access portal (routes_portal): their session cookie, the CSRF token
check of their forms, the headers every page carries, their template environment and the periodic removal
of dead sessions; and the origin check of a POST, which the checkout page's form uses too. What differs
between them (their CSP, the portal's stricter origin rule, how a refusal looks) stays with each.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
CSRF_FIELD = "csrf_token"


def set_session_cookie(
    response: web.StreamResponse, name: str, value: str, *, max_age: int, secure: bool
) -> None:
    """The session id: never readable by scripts, never sent along with another site's request."""
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=secure, httponly=True, samesite="Strict"
    )


def clear_session_cookie(response: web.StreamResponse, name: str, *, secure: bool) -> None:
    response.del_cookie(name, path="/", secure=secure, httponly=True, samesite="Strict")


def csrf_matches(form: Mapping[str, Any], expected: str) -> bool:
    """The form's CSRF token is the session's, compared in constant time; a missing or non-text one is not."""
    presented = form.get(CSRF_FIELD)
    return isinstance(presented, str) and hmac.compare_digest(presented.encode(), expected.encode())


def same_origin(request: web.Request, public_url: str) -> bool:
    """A state-changing request must come from a page of ours. Sec-Fetch-Site decides where the browser sends
    it (every current browser does, to a secure context such as https or loopback). Without it, Origin must be
    ours when present: the address the request reached or the configured public URL. Our pages set
    Referrer-Policy: no-referrer, which makes a browser send `Origin: null` on our own forms, so "null" alone
    proves nothing either way and is refused only when Sec-Fetch-Site is missing too."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if origin == "null":
        return False
    own = {f"{request.scheme}://{request.host}".lower()}
    public = urlsplit(public_url)
    if public.scheme and public.netloc:
        own.add(f"{public.scheme}://{public.netloc}".lower())
    return origin.lower() in own


def harden(response: web.StreamResponse, csp: str) -> web.StreamResponse:
    """The headers of every page and redirect: the area's CSP, no referrer (the portal's URL may carry a
    token), no MIME sniffing, no framing."""
    response.headers["Content-Security-Policy"] = csp
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def setup_templates(app: web.Application, app_key: web.AppKey[jinja2.Environment]) -> None:
    # Each area has its own environment under its own app key, so other areas may set up aiohttp-jinja2 too.
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        app_key=app_key,
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        default_helpers=False,
    )


def every(interval_s: float, action: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
    """A background task running `action` every `interval_s` seconds for ever; a failed run (the database
    away for a moment) is skipped, the next one tries again."""

    async def run() -> None:
        while True:
            await asyncio.sleep(interval_s)
            with contextlib.suppress(Exception):
                await action()

    return run
