"""The customer access portal (contract §3): GET /access?token=<jwt>, server-rendered.

Keeping the token from leaking (it travels in the link):
- the first visit verifies the token with the keys service and trades it for a random portal-session id in a
  short-lived `__Host-` cookie (HttpOnly, Secure, SameSite=Strict), then 303-redirects to the clean /access;
  only the SHA-256 of the cookie value is stored (gateway.portal_sessions);
- every page sends Referrer-Policy: no-referrer, Cache-Control: no-store and a strict CSP (inline style by
  nonce only, no scripts at all); the gateway runs without aiohttp's access log, which would print queries.

SameSite=Strict and mail links: a link clicked in a web mailer is a cross-site navigation, and the browser
keeps the Strict cookie out of the redirected request too. That request carries `Sec-Fetch-Site:
cross-site`; it gets a tiny same-origin page that re-opens /access, and that second, same-site request has
the cookie. A request without a cookie that is not cross-site gets the 401 page (no loop).

Refusals are HTML pages for browsers (Accept: text/html) and `{"error": {"code", "message"}}` for API clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import grpc
import jinja2
from aiohttp import web

from paygate.billing.v1 import billing_pb2
from paygate.keys.v1 import keys_pb2
from paygate_runtime.grpc_errors import error_code
from webhook_gateway.entrypoints.app_keys import CLIENTS, POOL
from webhook_gateway.entrypoints.request_body import format_minor

log = logging.getLogger(__name__)

TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("portal_templates")
COOKIE = "__Host-paygate_access"
PORTAL_SESSION_SECONDS = 30 * 60
MAX_TOKEN_CHARS = 4096
CLEANUP_INTERVAL_S = 600.0
_TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
_STATUS_TEXT = {keys_pb2.KEY_STATUS_EXPIRED: "expired", keys_pb2.KEY_STATUS_REVOKED: "revoked"}
_TITLES = {
    401: "This link is not valid",
    404: "Not found",
    409: "Already revealed",
    503: "Temporarily unavailable",
}


@dataclass(frozen=True)
class PortalSession:
    jti: str
    session_id: str
    merchant_id: str
    csrf_token: str


def _csp(nonce: str) -> str:
    return (
        "default-src 'none'; "
        f"style-src 'nonce-{nonce}'; "
        "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


def _harden(response: web.StreamResponse, nonce: str) -> web.StreamResponse:
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    response.headers["Content-Security-Policy"] = _csp(nonce)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def _render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    nonce = secrets.token_urlsafe(16)
    response = aiohttp_jinja2.render_template(
        f"portal/{template}", request, {"nonce": nonce, **context}, status=status, app_key=TEMPLATES
    )
    _harden(response, nonce)
    return response


def _wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


def _refuse(request: web.Request, status: int, code: str, message: str) -> web.Response:
    if _wants_html(request):
        response = _render(
            request,
            "error.html",
            status=status,
            title=_TITLES.get(status, "Something went wrong"),
            code=code,
            message=message,
        )
    else:
        response = web.json_response({"error": {"code": code, "message": message}}, status=status)
        _harden(response, secrets.token_urlsafe(8))
    if status == 401:
        response.del_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return response


def _hash(session_key: str) -> bytes:
    return hashlib.sha256(session_key.encode("ascii", errors="replace")).digest()


async def _open_session(request: web.Request, claims: keys_pb2.AccessTokenClaims) -> tuple[str, int]:
    session_key = secrets.token_urlsafe(32)
    token_left = int(claims.expires_at.ToDatetime(tzinfo=UTC).timestamp() - datetime.now(UTC).timestamp())
    lifetime = max(1, min(PORTAL_SESSION_SECONDS, token_left))
    await request.app[POOL].execute(
        """INSERT INTO portal_sessions (id_hash, jti, session_id, merchant_id, csrf_token, expires_at)
           VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))""",
        _hash(session_key),
        uuid.UUID(claims.jti),
        uuid.UUID(claims.session_id),
        uuid.UUID(claims.merchant_id),
        secrets.token_urlsafe(32),
        float(lifetime),
    )
    return session_key, lifetime


async def _current_session(request: web.Request) -> PortalSession | None:
    session_key = request.cookies.get(COOKIE)
    if not session_key or len(session_key) > 128:
        return None
    row = await request.app[POOL].fetchrow(
        """SELECT jti, session_id, merchant_id, csrf_token FROM portal_sessions
            WHERE id_hash = $1 AND expires_at > now()""",
        _hash(session_key),
    )
    if row is None:
        return None
    return PortalSession(str(row["jti"]), str(row["session_id"]), str(row["merchant_id"]), row["csrf_token"])


async def _end_session(request: web.Request) -> None:
    session_key = request.cookies.get(COOKIE)
    if session_key and len(session_key) <= 128:
        await request.app[POOL].execute("DELETE FROM portal_sessions WHERE id_hash = $1", _hash(session_key))


async def _still_valid(request: web.Request, portal: PortalSession) -> tuple[int, str, str] | None:
    """None when the session's token still stands; else the refusal. The token itself is not kept, so a
    revocation is checked through the session's access link (which the keys service refuses once revoked)."""
    try:
        link = await request.app[CLIENTS].keys.GetAccessLink(
            keys_pb2.GetAccessLinkRequest(session_id=portal.session_id, merchant_id=portal.merchant_id)
        )
    except grpc.aio.AioRpcError as error:
        if error.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
            return 401, "token_revoked", "this access link was revoked"
        return 503, "upstream_unavailable", "the service is temporarily unavailable; please retry"
    if link.access_token.id != portal.jti:
        return 401, "token_revoked", "this access link was replaced"
    return None


async def _invoice(request: web.Request, portal: PortalSession) -> billing_pb2.Invoice | None:
    try:
        return await request.app[CLIENTS].billing.GetInvoice(
            billing_pb2.GetInvoiceRequest(merchant_id=portal.merchant_id, session_id=portal.session_id)
        )
    except grpc.aio.AioRpcError as error:
        # Billing may lag behind (or be down): the page then says the invoice is being prepared.
        if error.code() != grpc.StatusCode.NOT_FOUND:
            log.info("portal: invoice unavailable", extra={"grpc_code": error.code().name})
        return None


async def _support_email(request: web.Request, portal: PortalSession) -> str | None:
    try:
        profile = await request.app[CLIENTS].billing.GetBillingProfile(
            billing_pb2.GetBillingProfileRequest(merchant_id=portal.merchant_id)
        )
    except grpc.aio.AioRpcError:
        return None
    return profile.support_email or None


async def _customer_key(request: web.Request, portal: PortalSession) -> keys_pb2.ApiKey | None:
    try:
        return await request.app[CLIENTS].keys.GetCustomerKey(
            keys_pb2.GetCustomerKeyRequest(session_id=portal.session_id, merchant_id=portal.merchant_id)
        )
    except grpc.aio.AioRpcError:
        return None


def _invoice_view(invoice: billing_pb2.Invoice | None) -> dict[str, str] | None:
    if invoice is None or not invoice.number:
        return None
    total = invoice.total
    try:
        amount = format_minor(int(total.amount_minor or "0"), total.exponent)
    except ValueError:
        amount = total.amount_minor
    issued = invoice.issued_at.ToDatetime(tzinfo=UTC) if invoice.HasField("issued_at") else None
    return {
        "number": invoice.number,
        "amount": amount,
        "currency": total.currency,
        "date": issued.date().isoformat() if issued else "",
    }


def _key_view(key: keys_pb2.ApiKey | None) -> dict[str, Any] | None:
    if key is None:
        return None
    return {
        "hint": key.hint,
        "revealed": key.revealed,
        "can_reveal": not key.revealed and key.status == keys_pb2.KEY_STATUS_VALID and not key.rolled_from_id,
        "status_text": _STATUS_TEXT.get(key.status, "not available"),
    }


async def _portal_page(
    request: web.Request, portal: PortalSession, *, secret: str | None = None, status: int = 200
) -> web.Response:
    invoice, key, support_email = await asyncio.gather(
        _invoice(request, portal), _customer_key(request, portal), _support_email(request, portal)
    )
    return _render(
        request,
        "portal.html",
        status=status,
        invoice=_invoice_view(invoice),
        key=_key_view(key),
        secret=secret,
        csrf_token=portal.csrf_token,
        support_email=support_email,
    )


async def access(request: web.Request) -> web.Response:
    token = request.query.get("token")
    if token is not None:
        return await _exchange(request, token)
    portal = await _current_session(request)
    if portal is None:
        if request.headers.get("Sec-Fetch-Site") == "cross-site":
            # A cross-site redirect chain (a mail link): the Strict cookie was withheld; re-open from here.
            return _render(request, "continue.html")
        return _refuse(request, 401, "no_portal_session", "your access session has ended")
    refusal = await _still_valid(request, portal)
    if refusal is not None:
        if refusal[0] == 401:
            await _end_session(request)
        return _refuse(request, *refusal)
    return await _portal_page(request, portal)


async def _exchange(request: web.Request, token: str) -> web.Response:
    if not token or len(token) > MAX_TOKEN_CHARS:
        return _refuse(request, 401, "token_invalid", "this access link is not valid")
    try:
        claims = await request.app[CLIENTS].keys.VerifyAccessToken(
            keys_pb2.VerifyAccessTokenRequest(token=token)
        )
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.UNAUTHENTICATED:
            code = error_code(error) or "token_invalid"
            message = (
                "this access link has expired" if code == "token_expired" else "this access link is not valid"
            )
            return _refuse(request, 401, code, message)
        return _refuse(
            request, 503, "upstream_unavailable", "the service is temporarily unavailable; please retry"
        )
    session_key, lifetime = await _open_session(request, claims)
    response = web.Response(status=303, headers={"Location": "/access"})
    response.set_cookie(
        COOKIE, session_key, max_age=lifetime, path="/", secure=True, httponly=True, samesite="Strict"
    )
    _harden(response, secrets.token_urlsafe(8))
    return response


async def reveal(request: web.Request) -> web.Response:
    portal = await _current_session(request)
    if portal is None:
        return _refuse(request, 401, "no_portal_session", "your access session has ended")
    form = await request.post()
    presented = form.get("csrf_token")
    if not isinstance(presented, str) or not hmac.compare_digest(
        presented.encode(), portal.csrf_token.encode()
    ):
        return _refuse(request, 403, "csrf_failed", "the form has expired; reload the page and try again")
    refusal = await _still_valid(request, portal)
    if refusal is not None:
        return _refuse(request, *refusal)
    try:
        revealed = await request.app[CLIENTS].keys.RevealCustomerKey(
            keys_pb2.RevealCustomerKeyRequest(session_id=portal.session_id, access_token_id=portal.jti)
        )
    except grpc.aio.AioRpcError as error:
        code = error_code(error) or "upstream_unavailable"
        if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
            message = {
                "already_revealed": "your API key was already revealed and cannot be shown again",
            }.get(code, "your API key cannot be revealed; please contact support")
            return _refuse(request, 409, code, message)
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return _refuse(request, 404, "not_found", "your API key is not ready yet")
        return _refuse(
            request, 503, "upstream_unavailable", "the service is temporarily unavailable; please retry"
        )
    if not _wants_html(request):
        response = web.json_response({"key_id": revealed.key.id, "secret": revealed.secret})
        _harden(response, secrets.token_urlsafe(8))
        return response
    return await _portal_page(request, portal, secret=revealed.secret)


async def receipt(request: web.Request) -> web.Response:
    portal = await _current_session(request)
    if portal is None:
        return _refuse(request, 401, "no_portal_session", "your access session has ended")
    refusal = await _still_valid(request, portal)
    if refusal is not None:
        return _refuse(request, *refusal)
    invoice = await _invoice(request, portal)
    if invoice is None:
        return _refuse(request, 404, "invoice_not_ready", "your invoice is not ready yet")
    try:
        document = await request.app[CLIENTS].billing.RenderInvoice(
            billing_pb2.RenderInvoiceRequest(
                merchant_id=portal.merchant_id, invoice_id=invoice.id, format=billing_pb2.RENDER_FORMAT_PDF
            )
        )
    except grpc.aio.AioRpcError:
        return _refuse(request, 503, "upstream_unavailable", "the receipt is temporarily unavailable")
    filename = "".join(c for c in (document.filename or f"{invoice.number}.pdf") if c.isalnum() or c in "-_.")
    response = web.Response(
        body=document.content,
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename or "receipt.pdf"}"'},
    )
    _harden(response, secrets.token_urlsafe(8))
    return response


def background(app: web.Application) -> list[Any]:
    async def remove_expired_sessions() -> None:
        while True:
            await asyncio.sleep(CLEANUP_INTERVAL_S)
            with contextlib.suppress(Exception):
                await app[POOL].execute(
                    "DELETE FROM portal_sessions WHERE expires_at < now() - $1::interval", timedelta(hours=1)
                )

    return [remove_expired_sessions]


def setup(app: web.Application) -> None:
    # Our own template environment under our own app key, so other areas may set up aiohttp-jinja2 too.
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(_TEMPLATE_DIR)),
        app_key=TEMPLATES,
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        default_helpers=False,
    )
    app.router.add_get("/access", access)
    app.router.add_post("/access/reveal", reveal)
    app.router.add_get("/access/receipt.pdf", receipt)
