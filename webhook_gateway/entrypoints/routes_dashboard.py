"""The merchant dashboard (contract §10): server-rendered HTML at /dashboard.

Sign-in and the session
- `POST /dashboard/sign-in` takes a merchant secret key, checks it with the keys service (AuthenticateMerchant,
  exactly as the JSON API does) and trades it for a random session id in an HttpOnly, SameSite=Strict cookie
  (`__Host-` and Secure when PAYGATE_PUBLIC_URL is https). The key itself is never stored, in the browser or
  here: the table keeps the SHA-256 of the cookie value and the merchant key's id.
- Every request re-reads that key's status from the keys service (which caches nothing for merchant keys), so
  a session ends on its first request after the key is revoked or expires: well within a second.
- Idle timeout IDLE_TIMEOUT, absolute lifetime SESSION_LIFETIME; failed sign-ins are rate limited per client.
- The session is one mode, the key's. The mode is on every page; switching mode means signing in with a key
  of that mode (the sign-in form refuses a key of the other mode when a switch was asked for).

Requests
- Every POST must come from our own origin (Origin / Sec-Fetch-Site) and carry the session's CSRF token.
- Every page: a strict Content-Security-Policy (scripts and styles from our own files only, nothing inline),
  Referrer-Policy: no-referrer, Cache-Control: no-store, no framing.
- Every action calls the same RPCs, or the same shared functions, as the JSON route that does it, and names
  its actor `dashboard:merchant_key:<id>` wherever the service audits one (keys, access links, customer-key
  roll and revoke, quarantine resolve, invoice void, refunds), where the JSON API names `merchant_key:<id>`.
- Refund (a session's page -> confirm -> refund_requests.request_refund, the writer of POST
  /v1/sessions/{id}/refund): the form's nonce is the refund's Idempotency-Key, kept by the session service with
  the refund itself, so the same form again answers "already submitted". What is offered: dashboard_refunds.
  A web3 session's page offers "Record a refund you sent" instead, posted to the same route: its tx, checked
  on chain by the same writer, without a confirm page (it records money the merchant already sent).
- An action that must not run twice (all but enabling or disabling an endpoint and revoking a key) carries a
  one-time nonce (`idempotency_key`): the same form sent again, by a reload or a double click, runs nothing
  and answers "already submitted", never showing a secret twice. A refusal is shown on the page the action came from, in
  the service's words (escaped) with its code; it is never carried in a URL.
- Failed sign-ins are counted per client: the TCP peer, or behind PAYGATE_TRUSTED_PROXIES the right-most
  untrusted X-Forwarded-For hop (client_address).
- Lists are filtered by the services (the session list's provider, email, date and amount filters in SQL).

Reading needs no JavaScript (the revenue chart is SVG drawn here); the one script adds copy buttons.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import aiohttp_jinja2
import grpc
import jinja2
from aiohttp import web

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate.session.v1 import merchant_events_pb2 as pb
from paygate.session.v1 import session_pb2
from paygate_runtime.api_objects import STATUS_BY_NAME, refund_json, session_detail, session_summary
from paygate_runtime.money import BUILTIN_CURRENCIES
from paygate_runtime.proto_convert import mode_label, optional_datetime, timestamp, to_datetime
from paygate_runtime.refund_failures import failure_wording
from webhook_gateway.adapters.dashboard_sessions import DashboardSession
from webhook_gateway.adapters.inbox_repository import INBOX_PROVIDERS, InboxEvent
from webhook_gateway.adapters.inbox_repository import STATUSES as EVENT_STATUSES
from webhook_gateway.entrypoints import browser_session
from webhook_gateway.entrypoints import dashboard_refunds as refunds_ui
from webhook_gateway.entrypoints import dashboard_views as views
from webhook_gateway.entrypoints.app_keys import (
    ADDRESSES,
    CLIENTS,
    CONFIG,
    DASHBOARD_SESSIONS,
    DEPOSITS,
    IDEMPOTENCY,
    INBOX,
)
from webhook_gateway.entrypoints.client_address import client_key
from webhook_gateway.entrypoints.deposit_objects import deposit_json
from webhook_gateway.entrypoints.event_replays import replay_owned_event
from webhook_gateway.entrypoints.http_errors import NOT_FOUND_PAGES, ApiError
from webhook_gateway.entrypoints.merchant_auth import AuthenticatedMerchant
from webhook_gateway.entrypoints.merchant_requests import (
    MAX_GRACE_PERIOD_SECONDS,
    create_endpoint_request,
    endpoint_ref,
    merchant_events_stub,
    redeliver_request,
    roll_secret_request,
)
from webhook_gateway.entrypoints.refund_requests import provider_api, request_refund
from webhook_gateway.entrypoints.request_body import body_fingerprint, canonical_uuid, read_form
from webhook_gateway.entrypoints.rpc_refusals import refusal_for
from webhook_gateway.entrypoints.session_access_links import reissue_session_link, revoke_session_links
from webhook_gateway.entrypoints.session_lookup import load_session

log = logging.getLogger(__name__)

TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("dashboard_templates")
# A refusal shown on the page this request renders (never carried in a URL: the text is the service's).
REFUSAL: web.RequestKey[str] = web.RequestKey("dashboard_refusal", str)
# What the merchant typed into "Record a refund you sent", shown again on the page that refuses it (a tx without
# its confirmations yet is sent again a minute later, not pasted again).
CHAIN_REFUND_TYPED: web.RequestKey[dict[str, str]] = web.RequestKey("dashboard_chain_refund_typed", dict)

IDLE_TIMEOUT = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
SIGN_IN_WINDOW = timedelta(minutes=15)
SIGN_IN_MAX_FAILURES = 10
CLEANUP_INTERVAL_S = 600.0
PAGE_SIZE = 25
_MAX_KEY_CHARS = 200
_MAX_NOTE = 1000
_STATIC_DIR = browser_session.TEMPLATE_DIR / "dashboard" / "static"
_STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
_GRACE_CHOICES = (
    (0, "Old key ends now"),
    (3600, "Old key: 1 more hour"),
    (86_400, "Old key: 24 more hours"),
    (MAX_GRACE_PERIOD_SECONDS, "Old key: 7 more days"),
)
# How long a rolled webhook secret keeps signing beside the new one: 24 h (the API's default) is preselected,
# and 0 retires a leaked secret at once.
_OVERLAP_CHOICES = (
    (3600, "Old secret: 1 more hour"),
    (86_400, "Old secret: 24 more hours"),
    (7 * 86_400, "Old secret: 7 more days"),
    (0, "Old secret: stops now"),
)
_DEFAULT_OVERLAP = 86_400
_DECISIONS = {
    "accepted": session_pb2.QUARANTINE_DECISION_ACCEPTED,
    "refunded": session_pb2.QUARANTINE_DECISION_REFUNDED,
    "dismissed": session_pb2.QUARANTINE_DECISION_DISMISSED,
}
_NOTICES = {
    "signed_out": "You are signed out.",
    "ended_key": "Your session ended because the secret key you signed in with no longer works.",
    "ended": "Your session has ended. Please sign in again.",
    "key_revoked": "The customer key was revoked. It stops working at once.",
    "merchant_key_revoked": "The secret key was revoked. It stops working at once.",
    "quarantine_resolved": "The quarantine entry was resolved.",
    "event_replayed": "The event was replayed.",
    "links_revoked": "Every access link of this session was revoked: the customer's link no longer works.",
    "link_reissued": "A new 7-day access link was issued. Nothing was mailed: copy it below and pass it on to "
    "the customer. Every earlier link, the one in the customer's mail too, no longer works.",
    "invoice_voided": "The invoice was voided and a credit note issued.",
    "refund_recorded": "The refund was recorded as made elsewhere; its credit note is issued. paygate moved no money.",
    "refund_requested": "The refund was sent to the provider: it is pending until the provider confirms it.",
    "refund_failed": "The provider refused the refund: nothing was refunded (see the refund below).",
    "endpoint_enabled": "The endpoint is enabled: events are delivered to it again.",
    "endpoint_disabled": "The endpoint is disabled: nothing is delivered to it until you enable it.",
    "endpoint_deleted": "The endpoint was deleted; its pending deliveries are cancelled, its log stays.",
    "event_redelivered": "The event is queued for delivery again, due now.",
}
_ERRORS = {
    "not_found": "That object no longer exists in this mode.",
    "last_key": "This is the last active secret key of this mode: create another one before revoking it.",
    "event_already_final": "This event already has a final outcome; there is nothing to replay.",
    "event_in_progress": "This event is being applied right now. Try again in a moment.",
    "session_not_fulfilled": "This session has no access link yet (fulfilment is still running).",
    "session_not_paid": "Only a paid session has an access link.",
    "unavailable": "A paygate service is unavailable right now. Try again in a moment.",
    "csrf_failed": "The form had expired. Please try again.",
    "already_done": "That form was already submitted; its new secret was shown on the first submit only.",
    "already_submitted": "That form was already submitted, so it was not run again.",
    "invalid_url": "That URL cannot receive events: a live endpoint needs https:// to a public address, and "
    "a test endpoint may use http:// on this machine only where the operator allows it.",
    "invalid_events": "Choose the events to send, or none for all events.",
    "invalid_description": "The description is too long (500 characters at most).",
    "invalid_expires_in": "Choose how long the old secret keeps signing.",
    "invalid_endpoint": "Choose the endpoint to send the event to.",
    "invalid_decision": "Choose a decision.",
    "invalid_note": "The note is too long (1000 characters at most).",
    "invalid_status": "Choose whether the endpoint is enabled or disabled.",
    "endpoint_disabled": "That endpoint is disabled: enable it first, then send the event again.",
}
_KEY_STATUS = {
    keys_pb2.KEY_STATUS_VALID: "active",
    keys_pb2.KEY_STATUS_EXPIRED: "expired",
    keys_pb2.KEY_STATUS_REVOKED: "revoked",
    keys_pb2.KEY_STATUS_SUSPENDED: "suspended",
}
_MERCHANT_KEY_STATUS = {
    keys_pb2.MERCHANT_KEY_STATUS_ACTIVE: "active",
    keys_pb2.MERCHANT_KEY_STATUS_EXPIRING: "expiring",
    keys_pb2.MERCHANT_KEY_STATUS_REVOKED: "revoked",
    keys_pb2.MERCHANT_KEY_STATUS_EXPIRED: "expired",
}
_INTERVALS = {
    "day": billing_pb2.INTERVAL_DAY,
    "week": billing_pb2.INTERVAL_WEEK,
    "month": billing_pb2.INTERVAL_MONTH,
}
NAV = (
    ("overview", "Overview", "/dashboard"),
    ("sessions", "Sessions", "/dashboard/sessions"),
    ("revenue", "Revenue", "/dashboard/revenue"),
    ("invoices", "Invoices", "/dashboard/invoices"),
    ("keys", "Keys", "/dashboard/keys"),
    ("quarantine", "Quarantine", "/dashboard/quarantine"),
    ("events", "Events", "/dashboard/events"),
    ("webhooks", "Webhooks", "/dashboard/webhooks"),
)


class Refused(Exception):
    """Ends a dashboard request with a redirect or a page; raised from the session and CSRF checks."""

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__("refused")
        self.response = response


@dataclass(frozen=True)
class Ctx:
    """The signed-in merchant of one request."""

    session: DashboardSession
    cookie: str

    @property
    def merchant(self) -> AuthenticatedMerchant:
        return AuthenticatedMerchant(
            merchant_id=self.session.merchant_id,
            name=self.session.merchant_name,
            mode=common_pb2.MODE_LIVE if self.session.mode == "live" else common_pb2.MODE_TEST,
            key_prefix="",
            key_id=self.session.merchant_key_id,
        )

    @property
    def actor(self) -> str:
        return f"dashboard:merchant_key:{self.session.merchant_key_id}"


# --- response hardening and rendering ----------------------------------------------------------------------

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


_R = TypeVar("_R", bound=web.StreamResponse)


def _harden(response: _R) -> _R:
    browser_session.harden(response, _CSP)
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    return response


def _render(
    request: web.Request, template: str, ctx: Ctx | None, *, status: int = 200, **context: Any
) -> web.Response:
    base: dict[str, Any] = {"nav": NAV, "ctx": ctx, "notice": None, "error": None}
    if ctx is not None:
        base.update(
            merchant_name=ctx.session.merchant_name,
            mode=ctx.session.mode,
            other_mode="live" if ctx.session.mode == "test" else "test",
            csrf_token=ctx.session.csrf_token,
        )
        notice = views.safe_code(request.query.get("notice"))
        error = views.safe_code(request.query.get("error"))
        base["notice"] = _NOTICES.get(notice or "")
        if error:
            base["error"] = _ERRORS.get(error, f"The action was refused ({error}).")
        if REFUSAL in request:
            base["error"] = request[REFUSAL]
    base.update(context)
    response = aiohttp_jinja2.render_template(
        f"dashboard/{template}", request, base, status=status, app_key=TEMPLATES
    )
    return _harden(response)


def _redirect(location: str) -> web.Response:
    return _harden(web.Response(status=303, headers={"Location": location}))


def _back(path: str, **params: str) -> web.Response:
    query = urlencode({k: v for k, v in params.items() if v})
    return _redirect(f"{path}?{query}" if query else path)


def _secure(request: web.Request) -> bool:
    return request.app[CONFIG].public_url.startswith("https://")


def _cookie_name(request: web.Request) -> str:
    # The __Host- prefix needs Secure; on a plain-http deployment (a developer's machine) the cookie is
    # still HttpOnly and SameSite=Strict, without the prefix.
    return "__Host-paygate_dashboard" if _secure(request) else "paygate_dashboard"


def _set_cookie(request: web.Request, response: web.StreamResponse, value: str) -> None:
    browser_session.set_session_cookie(
        response,
        _cookie_name(request),
        value,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        secure=_secure(request),
    )


def _clear_cookie(request: web.Request, response: web.StreamResponse) -> None:
    browser_session.clear_session_cookie(response, _cookie_name(request), secure=_secure(request))


def _client(request: web.Request) -> str:
    # The peer address, or behind PAYGATE_TRUSTED_PROXIES the right-most untrusted X-Forwarded-For hop: a
    # client's own X-Forwarded-For never chooses its rate-limit bucket.
    return client_key(
        request.remote, request.headers.getall("X-Forwarded-For", []), request.app[CONFIG].trusted_proxies
    )


# --- session, key check, CSRF ------------------------------------------------------------------------------


async def _key_still_works(request: web.Request, session: DashboardSession) -> bool:
    """The merchant key behind the session is active (or within its roll grace period) right now. The keys
    service reads merchant keys without a cache, so this sees a revocation at once."""
    mode = common_pb2.MODE_LIVE if session.mode == "live" else common_pb2.MODE_TEST
    cursor = ""
    for _ in range(20):
        reply = await request.app[CLIENTS].keys.ListMerchantKeys(
            keys_pb2.ListMerchantKeysRequest(
                merchant_id=session.merchant_id, mode=mode, limit=100, starting_after=cursor
            )
        )
        for key in reply.keys:
            if key.id == session.merchant_key_id:
                if key.status not in (
                    keys_pb2.MERCHANT_KEY_STATUS_ACTIVE,
                    keys_pb2.MERCHANT_KEY_STATUS_EXPIRING,
                ):
                    return False
                if key.HasField("expires_at"):
                    return to_datetime(key.expires_at) > datetime.now(UTC)
                return True
        if not reply.has_more or not reply.keys:
            return False
        cursor = reply.keys[-1].id
    return False


async def _signed_in(request: web.Request) -> Ctx:
    cookie = request.cookies.get(_cookie_name(request), "")
    store = request.app[DASHBOARD_SESSIONS]
    session = await store.touch(cookie, IDLE_TIMEOUT)
    if session is None:
        raise Refused(_ended(request, "ended" if cookie else ""))
    try:
        works = await _key_still_works(request, session)
    except grpc.aio.AioRpcError as error:
        log.warning("dashboard: key check failed", extra={"grpc_code": error.code().name})
        raise Refused(_unavailable(request)) from None
    if not works:
        await store.close(cookie)
        raise Refused(_ended(request, "ended_key"))
    return Ctx(session=session, cookie=cookie)


def _ended(request: web.Request, notice: str) -> web.Response:
    if request.method == "GET" and "text/html" not in request.headers.get("Accept", "text/html"):
        response = _harden(
            web.json_response(
                {"error": {"code": "unauthenticated", "message": "sign in to the dashboard"}}, status=401
            )
        )
    else:
        response = _back("/dashboard/sign-in", notice=notice)
    if notice:
        _clear_cookie(request, response)
    return response


def _unavailable(request: web.Request, ctx: Ctx | None = None) -> web.Response:
    return _render(
        request,
        "message.html",
        ctx,
        status=503,
        title="Temporarily unavailable",
        message="A paygate service is unavailable right now. Please try again in a moment.",
    )


def _not_found(request: web.Request, ctx: Ctx | None) -> web.Response:
    return _render(
        request,
        "message.html",
        ctx,
        status=404,
        title="Not found",
        message=f"There is nothing here in {ctx.session.mode if ctx else 'this'} mode. "
        "It may belong to the other mode, or it never existed.",
    )


async def _no_such_page(request: web.Request) -> web.Response:
    """An address under /dashboard/ that no route serves: a 404 page for a person, in the dashboard's layout
    when signed in (the bare one otherwise), with the way back. The API's unknown paths stay JSON."""
    ctx: Ctx | None = None
    if request.cookies.get(_cookie_name(request)):
        try:
            ctx = await _signed_in(request)
        except Refused:
            ctx = None  # ended or never valid: the bare page; the next dashboard page asks to sign in
        except grpc.aio.AioRpcError:
            ctx = None
    return _render(
        request,
        "message.html",
        ctx,
        status=404,
        title="Page not found",
        message="There is no dashboard page at this address. Check the address, or go back to the dashboard.",
    )


def _same_origin(request: web.Request) -> bool:
    # The CSRF token is checked on top of this, and the cookie is SameSite=Strict.
    return browser_session.same_origin(request, request.app[CONFIG].public_url)


def _refused_form(request: web.Request, status: int, title: str, message: str) -> web.Response:
    return _render(request, "message.html", None, status=status, title=title, message=message)


def _forbidden(request: web.Request) -> web.Response:
    return _refused_form(
        request,
        403,
        "Request refused",
        "This form did not come from your dashboard, or it expired. Go back, reload and try again.",
    )


def _unreadable_form(request: web.Request) -> web.Response:
    return _refused_form(
        request, 400, "Form not readable", "This form could not be read. Go back, reload and try again."
    )


async def _form(request: web.Request, ctx: Ctx) -> Any:
    """The POSTed form, after the origin and CSRF checks."""
    if not _same_origin(request):
        raise Refused(_forbidden(request))
    form = await read_form(request)
    if form is None:
        raise Refused(_unreadable_form(request))
    if not browser_session.csrf_matches(form, ctx.session.csrf_token):
        raise Refused(_forbidden(request))
    return form


Handler = Callable[[web.Request, Ctx], Awaitable[web.StreamResponse]]


def _page(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A signed-in page or action: refusals become redirects or pages, service refusals a message."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        ctx: Ctx | None = None
        try:
            ctx = await _signed_in(request)
            return await handler(request, ctx)
        except Refused as refused:
            return refused.response
        except ApiError as error:
            if error.status_code in (400, 404):
                return _not_found(request, ctx)
            if error.status_code >= 500:
                return _unavailable(request, ctx)
            return _render(
                request,
                "message.html",
                ctx,
                status=error.status_code,
                title="Refused",
                message=_refusal_text(error.code, _api_message(error)),
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return _not_found(request, ctx)
            log.warning("dashboard: upstream failed", extra={"grpc_code": error.code().name})
            return _unavailable(request, ctx)

    return wrapped


def _api_message(error: ApiError) -> str:
    """The readable message of an ApiError (its JSON body's `error.message`)."""
    try:
        message = json.loads(error.text or "")["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return ""
    return message if isinstance(message, str) else ""


def _refusal_text(code: str, message: str) -> str:
    return views.refusal_text(code, message, _ERRORS)


async def _refused(
    request: web.Request, ctx: Ctx, page: Handler, status: int, code: str, message: str
) -> web.StreamResponse:
    """The page the action came from, rendered now with the refusal: nothing changed, so a reload may
    send the form again (its nonce was released) and gets the same answer."""
    request[REFUSAL] = _refusal_text(code, message)
    response = await page(request, ctx)
    response.set_status(status)
    return response


# A form nonce (form_nonce() below): anything else in the field is not one of ours and protects nothing.
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def _form_nonce(form: Any) -> str:
    nonce = _idempotency_key(form)
    return nonce if _NONCE.fullmatch(nonce) else ""


@dataclass(frozen=True)
class _FormClaim:
    """One submission of a form, claimed by its nonce in the gateway's Idempotency-Key store (the one
    `POST /v1/sessions` uses), for an action whose service keeps no idempotency key of its own."""

    request: web.Request
    ctx: Ctx
    key: str

    async def done(self) -> None:
        if self.key:
            store = self.request.app[IDEMPOTENCY]
            await store.complete(self.ctx.session.merchant_id, self.ctx.session.mode, self.key, 303, b"")

    async def release(self) -> None:
        """Nothing was done (a refusal, a failure): the same form may be sent again."""
        if self.key:
            store = self.request.app[IDEMPOTENCY]
            await store.release(self.ctx.session.merchant_id, self.ctx.session.mode, self.key)


async def _claim_form(
    request: web.Request, ctx: Ctx, form: Any, back: str, already: str = "already_submitted"
) -> _FormClaim:
    """The first submission of this form, or Refused with the "already submitted" answer: a reload that
    re-posts it or a double click never runs the action twice. The nonce is the `idempotency_key` field
    that form_nonce() puts in the form, as the Keys forms send it to the keys service."""
    nonce = _form_nonce(form)
    if not nonce:
        return _FormClaim(request, ctx, "")
    key = f"dashboard:{nonce}"
    earlier = await request.app[IDEMPOTENCY].claim(
        ctx.session.merchant_id, ctx.session.mode, key, f"dashboard {request.method} {request.path}"
    )
    if earlier is not None:
        raise Refused(_back(back, error=already))
    return _FormClaim(request, ctx, key)


async def _act(
    request: web.Request,
    ctx: Ctx,
    form: Any,
    back: str,
    page: Handler,
    run: Callable[[], Awaitable[Any]],
    notice: str,
) -> web.StreamResponse:
    """Run an action once per form: redirect back with a notice; a refusal is shown on `page` (the page
    of `back`) with the service's message and code; a second submission of the form answers "already
    submitted" and runs nothing."""
    claim = await _claim_form(request, ctx, form, back)
    try:
        await run()
    except ApiError as error:
        await claim.release()
        if error.status_code >= 500:
            raise
        return await _refused(request, ctx, page, error.status_code, error.code, _api_message(error))
    except grpc.aio.AioRpcError as error:
        await claim.release()
        refusal = refusal_for(error)
        if refusal.unavailable:
            raise
        return await _refused(request, ctx, page, refusal.status, refusal.code, refusal.message)
    except BaseException:
        await claim.release()
        raise
    await claim.done()
    return _back(back, notice=notice)


# --- helpers over protos ----------------------------------------------------------------------------------


def _money(money: common_pb2.Money) -> str:
    if not money.amount_minor:
        return ""
    try:
        return views.money_text(int(money.amount_minor), money.exponent, money.currency)
    except ValueError:
        return f"{money.amount_minor} {money.currency}"


def _session_row(session: session_pb2.Session) -> dict[str, Any]:
    summary = session_summary(session)
    return {
        **summary,
        "amount_text": f"{summary['amount']} {summary['currency']}",
        "created": views.when_text(optional_datetime(session, "created_at")),
        "short_id": session.id[:8],
    }


def _refund_row(refund: session_pb2.Refund) -> dict[str, Any]:
    """A refund of the session page: the fields `refund_json` gives the merchant API (GET /v1/sessions/{id}),
    with its amounts written in the currency's exponent from integer minor units."""
    shown = refund_json(refund)
    return {
        "id": shown["id"],
        "amount": _money(refund.amount),
        "status": shown["status"],
        "origin": shown["origin"],
        "reason": shown["reason"] or "",
        "provider_refund_id": shown["provider_refund_id"] or "",
        "created": views.when_text(optional_datetime(refund, "created_at")),
        "credit_note_number": shown["credit_note_number"] or "",
        "credited": _money(refund.credited),
        "credit_note_skipped": (shown["credit_note_skipped"] or "").replace("_", " "),
        # A failed refund: the provider's reason, and a sentence for it (an unlisted code is shown as is).
        "failure_reason": shown["failure_reason"] or "",
        "failure_text": failure_wording(shown["failure_reason"]) if shown["failure_reason"] else "",
        # paygate's own pending record, canceled because the provider recorded the same refund first.
        "replaced_by": shown["replaced_by"] or "",
    }


def _bucket(b: billing_pb2.RevenueBucket) -> views.Bucket:
    return views.Bucket(
        period_start=to_datetime(b.period_start),
        currency=b.currency,
        exponent=b.net.exponent,
        invoice_count=b.invoice_count,
        invoice_total_minor=int(b.invoice_total.amount_minor or 0),
        credit_note_count=b.credit_note_count,
        credit_note_total_minor=int(b.credit_note_total.amount_minor or 0),
        net_minor=int(b.net.amount_minor or 0),
    )


async def _revenue(
    request: web.Request, ctx: Ctx, start: datetime, end: datetime, interval: str
) -> list[views.Bucket]:
    """The same RevenueSummary call that `GET /v1/revenue` makes, in the session's merchant and mode."""
    summary = billing_pb2.RevenueSummaryRequest(
        **ctx.merchant.scope, to=timestamp(end), interval=_INTERVALS[interval]
    )
    getattr(summary, "from").CopyFrom(timestamp(start))  # `from` is a Python keyword
    reply = await request.app[CLIENTS].billing.RevenueSummary(summary)
    return [_bucket(b) for b in reply.buckets]


def _event_row(event: InboxEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "provider": event.provider,
        "event_id": event.event_id,
        "type": event.event_type,
        "status": event.status,
        "outcome": event.outcome or "",
        "session_id": event.session_id,
        "attempts": event.attempts,
        "last_error": (event.last_error or "")[:200],
        "received": views.when_text(event.received_at),
        "final": event.is_final,
    }


# --- sign-in, sign-out -------------------------------------------------------------------------------------


async def sign_in_page(request: web.Request) -> web.StreamResponse:
    mode = request.query.get("mode", "")
    notice = views.safe_code(request.query.get("notice"))
    return _render(
        request,
        "sign_in.html",
        None,
        switch_mode=mode if mode in ("test", "live") else "",
        notice=_NOTICES.get(notice or ""),
    )


async def sign_in(request: web.Request) -> web.StreamResponse:
    if not _same_origin(request):
        return _forbidden(request)
    store = request.app[DASHBOARD_SESSIONS]
    client = _client(request)
    form = await read_form(request)
    if form is None:
        return _unreadable_form(request)
    switch_mode = form.get("mode", "")
    switch_mode = switch_mode if switch_mode in ("test", "live") else ""

    def again(status: int, message: str) -> web.Response:
        return _render(request, "sign_in.html", None, status=status, error=message, switch_mode=switch_mode)

    # The attempt counts as a failure from here on; what turns out not to be a wrong key gives it back.
    attempt = await store.reserve_attempt(client, SIGN_IN_WINDOW, SIGN_IN_MAX_FAILURES)
    if attempt is None:
        response = again(429, "Too many failed sign-ins from your network. Wait 15 minutes, then try again.")
        response.headers["Retry-After"] = str(int(SIGN_IN_WINDOW.total_seconds()))
        return response
    key = form.get("secret_key")
    key = key.strip() if isinstance(key, str) else ""
    if not key:
        await store.release_attempt(client, attempt)
        return again(400, "Enter your secret key.")
    if len(key) > _MAX_KEY_CHARS or not key.startswith("sk_"):
        return again(401, "That is not a paygate secret key. It starts with sk_test_ or sk_live_.")
    try:
        reply = await request.app[CLIENTS].keys.AuthenticateMerchant(
            keys_pb2.AuthenticateMerchantRequest(secret_key=key)
        )
    except grpc.aio.AioRpcError as error:
        if error.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return again(
                401,
                "That secret key was not accepted. It may be mistyped, revoked or expired. "
                "Check that you copied the whole key.",
            )
        await store.release_attempt(client, attempt)
        return again(503, "paygate is unavailable right now. Please try again in a moment.")
    mode = mode_label(reply.mode)
    if switch_mode and mode != switch_mode:
        await store.release_attempt(client, attempt)
        return again(
            400, f"That is a {mode} key. Switching to {switch_mode} mode needs a {switch_mode} secret key."
        )
    await store.clear_failures(client)
    # A sign-in while signed in replaces the old session (a mode switch, another merchant).
    await store.close(request.cookies.get(_cookie_name(request)))
    cookie = await store.open(
        merchant_id=reply.merchant.id,
        merchant_name=reply.merchant.name,
        mode=mode,
        merchant_key_id=reply.secret_key_id,
        lifetime=SESSION_LIFETIME,
    )
    response = _redirect("/dashboard")
    _set_cookie(request, response, cookie)
    return response


async def sign_out(request: web.Request) -> web.StreamResponse:
    if not _same_origin(request):
        return _forbidden(request)
    cookie = request.cookies.get(_cookie_name(request), "")
    store = request.app[DASHBOARD_SESSIONS]
    session = await store.touch(cookie, IDLE_TIMEOUT)
    if session is not None:
        form = await read_form(request)
        if form is None:
            return _unreadable_form(request)
        if not browser_session.csrf_matches(form, session.csrf_token):
            return _forbidden(request)
        await store.close(cookie)
    response = _back("/dashboard/sign-in", notice="signed_out")
    _clear_cookie(request, response)
    return response


# --- overview ----------------------------------------------------------------------------------------------


async def _status_counts(request: web.Request, ctx: Ctx, since: datetime) -> dict[str, Any]:
    """Sessions per final status created since `since` (the session service filters by date), and paid ones
    still waiting for fulfilment; counted from the newest 300 of each status (shown as "300+" beyond)."""

    async def count(status: str) -> tuple[str, int, bool, int]:
        seen, backlog, cursor = 0, 0, ""
        for _ in range(3):
            reply = await request.app[CLIENTS].session.ListSessions(
                session_pb2.ListSessionsRequest(
                    **ctx.merchant.scope,
                    status=STATUS_BY_NAME[status],
                    limit=100,
                    starting_after=cursor,
                    created_from=timestamp(since),
                )
            )
            for session in reply.sessions:
                if to_datetime(session.created_at) < since:
                    return status, seen, False, backlog
                seen += 1
                if status == "paid" and session.fulfilment_status != "done":
                    backlog += 1
            if not reply.has_more or not reply.sessions:
                return status, seen, False, backlog
            cursor = reply.sessions[-1].id
        return status, seen, True, backlog

    results = await asyncio.gather(*(count(s) for s in ("paid", "failed", "expired")))
    counts: dict[str, Any] = {status: f"{n}+" if more else str(n) for status, n, more, _ in results}
    counts["backlog"] = sum(b for *_, b in results)
    return counts


async def overview(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    now = datetime.now(UTC)
    today = views.period_start(now, "day")
    month = views.period_start(now, "month")
    repo = request.app[INBOX]
    today_buckets, month_buckets, counts, quarantine, inbox, recent = await asyncio.gather(
        _revenue(request, ctx, today, now, "day"),
        _revenue(request, ctx, month, now, "month"),
        _status_counts(request, ctx, now - timedelta(days=30)),
        request.app[CLIENTS].session.ListQuarantine(
            session_pb2.ListQuarantineRequest(**ctx.merchant.scope, status="open", limit=100)
        ),
        # Every event of the last 24 h, counted by status in one query (not the newest 100 of them).
        repo.health_since(
            ctx.session.merchant_id,
            mode=ctx.session.mode,
            since=now - timedelta(days=1),
            stale_before=now - timedelta(minutes=5),
        ),
        request.app[CLIENTS].session.ListSessions(
            session_pb2.ListSessionsRequest(**ctx.merchant.scope, limit=6)
        ),
    )

    def per_currency(buckets: list[views.Bucket]) -> list[dict[str, Any]]:
        totals: dict[str, list[int]] = {}
        for b in buckets:
            entry = totals.setdefault(b.currency, [0, b.exponent, 0])
            entry[0] += b.net_minor
            entry[2] += b.invoice_count
        return [
            {"currency": c, "net": views.money_text(v[0], v[1], c), "count": v[2]}
            for c, v in sorted(totals.items())
        ]

    health = {
        "received_24h": inbox.received,
        "applied_24h": inbox.applied,
        "waiting": inbox.waiting,
        "failed_24h": inbox.failed,
        "last": views.when_text(inbox.last_received_at),
        "ok": not inbox.failed and not inbox.stale_waiting,
    }
    open_count = f"{len(quarantine.entries)}+" if quarantine.has_more else str(len(quarantine.entries))
    return _render(
        request,
        "overview.html",
        ctx,
        active="overview",
        today=per_currency(today_buckets),
        month=per_currency(month_buckets),
        month_name=now.strftime("%B %Y"),
        counts=counts,
        open_quarantine=open_count,
        health=health,
        recent=[_session_row(s) for s in recent.sessions],
    )


# --- sessions ----------------------------------------------------------------------------------------------


async def _currency_exponent(request: web.Request, ctx: Ctx, code: str) -> int | None:
    """The minor unit of a currency the merchant's sessions may be priced in: ISO 4217 and ETH are built in,
    a token's decimals are in the merchant's payment settings. None: not a currency this merchant uses."""
    builtin = BUILTIN_CURRENCIES.get(code)
    if builtin is not None:
        return builtin.exponent
    settings = await _optional(
        request.app[CLIENTS].session.GetPaymentSettings(
            session_pb2.GetPaymentSettingsRequest(merchant_id=ctx.session.merchant_id)
        )
    )
    for token in settings.onchain.tokens if settings is not None else ():
        if token.symbol.upper() == code:
            return token.decimals
    return None


async def sessions_page(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """The list with every filter applied by the session service, in SQL, within the merchant and mode."""
    filters = views.parse_session_filter(request.query)
    cursor = request.query.get("after", "")[:64]
    exponent = await _currency_exponent(request, ctx, filters.currency) if filters.currency else None
    fields, problems = filters.list_fields(exponent)
    if filters.status and filters.status not in STATUS_BY_NAME:
        problems.append("Unknown status.")
    if filters.currency and exponent is None:
        problems.append(f"{filters.currency} is not a currency your sessions can be priced in.")
    errors = [*filters.errors, *problems]
    rows: list[session_pb2.Session] = []
    next_cursor = ""
    if not problems:
        for name in ("created_from", "created_to"):
            if name in fields:
                fields[name] = timestamp(fields[name])
        reply = await request.app[CLIENTS].session.ListSessions(
            session_pb2.ListSessionsRequest(
                **ctx.merchant.scope,
                status=STATUS_BY_NAME.get(filters.status, session_pb2.SESSION_STATUS_UNSPECIFIED),
                limit=PAGE_SIZE,
                starting_after=cursor,
                **fields,
            )
        )
        rows = list(reply.sessions)
        next_cursor = rows[-1].id if reply.has_more and rows else ""
    next_url = ""
    if next_cursor:
        next_url = "/dashboard/sessions?" + urlencode({**filters.query(), "after": next_cursor})
    return _render(
        request,
        "sessions.html",
        ctx,
        active="sessions",
        rows=[_session_row(s) for s in rows],
        filters=filters,
        filter_errors=errors,
        statuses=[s for s in views.STATUSES if s in STATUS_BY_NAME],
        providers=views.PROVIDERS,
        next_url=next_url,
        first_url="/dashboard/sessions?" + urlencode(filters.query()) if cursor else "",
    )


# A session's provider events shown on its page (a session has a handful: payment, refunds, a dispute).
SESSION_EVENTS_LIMIT = 200


async def _events_for_session(request: web.Request, ctx: Ctx, session_id: str) -> list[InboxEvent]:
    """The session's own events, read by session (merchant- and mode-scoped), oldest first."""
    return await request.app[INBOX].list_for_session(
        ctx.session.merchant_id, session_id, mode=ctx.session.mode, limit=SESSION_EVENTS_LIMIT
    )


def _named_event_keys(session: session_pb2.Session, known: dict[str, InboxEvent]) -> list[tuple[str, str]]:
    """(provider, event id) of the events the session's history names that are not among `known`: an event
    recorded before the apply's matched session was (a dispute), or a bare event id of an older move."""
    keys: list[tuple[str, str]] = []
    for move in session.history:
        source = move.source_event_id
        if not source or source in known:
            continue
        provider, _, event_id = source.partition(":")
        if event_id and provider in INBOX_PROVIDERS:
            keys.append((provider, event_id))
        else:
            keys.extend((p, source) for p in sorted(INBOX_PROVIDERS))
    return keys


async def _history_events(
    request: web.Request, ctx: Ctx, session: session_pb2.Session, events: list[InboxEvent]
) -> dict[str, InboxEvent]:
    """The inbox events the session's history names, by "<provider>:<event id>" and by bare event id."""

    def by_id(found: list[InboxEvent]) -> dict[str, InboxEvent]:
        return {**{e.event_id: e for e in found}, **{f"{e.provider}:{e.event_id}": e for e in found}}

    known = by_id(events)
    keys = _named_event_keys(session, known)
    if keys:
        known.update(
            by_id(
                await request.app[INBOX].find_for_merchant(
                    ctx.session.merchant_id, keys[:SESSION_EVENTS_LIMIT], mode=ctx.session.mode
                )
            )
        )
    return known


async def _nothing() -> None:
    return None


async def _optional(call: Awaitable[Any]) -> Any:
    """A part of the session page that may not exist yet (invoice before fulfilment, a revoked link)."""
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
            return None
        raise


async def _deposits(request: web.Request, session: session_pb2.Session) -> dict[str, Any] | None:
    if session.provider != "web3":
        return None
    rows = await request.app[DEPOSITS].for_session(session.id)
    needed = max(1, session.payment.min_confirmations) if session.HasField("payment") else 1
    head = None
    if rows:
        status = await request.app[ADDRESSES].watcher_status(rows[0].chain_id)
        head = status.head if status is not None else None
    return {"needed": needed, "head": head, "rows": [deposit_json(r, head, needed) for r in rows]}


async def session_page(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    merchant = ctx.merchant
    session = await load_session(request, merchant, request.match_info["id"][:64])
    clients = request.app[CLIENTS]
    link, invoice, key, events, deposits = await asyncio.gather(
        _optional(
            clients.keys.GetAccessLink(
                keys_pb2.GetAccessLinkRequest(session_id=session.id, merchant_id=merchant.merchant_id)
            )
        )
        if session.access_token_id
        else _nothing(),
        _optional(
            clients.billing.GetInvoice(billing_pb2.GetInvoiceRequest(**merchant.scope, session_id=session.id))
        )
        if session.invoice_id
        else _nothing(),
        _optional(
            clients.keys.GetCustomerKey(
                keys_pb2.GetCustomerKeyRequest(session_id=session.id, merchant_id=merchant.merchant_id)
            )
        )
        if session.api_key_id
        else _nothing(),
        _events_for_session(request, ctx, session.id),
        _deposits(request, session),
    )
    # A move names its cause as "<provider>:<provider event id>" (older rows: the bare event id).
    credited, by_event_id = await asyncio.gather(
        _credited_invoice_ids(request, ctx, [invoice] if invoice is not None else []),
        _history_events(request, ctx, session, events),
    )
    detail = session_detail(session, None)
    timeline = _timeline(session, detail, by_event_id)
    refunded_minor = int(detail["amount_refunded_minor"])
    return _render(
        request,
        "session.html",
        ctx,
        active="sessions",
        s=_session_row(session),
        detail=detail,
        paid_at=views.when_text(optional_datetime(session, "paid_at")),
        expires=views.when_text(optional_datetime(session, "expires_at")),
        received=detail.get("amount_received"),
        timeline=timeline,
        events=[_event_row(e) for e in events],
        invoice=_invoice_row(invoice, invoice.id in credited) if invoice is not None else None,
        key=_customer_key_row(key) if key is not None else None,
        link=(
            {
                "url": link.url,
                "expires": views.when_text(optional_datetime(link.access_token, "expires_at")),
                # The session keeps the id of its first link, the one fulfilment mails; a link issued here
                # since then was shown to the merchant only.
                "reissued": link.access_token.id != session.access_token_id,
            }
            if link is not None
            else None
        ),
        has_links=bool(session.access_token_id),
        paid=session.status == session_pb2.SESSION_STATUS_PAID,
        deposits=deposits,
        grace_choices=_GRACE_CHOICES,
        # The refunds GetSession returned with the session (the loader of GET /v1/sessions/{id} and of
        # POST /v1/sessions/{id}/refund): this merchant's, in this mode, like the session itself.
        refunds=[_refund_row(r) for r in session.refunds],
        refund=_refund_offer(request, session),
        reason_max=refunds_ui.MAX_REASON,
        **_chain_refund_notice(request, session),
        chain_typed=request.get(CHAIN_REFUND_TYPED, {}),
        # The total, as the API's `amount_refunded` counts it: in the session's currency and exponent.
        refunded=views.money_text(refunded_minor, session.amount.exponent, session.amount.currency)
        if refunded_minor
        else "",
    )


def _timeline(
    session: session_pb2.Session, detail: dict[str, Any], by_event_id: dict[str, InboxEvent]
) -> list[dict[str, Any]]:
    steps = []
    for move, shown in zip(session.history, detail["history"], strict=True):
        event = by_event_id.get(move.source_event_id) if move.source_event_id else None
        steps.append(
            {
                "from": shown["from"],
                "to": shown["to"],
                "at": views.when_text(to_datetime(move.at)),
                "note": move.note if move.note != shown["to"] else "",
                "source_event_id": move.source_event_id,
                "event": _event_row(event) if event is not None else None,
            }
        )
    return steps


async def session_detail_page(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    return await session_page(request, ctx)


def _session_path(request: web.Request) -> str:
    return f"/dashboard/sessions/{quote(request.match_info['id'][:64], safe='')}"


async def revoke_links_confirm(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """Revoking the links cuts the customer off the portal, the mailed link too: asked first."""
    await _form(request, ctx)
    session = await load_session(request, ctx.merchant, request.match_info["id"][:64])
    return _render(request, "confirm_revoke_link.html", ctx, active="sessions", s=_session_row(session))


async def revoke_links(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    form = await _form(request, ctx)

    async def run() -> None:
        await revoke_session_links(request, ctx.merchant, ctx.actor)

    return await _act(request, ctx, form, _session_path(request), session_page, run, "links_revoked")


async def reissue_link(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """A new link for the merchant to pass on (nothing is mailed); every earlier one stops working."""
    form = await _form(request, ctx)

    async def run() -> None:
        await reissue_session_link(request, ctx.merchant, ctx.actor)

    return await _act(request, ctx, form, _session_path(request), session_page, run, "link_reissued")


# --- refunds -----------------------------------------------------------------------------------------------


def _refund_offer(request: web.Request, session: session_pb2.Session) -> refunds_ui.RefundOffer:
    return refunds_ui.refund_offer(session, via_provider=provider_api(request, session) is not None)


def _chain_refund_notice(request: web.Request, session: session_pb2.Session) -> dict[str, Any]:
    """The page's notice after "Record a refund you sent": the refund it names, read back from the session."""
    notice = refunds_ui.chain_refund_notice(
        session, views.safe_code(request.query.get("notice")), request.query.get("refund", "")[:64]
    )
    return {"notice": notice} if notice else {}


async def _refund_refused(request: web.Request, ctx: Ctx, error: ApiError) -> web.StreamResponse:
    """The session's page, rendered now with the refusal in the refund's own words: nothing was refunded."""
    request[REFUSAL] = refunds_ui.refusal_text(error.code, _api_message(error))
    response = await session_page(request, ctx)
    response.set_status(error.status_code)
    return response


async def refund_confirm(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """The refund the session page's form asks for, said exactly before anything happens: how much, through
    the provider or recorded as made elsewhere, and what stays refundable."""
    form = await _form(request, ctx)
    session = await load_session(request, ctx.merchant, request.match_info["id"][:64])
    try:
        plan = refunds_ui.plan_refund(_refund_offer(request, session), form.get("amount"), form.get("reason"))
    except ApiError as error:
        return await _refund_refused(request, ctx, error)
    return _render(request, "confirm_refund.html", ctx, active="sessions", s=_session_row(session), plan=plan)


async def refund(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """Make the confirmed refund through refund_requests.request_refund, the writer of POST
    /v1/sessions/{id}/refund. The form's nonce is the refund's Idempotency-Key, kept by the session service
    with the refund: the same form again (a reload, a double click) answers the refund it made, so this
    redirects with "already submitted" and refunds nothing twice, even after the last cent."""
    form = await _form(request, ctx)
    nonce = _form_nonce(form)
    if not nonce:
        # Every refund form carries one: without it a re-POST could refund twice.
        return _forbidden(request)
    session = await load_session(request, ctx.merchant, request.match_info["id"][:64])
    if session.provider == "web3":
        # Never made here (the merchant sends it): the page's form records the tx the merchant sent.
        return await _record_chain_refund(request, ctx, form, nonce, session)
    amount = form.get("amount")
    amount = amount.strip() if isinstance(amount, str) else ""
    reason = form.get("reason")
    reason = reason.strip() if isinstance(reason, str) else ""
    try:
        if not amount:
            # The confirmed form names its amount: a missing one never means "the rest".
            raise ApiError(400, "invalid_amount", "amount: the confirmed form names the amount")
        # Every refusal, an open dispute's too, is the session service's, after its replay check.
        made = await request_refund(
            request,
            ctx.merchant,
            session,
            amount=amount,
            reason=reason,
            idempotency_key=f"dashboard:{nonce}",
            fingerprint=body_fingerprint(json.dumps({"amount": amount, "reason": reason}).encode()),
            actor=ctx.actor,
        )
    except ApiError as error:
        if error.status_code >= 500 and error.code != "provider_unavailable":
            raise
        return await _refund_refused(request, ctx, error)
    back = _session_path(request)
    if made.replayed:
        return _back(back, error="already_submitted")
    notice = {"pending": "refund_requested", "failed": "refund_failed"}.get(
        made.refund.status, "refund_recorded"
    )
    return _back(back, notice=notice)


async def _record_chain_refund(
    request: web.Request, ctx: Ctx, form: Any, nonce: str, session: session_pb2.Session
) -> web.StreamResponse:
    """Record a web3 refund the merchant sent from their wallet ("Record a refund you sent"), through
    refund_requests.request_refund as POST /v1/sessions/{id}/refund with `tx_hash` does: the tx is read back
    from the session's chain and the refund is what it sent back. The form's nonce is the Idempotency-Key and a
    tx is one refund, so the same form again (or another naming the same tx) records nothing twice. Refusals,
    an unconfirmed tx or an unreachable node included, are the session page with a sentence: nothing recorded."""
    try:
        asked = refunds_ui.chain_refund_form(
            form.get("tx_hash"), form.get("from_address"), form.get("reason")
        )
        made = await request_refund(
            request,
            ctx.merchant,
            session,
            amount="",  # the refund is what the tx sent back, capped at the refundable rest
            reason=asked.reason,
            chain=asked.chain,
            idempotency_key=f"dashboard:{nonce}",
            fingerprint=body_fingerprint(json.dumps(asked.fingerprint_fields()).encode()),
            actor=ctx.actor,
        )
    except ApiError as error:
        # An unreachable node or service (503 `unavailable`) recorded nothing: said on the page, to retry.
        if error.status_code >= 500 and error.code != "unavailable":
            raise
        request[CHAIN_REFUND_TYPED] = refunds_ui.chain_refund_typed(
            form.get("tx_hash"), form.get("from_address"), form.get("reason")
        )
        return await _refund_refused(request, ctx, error)
    notice = "chain_refund_already_recorded" if made.replayed else "chain_refund_recorded"
    return _back(_session_path(request), notice=notice, refund=made.refund.id)


# --- revenue -----------------------------------------------------------------------------------------------


def _revenue_query(request: web.Request) -> tuple[str, datetime, datetime, list[str]]:
    errors: list[str] = []
    interval = request.query.get("interval", "day")
    if interval not in _INTERVALS:
        errors.append("Interval must be day, week or month.")
        interval = "day"
    now = datetime.now(UTC)
    default_start = {
        "day": views.period_start(now, "day") - timedelta(days=29),
        "week": views.period_start(now, "week") - timedelta(weeks=11),
        "month": views.period_start(now, "month").replace(year=now.year - 1),
    }[interval]

    def day(name: str) -> datetime | None:
        raw = request.query.get(name, "").strip()
        if not raw:
            return None
        try:
            return datetime.fromisoformat(raw[:10]).replace(tzinfo=UTC)
        except ValueError:
            errors.append(f"{name.capitalize()} must be a date like 2026-01-31.")
            return None

    start = day("from") or default_start
    to_day = day("to")
    # `to` is a day the range includes: the request to billing ends at the next midnight (exclusive).
    try:
        end = to_day + timedelta(days=1) if to_day else now
    except OverflowError:  # to=9999-12-31 has no next midnight
        errors.append("To must be a date before 9999-12-31.")
        end = now
    if end <= start:
        errors.append("The end of the range must be after its start.")
        start, end = default_start, now
    return interval, start, end, errors


async def revenue_page(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    interval, start, end, errors = _revenue_query(request)
    try:
        buckets = await _revenue(request, ctx, start, end, interval)
    except grpc.aio.AioRpcError as error:
        if error.code() not in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE):
            raise
        errors.append(error.details() or "This range cannot be reported.")
        buckets = []
    charts = views.revenue_charts(buckets, start, end, interval)
    narrow = views.revenue_charts(buckets, start, end, interval, views.NARROW)
    query = {
        "interval": interval,
        "from": start.date().isoformat(),
        "to": (end - timedelta(microseconds=1)).date().isoformat(),
    }
    return _render(
        request,
        "revenue.html",
        ctx,
        active="revenue",
        interval=interval,
        intervals=views.INTERVALS,
        range_from=query["from"],
        range_to=query["to"],
        charts=list(zip(charts, narrow, strict=True)),
        buckets=[
            {
                "period": views.period_label(b.period_start, interval),
                "period_start": b.period_start.date().isoformat(),
                "currency": b.currency,
                "invoice_count": b.invoice_count,
                "invoice_total": views.money_text(b.invoice_total_minor, b.exponent, b.currency),
                "credit_note_count": b.credit_note_count,
                "credit_note_total": views.money_text(b.credit_note_total_minor, b.exponent, b.currency),
                "net": views.money_text(b.net_minor, b.exponent, b.currency),
                "net_negative": b.net_minor < 0,
            }
            for b in buckets
        ],
        csv_url="/dashboard/revenue.csv?" + urlencode(query),
        form_errors=errors,
    )


async def revenue_csv(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    interval, start, end, _ = _revenue_query(request)
    buckets = await _revenue(request, ctx, start, end, interval)
    name = f"revenue-{ctx.session.mode}-{interval}-{start.date().isoformat()}.csv"
    response = web.Response(
        text=views.revenue_csv(buckets),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
    return _harden(response)


# --- invoices ----------------------------------------------------------------------------------------------


def _invoice_row(invoice: billing_pb2.Invoice, credited: bool = False) -> dict[str, Any]:
    """`credited`: refunds' credit notes credit this invoice (in part or in full), so Void is not offered:
    billing refuses it (invoice_partially_credited), and the confirm page says why."""
    kind = "credit note" if invoice.kind == billing_pb2.DOCUMENT_KIND_CREDIT_NOTE else "invoice"
    return {
        "id": invoice.id,
        "number": invoice.number,
        "kind": kind,
        "session_id": invoice.session_id,
        "amount": _money(invoice.total),
        "issued": views.when_text(optional_datetime(invoice, "issued_at")),
        "status": "void" if invoice.status == billing_pb2.INVOICE_STATUS_VOID else "issued",
        "buyer": invoice.buyer.name or invoice.buyer.email,
        "voidable": kind == "invoice" and invoice.status != billing_pb2.INVOICE_STATUS_VOID and not credited,
        # A voided invoice: the credit note that cancelled it (its PDF says which invoice it cancels).
        "credit_note_id": invoice.credit_note_id or None,
    }


async def _credited_invoice_ids(
    request: web.Request, ctx: Ctx, invoices: list[billing_pb2.Invoice]
) -> set[str]:
    """Which of these invoices (not void) a credit note credits, from their sessions' documents in one call:
    what `_refund_credits` reads for the confirm page."""
    session_ids = sorted(
        {
            i.session_id
            for i in invoices
            if i.session_id
            and i.kind != billing_pb2.DOCUMENT_KIND_CREDIT_NOTE
            and i.status != billing_pb2.INVOICE_STATUS_VOID
        }
    )
    if not session_ids:
        return set()
    credited: set[str] = set()
    for start in range(0, len(session_ids), 100):  # ListSessionDocuments takes 1..100 sessions
        documents = await request.app[CLIENTS].billing.ListSessionDocuments(
            billing_pb2.ListSessionDocumentsRequest(
                **ctx.merchant.scope, session_ids=session_ids[start : start + 100]
            )
        )
        credited.update(
            d.credits_invoice_id
            for d in documents.invoices
            if d.kind == billing_pb2.DOCUMENT_KIND_CREDIT_NOTE and d.credits_invoice_id
        )
    return credited


async def invoices_page(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    status = request.query.get("status", "")
    status = status if status in ("issued", "void") else ""
    kind = request.query.get("kind", "")
    kind = kind if kind in ("invoice", "credit_note") else ""
    cursor = request.query.get("after", "")[:64]
    reply = await request.app[CLIENTS].billing.ListInvoices(
        billing_pb2.ListInvoicesRequest(
            **ctx.merchant.scope,
            status={"issued": billing_pb2.INVOICE_STATUS_ISSUED, "void": billing_pb2.INVOICE_STATUS_VOID}.get(
                status, billing_pb2.INVOICE_STATUS_UNSPECIFIED
            ),
            kind={
                "invoice": billing_pb2.DOCUMENT_KIND_INVOICE,
                "credit_note": billing_pb2.DOCUMENT_KIND_CREDIT_NOTE,
            }.get(kind, billing_pb2.DOCUMENT_KIND_UNSPECIFIED),
            limit=PAGE_SIZE,
            starting_after=cursor,
        )
    )
    credited = await _credited_invoice_ids(request, ctx, list(reply.invoices))
    rows = [_invoice_row(i, i.id in credited) for i in reply.invoices]
    filters = {k: v for k, v in (("status", status), ("kind", kind)) if v}
    next_url = ""
    if reply.has_more and rows:
        next_url = "/dashboard/invoices?" + urlencode({**filters, "after": rows[-1]["id"]})
    return _render(
        request,
        "invoices.html",
        ctx,
        active="invoices",
        rows=rows,
        status_filter=status,
        kind=kind,
        next_url=next_url,
        first_url="/dashboard/invoices?" + urlencode(filters) if cursor else "",
    )


async def invoice_pdf(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    document = await request.app[CLIENTS].billing.RenderInvoice(
        billing_pb2.RenderInvoiceRequest(
            **ctx.merchant.scope,
            invoice_id=request.match_info["id"][:64],
            format=billing_pb2.RENDER_FORMAT_PDF,
        )
    )
    filename = "".join(c for c in document.filename if c.isalnum() or c in "-_.") or "invoice.pdf"
    response = web.Response(
        body=document.content,
        headers={
            "Content-Type": document.content_type or "application/pdf",
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )
    return _harden(response)


async def _refund_credits(
    request: web.Request, ctx: Ctx, invoice: billing_pb2.Invoice
) -> dict[str, Any] | None:
    """What refunds' credit notes have credited of an invoice that is not void, from its session's documents;
    None when nothing. Billing refuses to void such an invoice (invoice_partially_credited): a void credits
    the whole total again."""
    if not invoice.session_id:
        return None
    documents = await request.app[CLIENTS].billing.ListSessionDocuments(
        billing_pb2.ListSessionDocumentsRequest(**ctx.merchant.scope, session_ids=[invoice.session_id])
    )
    notes = [
        d
        for d in documents.invoices
        if d.kind == billing_pb2.DOCUMENT_KIND_CREDIT_NOTE and d.credits_invoice_id == invoice.id
    ]
    if not notes:
        return None
    credited = -sum(int(n.total.amount_minor or 0) for n in notes)
    return {
        "amount": views.money_text(credited, invoice.total.exponent, invoice.total.currency),
        "numbers": [n.number for n in notes],
    }


async def invoice_void_confirm(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    invoice = await request.app[CLIENTS].billing.GetInvoice(
        billing_pb2.GetInvoiceRequest(**ctx.merchant.scope, invoice_id=request.match_info["id"][:64])
    )
    row = _invoice_row(invoice)
    credited = await _refund_credits(request, ctx, invoice) if row["voidable"] else None
    return _render(request, "confirm_void.html", ctx, active="invoices", invoice=row, credited=credited)


async def invoice_void(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    form = await _form(request, ctx)
    reason = form.get("reason", "")
    reason = reason[:500] if isinstance(reason, str) else ""

    async def run() -> None:
        await request.app[CLIENTS].billing.VoidInvoice(
            billing_pb2.VoidInvoiceRequest(
                **ctx.merchant.scope, invoice_id=request.match_info["id"][:64], reason=reason, actor=ctx.actor
            )
        )

    return await _act(request, ctx, form, "/dashboard/invoices", invoice_void_confirm, run, "invoice_voided")


# --- keys --------------------------------------------------------------------------------------------------


def _customer_key_row(key: keys_pb2.ApiKey) -> dict[str, Any]:
    status = _KEY_STATUS.get(key.status, "unknown")
    return {
        "id": key.id,
        "hint": key.hint,
        "session_id": key.session_id,
        "status": status,
        "created": views.when_text(optional_datetime(key, "created_at")),
        "last_used": views.when_text(optional_datetime(key, "last_used_at")) or "never",
        "expires": views.when_text(optional_datetime(key, "expires_at")),
        "usable": status == "active",
    }


def _merchant_key_row(key: keys_pb2.MerchantKey, own_id: str) -> dict[str, Any]:
    status = _MERCHANT_KEY_STATUS.get(key.status, "revoked")
    return {
        "id": key.id,
        "display": f"{key.prefix}…{key.last4}",
        "status": status,
        "created": views.when_text(optional_datetime(key, "created_at")),
        "last_used": views.when_text(optional_datetime(key, "last_used_at")) or "never",
        "expires": views.when_text(optional_datetime(key, "expires_at")),
        "usable": status in ("active", "expiring"),
        "current": key.id == own_id,
    }


async def keys_page(
    request: web.Request, ctx: Ctx, *, secret: dict[str, str] | None = None
) -> web.StreamResponse:
    cursor = request.query.get("after", "")[:64]
    customer, merchant_keys = await asyncio.gather(
        request.app[CLIENTS].keys.ListKeys(
            keys_pb2.ListKeysRequest(**ctx.merchant.scope, limit=PAGE_SIZE, starting_after=cursor)
        ),
        request.app[CLIENTS].keys.ListMerchantKeys(
            keys_pb2.ListMerchantKeysRequest(**ctx.merchant.scope, limit=100)
        ),
    )
    rows = [_customer_key_row(k) for k in customer.keys]
    return _render(
        request,
        "keys.html",
        ctx,
        active="keys",
        customer_keys=rows,
        merchant_keys=[_merchant_key_row(k, ctx.session.merchant_key_id) for k in merchant_keys.keys],
        next_url=f"/dashboard/keys?after={rows[-1]['id']}" if customer.has_more and rows else "",
        first_url="/dashboard/keys" if cursor else "",
        grace_choices=_GRACE_CHOICES,
        secret=secret,
    )


def _idempotency_key(form: Any) -> str:
    value = form.get("idempotency_key", "")
    return value[:255] if isinstance(value, str) else ""


def _grace(form: Any) -> int:
    raw = form.get("grace_period", "0")
    try:
        value = int(raw) if isinstance(raw, str) else 0
    except ValueError:
        value = 0
    return value if 0 <= value <= MAX_GRACE_PERIOD_SECONDS else 0


async def _rpc_refused(
    request: web.Request, ctx: Ctx, page: Handler, error: grpc.aio.AioRpcError
) -> web.StreamResponse:
    """A failed call of an action shown on `page` with the service's message and code (503 when the
    service is down: raised, for _page)."""
    refusal = refusal_for(error)
    if refusal.unavailable:
        raise error
    return await _refused(request, ctx, page, refusal.status, refusal.code, refusal.message)


async def roll_customer_key(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    form = await _form(request, ctx)
    try:
        reply = await request.app[CLIENTS].keys.RollKey(
            keys_pb2.RollKeyRequest(
                merchant_id=ctx.session.merchant_id,
                key_id=request.match_info["id"][:64],
                grace_period_seconds=_grace(form),
                mode=ctx.merchant.mode,
                idempotency_key=_idempotency_key(form),
                actor=ctx.actor,
            )
        )
    except grpc.aio.AioRpcError as error:
        return await _rpc_refused(request, ctx, keys_page, error)
    if not reply.secret:
        return _back("/dashboard/keys", error="already_done")
    return await keys_page(
        request,
        ctx,
        secret={
            "kind": "customer",
            "value": reply.secret,
            "hint": reply.key.hint,
            "previous": reply.previous.hint,
            "session_id": reply.key.session_id,
        },
    )


async def revoke_customer_key_confirm(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    await _form(request, ctx)
    return _render(
        request,
        "confirm_revoke.html",
        ctx,
        active="keys",
        what="customer key",
        key_id=request.match_info["id"][:64],
        hint=request.query.get("hint", "")[:40],
        action=f"/dashboard/keys/{quote(request.match_info['id'][:64], safe='')}/revoke",
    )


async def revoke_customer_key(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    # Revoking is idempotent (a revoked key stays revoked): the form carries no nonce.
    form = await _form(request, ctx)

    async def run() -> None:
        await request.app[CLIENTS].keys.RevokeKey(
            keys_pb2.RevokeKeyRequest(
                merchant_id=ctx.session.merchant_id,
                key_id=request.match_info["id"][:64],
                mode=ctx.merchant.mode,
                actor=ctx.actor,
            )
        )

    return await _act(request, ctx, form, "/dashboard/keys", keys_page, run, "key_revoked")


async def create_merchant_key(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    form = await _form(request, ctx)
    try:
        reply = await request.app[CLIENTS].keys.CreateMerchantSecretKey(
            keys_pb2.CreateMerchantSecretKeyRequest(
                merchant_id=ctx.session.merchant_id,
                mode=ctx.merchant.mode,
                actor=ctx.actor,
                idempotency_key=_idempotency_key(form),
            )
        )
    except grpc.aio.AioRpcError as error:
        return await _rpc_refused(request, ctx, keys_page, error)
    if not reply.secret_key:
        return _back("/dashboard/keys", error="already_done")
    return await keys_page(
        request,
        ctx,
        secret={
            "kind": "merchant",
            "value": reply.secret_key,
            "hint": f"{reply.key.prefix}…{reply.key.last4}",
        },
    )


async def roll_merchant_key(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    form = await _form(request, ctx)
    try:
        reply = await request.app[CLIENTS].keys.RollMerchantKey(
            keys_pb2.RollMerchantKeyRequest(
                merchant_id=ctx.session.merchant_id,
                key_id=request.match_info["id"][:64],
                grace_period_seconds=_grace(form),
                mode=ctx.merchant.mode,
                actor=ctx.actor,
                idempotency_key=_idempotency_key(form),
            )
        )
    except grpc.aio.AioRpcError as error:
        return await _rpc_refused(request, ctx, keys_page, error)
    if not reply.secret:
        return _back("/dashboard/keys", error="already_done")
    secret = {
        "kind": "merchant",
        "value": reply.secret,
        "hint": f"{reply.key.prefix}…{reply.key.last4}",
        "previous": f"{reply.previous.prefix}…{reply.previous.last4}",
    }
    if reply.previous.id == ctx.session.merchant_key_id:
        # This session's own key was rolled: the session lasts as long as the old key does (its grace
        # period), and the new secret must be shown now, on this response.
        secret["own"] = "yes"
    return await keys_page(request, ctx, secret=secret)


async def revoke_merchant_key_confirm(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    await _form(request, ctx)
    key_id = request.match_info["id"][:64]
    return _render(
        request,
        "confirm_revoke.html",
        ctx,
        active="keys",
        what="secret key",
        key_id=key_id,
        hint=request.query.get("hint", "")[:40],
        own=key_id == ctx.session.merchant_key_id,
        action=f"/dashboard/merchant-keys/{quote(key_id, safe='')}/revoke",
    )


async def revoke_merchant_key(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    # Revoking is idempotent (a revoked key stays revoked): the form carries no nonce.
    form = await _form(request, ctx)

    async def run() -> None:
        await request.app[CLIENTS].keys.RevokeMerchantKey(
            keys_pb2.RevokeMerchantKeyRequest(
                merchant_id=ctx.session.merchant_id,
                key_id=request.match_info["id"][:64],
                mode=ctx.merchant.mode,
                actor=ctx.actor,
            )
        )

    return await _act(request, ctx, form, "/dashboard/keys", keys_page, run, "merchant_key_revoked")


# --- quarantine --------------------------------------------------------------------------------------------


def _quarantine_row(entry: session_pb2.QuarantineEntry, mode: str) -> dict[str, Any]:
    """`mode`: the dashboard's. A mode_mismatch entry names a session of the other mode (a live event that
    named a test session), whose page is not there in this mode: its id is shown without a link."""
    return {
        "id": entry.id,
        "session_id": entry.session_id,
        "session_mode": ("test" if mode == "live" else "live") if entry.reason == "mode_mismatch" else "",
        "reason": entry.reason.replace("_", " "),
        "late_payment": entry.reason == "payment_on_closed_session",
        "provider": entry.provider,
        "provider_event_id": entry.provider_event_id,
        "amount": _money(entry.amount) if entry.HasField("amount") else "",
        "expected": _money(entry.expected) if entry.HasField("expected") else "",
        "surplus": _money(entry.surplus) if entry.HasField("surplus") else "",
        "status": entry.status,
        "note": entry.resolution_note,
        "created": views.when_text(optional_datetime(entry, "created_at")),
        "resolved": views.when_text(optional_datetime(entry, "resolved_at")),
    }


async def quarantine_page(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    status = request.query.get("status", "open")
    status = status if status in ("open", "accepted", "refunded", "dismissed", "all") else "open"
    cursor = request.query.get("after", "")[:64]
    reply = await request.app[CLIENTS].session.ListQuarantine(
        session_pb2.ListQuarantineRequest(
            **ctx.merchant.scope,
            status="" if status == "all" else status,
            limit=PAGE_SIZE,
            starting_after=cursor,
        )
    )
    rows = [_quarantine_row(e, ctx.session.mode) for e in reply.entries]
    return _render(
        request,
        "quarantine.html",
        ctx,
        active="quarantine",
        rows=rows,
        status_filter=status,
        next_url=(
            "/dashboard/quarantine?" + urlencode({"status": status, "after": rows[-1]["id"]})
            if reply.has_more and rows
            else ""
        ),
        first_url=f"/dashboard/quarantine?status={status}" if cursor else "",
    )


async def resolve_quarantine(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    form = await _form(request, ctx)
    decision = form.get("decision")
    note = form.get("note", "")
    if not isinstance(decision, str) or decision not in _DECISIONS:
        return _back("/dashboard/quarantine", error="invalid_decision")
    if not isinstance(note, str) or len(note) > _MAX_NOTE:
        return _back("/dashboard/quarantine", error="invalid_note")

    async def run() -> None:
        await request.app[CLIENTS].session.ResolveQuarantine(
            session_pb2.ResolveQuarantineRequest(
                **ctx.merchant.scope,
                quarantine_id=request.match_info["id"][:64],
                decision=_DECISIONS[decision],
                note=note.strip(),
                actor=ctx.actor,
            )
        )

    return await _act(
        request, ctx, form, "/dashboard/quarantine", quarantine_page, run, "quarantine_resolved"
    )


# --- events and webhooks -----------------------------------------------------------------------------------


async def events_page(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    status = request.query.get("status", "")
    status = status if status in EVENT_STATUSES else ""
    cursor = request.query.get("after", "")[:64]
    repo = request.app[INBOX]
    if cursor:
        owner = await repo.get(cursor) if canonical_uuid(cursor) else None
        if owner is None or owner.merchant_id != ctx.session.merchant_id or owner.mode != ctx.session.mode:
            cursor = ""
    events, has_more = await repo.list_for_merchant(
        ctx.session.merchant_id,
        limit=PAGE_SIZE,
        starting_after=cursor or None,
        status=status or None,
        mode=ctx.session.mode,
    )
    rows = [_event_row(e) for e in events]
    filters = {"status": status} if status else {}
    return _render(
        request,
        "events.html",
        ctx,
        active="events",
        rows=rows,
        status_filter=status,
        statuses=sorted(EVENT_STATUSES),
        next_url=(
            "/dashboard/events?" + urlencode({**filters, "after": rows[-1]["id"]})
            if has_more and rows
            else ""
        ),
        first_url="/dashboard/events?" + urlencode(filters) if cursor else "",
    )


async def replay_event(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    form = await _form(request, ctx)

    async def run() -> None:
        await replay_owned_event(request, ctx.merchant, ctx.actor)

    return await _act(request, ctx, form, "/dashboard/events", events_page, run, "event_replayed")


def _previous_secret_until(endpoint: pb.WebhookEndpoint) -> str:
    """Until when the old secret keeps signing after a roll; "" once that time has passed (it signs no more)."""
    until = optional_datetime(endpoint, "previous_secret_expires_at")
    return views.when_text(until) if until is not None and until > datetime.now(UTC) else ""


def _endpoint_row(endpoint: pb.WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": "All events" if list(endpoint.events) in ([], ["*"]) else ", ".join(endpoint.events),
        "description": endpoint.description,
        "status": endpoint.status,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": views.when_text(optional_datetime(endpoint, "failing_since")),
        "previous_until": _previous_secret_until(endpoint),
        "created": views.when_text(optional_datetime(endpoint, "created_at")),
    }


def _attempt_row(attempt: pb.WebhookDeliveryAttempt, urls: dict[str, str]) -> dict[str, Any]:
    return {
        "event_type": attempt.event_type,
        "event_id": attempt.event_id,
        "endpoint_id": attempt.endpoint_id,
        # The whole URL (the template wraps it): two endpoints may differ only at its end. "" once deleted.
        "endpoint_url": urls.get(attempt.endpoint_id, ""),
        "attempt": attempt.attempt,
        "status_code": attempt.status_code or "",
        "error": (attempt.error or "")[:160],
        "delivered": attempt.delivered,
        "at": views.when_text(optional_datetime(attempt, "at")),
        "next": views.when_text(optional_datetime(attempt, "next_attempt_at")),
        "latency_ms": attempt.latency_ms,
    }


def _merchant_event_row(event: pb.MerchantEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "created": views.when_text(optional_datetime(event, "created")),
    }


async def webhooks_page(
    request: web.Request,
    ctx: Ctx,
    *,
    secret: dict[str, str] | None = None,
    draft: dict[str, Any] | None = None,
    create_error: str = "",
    status: int = 200,
) -> web.StreamResponse:
    """Endpoints, recent deliveries and recent events, through the same RPCs as /v1/webhook_endpoints,
    /v1/webhook_deliveries and /v1/merchant_events."""
    stub = merchant_events_stub(request)
    endpoints: list[dict[str, Any]] | None = None
    attempts: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    try:
        listed, delivered, emitted = await asyncio.gather(
            stub.ListWebhookEndpoints(pb.ListWebhookEndpointsRequest(**ctx.merchant.scope, limit=100)),
            stub.ListWebhookDeliveries(pb.ListWebhookDeliveriesRequest(**ctx.merchant.scope, limit=25)),
            stub.ListMerchantEvents(pb.ListMerchantEventsRequest(**ctx.merchant.scope, limit=25)),
        )
    except grpc.aio.AioRpcError as error:
        # A session service without merchant events (an older replica during a roll-out) says so.
        if error.code() != grpc.StatusCode.UNIMPLEMENTED:
            raise
    else:
        endpoints = [_endpoint_row(e) for e in listed.endpoints]
        urls = {e.id: e.url for e in listed.endpoints}
        attempts = [_attempt_row(a, urls) for a in delivered.attempts]
        events = [_merchant_event_row(e) for e in emitted.events]
    return _render(
        request,
        "webhooks.html",
        ctx,
        status=status,
        active="webhooks",
        endpoints=endpoints,
        attempts=attempts,
        events=events,
        event_types=views.MERCHANT_EVENT_TYPES,
        overlap_choices=_OVERLAP_CHOICES,
        default_overlap=_DEFAULT_OVERLAP,
        secret=secret,
        draft=draft or {},
        create_error=create_error,
    )


async def create_webhook(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """POST /v1/webhook_endpoints from a form: the new endpoint's secret is shown on this response only. The
    form's nonce is the create's Idempotency-Key (as the Keys forms send theirs to the keys service): a reload
    that re-posts the form gets the first endpoint back, without its secret, and says so."""
    form = await _form(request, ctx)
    url = form.get("url", "")
    url = url.strip() if isinstance(url, str) else ""
    description = form.get("description", "")
    description = description.strip() if isinstance(description, str) else ""
    chosen = [e for e in form.getall("events", []) if isinstance(e, str) and e]
    draft = {"url": url, "description": description, "events": chosen}
    try:
        rpc = create_endpoint_request(ctx.merchant, url, chosen or ["*"], description)
        rpc.actor = ctx.actor
        rpc.idempotency_key = _form_nonce(form)
        if rpc.idempotency_key:
            rpc.request_fingerprint = body_fingerprint(json.dumps(draft).encode())
        endpoint = await merchant_events_stub(request).CreateWebhookEndpoint(rpc)
    except ApiError as error:
        why = _refusal_text(error.code, _api_message(error))
        return await webhooks_page(request, ctx, draft=draft, create_error=why, status=400)
    except grpc.aio.AioRpcError as error:
        refusal = refusal_for(error)
        if refusal.code in ("idempotency_conflict", "idempotency_in_progress"):
            return _back("/dashboard/webhooks", error="already_done")
        if refusal.unavailable:
            raise
        why = _refusal_text(refusal.code, refusal.message)
        return await webhooks_page(request, ctx, draft=draft, create_error=why, status=refusal.status)
    if endpoint.replayed or not endpoint.secret:
        return _back("/dashboard/webhooks", error="already_done")
    return await webhooks_page(
        request,
        ctx,
        secret={"value": endpoint.secret, "url": endpoint.url, "what": "created"},
    )


async def roll_webhook_secret(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """A new signing secret, shown on this response only. The session service keeps no idempotency key for a
    roll, so the form's nonce is claimed here: a reload that re-posts the form rolls nothing (a second roll
    would retire at once the secret that is meant to keep signing beside the new one)."""
    form = await _form(request, ctx)
    raw = form.get("overlap", "")
    overlap = int(raw) if isinstance(raw, str) and raw.isdecimal() and len(raw) <= 7 else -1
    if overlap not in {seconds for seconds, _ in _OVERLAP_CHOICES}:
        return _back("/dashboard/webhooks", error="invalid_expires_in")
    try:
        rpc = roll_secret_request(ctx.merchant, request.match_info["id"][:100], overlap)
    except ApiError as error:
        return await _refused(request, ctx, webhooks_page, 400, error.code, _api_message(error))
    rpc.actor = ctx.actor
    claim = await _claim_form(request, ctx, form, "/dashboard/webhooks", already="already_done")
    try:
        endpoint = await merchant_events_stub(request).RollWebhookSecret(rpc)
    except grpc.aio.AioRpcError as error:
        await claim.release()
        return await _rpc_refused(request, ctx, webhooks_page, error)
    except BaseException:
        await claim.release()
        raise
    await claim.done()
    return await webhooks_page(
        request,
        ctx,
        secret={
            "value": endpoint.secret,
            "url": endpoint.url,
            "what": "rolled",
            "previous_until": _previous_secret_until(endpoint),
        },
    )


async def delete_webhook_confirm(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    await _form(request, ctx)
    endpoint_id = request.match_info["id"][:100]
    endpoint = await merchant_events_stub(request).GetWebhookEndpoint(endpoint_ref(ctx.merchant, endpoint_id))
    return _render(
        request, "confirm_delete_webhook.html", ctx, active="webhooks", endpoint=_endpoint_row(endpoint)
    )


async def delete_webhook(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    form = await _form(request, ctx)
    ref = endpoint_ref(ctx.merchant, request.match_info["id"][:100])
    ref.actor = ctx.actor

    async def run() -> None:
        await merchant_events_stub(request).DeleteWebhookEndpoint(ref)

    return await _act(request, ctx, form, "/dashboard/webhooks", webhooks_page, run, "endpoint_deleted")


async def redeliver_merchant_event(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """POST /v1/merchant_events/{id}/redeliver from a form: a new delivery to the chosen endpoint, due now;
    once per form (each call queues another delivery)."""
    form = await _form(request, ctx)
    endpoint = form.get("endpoint", "")
    try:
        rpc = redeliver_request(ctx.merchant, request.match_info["id"][:100], endpoint)
    except ApiError as error:
        return await _refused(request, ctx, webhooks_page, 400, error.code, _api_message(error))
    rpc.actor = ctx.actor

    async def run() -> None:
        await merchant_events_stub(request).RedeliverMerchantEvent(rpc)

    return await _act(request, ctx, form, "/dashboard/webhooks", webhooks_page, run, "event_redelivered")


async def set_webhook_status(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """Enable or disable an endpoint: the same UpdateWebhookEndpoint call as `PATCH {"status": ...}`. It sets
    a status, so sending the form twice changes nothing more: it carries no nonce."""
    form = await _form(request, ctx)
    status = form.get("status")
    if status not in ("enabled", "disabled"):
        return _back("/dashboard/webhooks", error="invalid_status")

    async def run() -> None:
        await merchant_events_stub(request).UpdateWebhookEndpoint(
            pb.UpdateWebhookEndpointRequest(
                **ctx.merchant.scope,
                endpoint_id=request.match_info["id"][:100],
                status=status,
                actor=ctx.actor,
            )
        )

    return await _act(request, ctx, form, "/dashboard/webhooks", webhooks_page, run, f"endpoint_{status}")


# --- static files ------------------------------------------------------------------------------------------


async def static_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    suffix = Path(name).suffix
    path = _STATIC_DIR / name
    if "/" in name or name.startswith(".") or suffix not in _STATIC_TYPES or not path.is_file():
        return _harden(web.Response(status=404, text="not found"))
    response = web.Response(body=path.read_bytes(), content_type=_STATIC_TYPES[suffix])
    response.headers["Cache-Control"] = "public, max-age=300"
    return _harden(response)


async def root_redirect(request: web.Request) -> web.StreamResponse:
    return _redirect("/dashboard")


def setup(app: web.Application) -> None:
    browser_session.setup_templates(app, TEMPLATES)
    # An unknown address under /dashboard/ is the HTML page above; a wrong method on a dashboard route keeps
    # the API's 405, and other unknown paths the API's JSON 404.
    app.setdefault(NOT_FOUND_PAGES, {})["/dashboard/"] = _no_such_page
    # A fresh idempotency key in every form whose action must not run twice: submitting the same form again (a
    # double click, a reload that re-posts it) runs nothing and answers "already submitted" (a new secret is
    # shown on the first answer only). The keys service and the endpoint create keep the key themselves; the
    # other actions claim it in the gateway's Idempotency-Key store (_claim_form).
    app[TEMPLATES].globals["form_nonce"] = lambda: secrets.token_urlsafe(18)
    handlers: dict[tuple[str, str], Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
        ("GET", "/dashboard"): _page(overview),
        ("GET", "/dashboard/"): root_redirect,
        ("GET", "/dashboard/sign-in"): sign_in_page,
        ("POST", "/dashboard/sign-in"): sign_in,
        ("POST", "/dashboard/sign-out"): sign_out,
        ("GET", "/dashboard/sessions"): _page(sessions_page),
        ("GET", "/dashboard/sessions/{id}"): _page(session_detail_page),
        ("POST", "/dashboard/sessions/{id}/access/revoke/confirm"): _page(revoke_links_confirm),
        ("POST", "/dashboard/sessions/{id}/access/revoke"): _page(revoke_links),
        ("POST", "/dashboard/sessions/{id}/access/reissue"): _page(reissue_link),
        ("POST", "/dashboard/sessions/{id}/refund/confirm"): _page(refund_confirm),
        ("POST", "/dashboard/sessions/{id}/refund"): _page(refund),
        ("GET", "/dashboard/revenue"): _page(revenue_page),
        ("GET", "/dashboard/revenue.csv"): _page(revenue_csv),
        ("GET", "/dashboard/invoices"): _page(invoices_page),
        ("GET", "/dashboard/invoices/{id}/pdf"): _page(invoice_pdf),
        ("GET", "/dashboard/invoices/{id}/void"): _page(invoice_void_confirm),
        ("POST", "/dashboard/invoices/{id}/void"): _page(invoice_void),
        ("GET", "/dashboard/keys"): _page(keys_page),
        ("POST", "/dashboard/keys/{id}/roll"): _page(roll_customer_key),
        ("POST", "/dashboard/keys/{id}/revoke/confirm"): _page(revoke_customer_key_confirm),
        ("POST", "/dashboard/keys/{id}/revoke"): _page(revoke_customer_key),
        ("POST", "/dashboard/merchant-keys"): _page(create_merchant_key),
        ("POST", "/dashboard/merchant-keys/{id}/roll"): _page(roll_merchant_key),
        ("POST", "/dashboard/merchant-keys/{id}/revoke/confirm"): _page(revoke_merchant_key_confirm),
        ("POST", "/dashboard/merchant-keys/{id}/revoke"): _page(revoke_merchant_key),
        ("GET", "/dashboard/quarantine"): _page(quarantine_page),
        ("POST", "/dashboard/quarantine/{id}/resolve"): _page(resolve_quarantine),
        ("GET", "/dashboard/events"): _page(events_page),
        ("POST", "/dashboard/events/{id}/replay"): _page(replay_event),
        ("GET", "/dashboard/webhooks"): _page(webhooks_page),
        ("POST", "/dashboard/webhooks"): _page(create_webhook),
        ("POST", "/dashboard/webhooks/{id}/status"): _page(set_webhook_status),
        ("POST", "/dashboard/webhooks/{id}/roll"): _page(roll_webhook_secret),
        ("POST", "/dashboard/webhooks/{id}/delete/confirm"): _page(delete_webhook_confirm),
        ("POST", "/dashboard/webhooks/{id}/delete"): _page(delete_webhook),
        ("POST", "/dashboard/merchant-events/{id}/redeliver"): _page(redeliver_merchant_event),
        ("GET", "/dashboard/static/{name}"): static_file,
    }
    assert set(handlers) == set(views.ROUTES)
    for (method, path), handler in handlers.items():
        app.router.add_route(method, path, handler)
