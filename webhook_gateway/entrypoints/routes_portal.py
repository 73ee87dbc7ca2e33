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
A page says each refusal in the portal's own sentence for its stable code (portal_views.CUSTOMER_MESSAGES; a
generic one for any other code), never a service's error text; code and field stay in data attributes.

Contract §12 adds, behind the same cookie: the key's permissions (narrow scopes within the merchant's grant,
an IP allow-list, an earlier expiry), a roll that needs the current secret pasted into "Current key" (the
link alone, which a forwarded mail carries, mints nothing), a revoke, 30-day usage with an SVG chart, every
receipt and credit note of the customer (by opaque subject) with this merchant in this mode, once the visitor
has proven the purchase's email address with a mailed code (portal_email_proof.py says why; until then the
purchase's own documents), and a contact form mailed to the merchant. Every POST checks the CSRF token
(constant time) and refuses a cross-site or same-site-but-other-origin request by its Sec-Fetch-Site header;
the Strict cookie already keeps another site's POST out. A secret (revealed or rolled) is rendered in exactly one response, which is no-store.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import aiohttp_jinja2
import grpc
import jinja2
from aiohttp import web

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate.session.v1 import session_pb2
from paygate_runtime.proto_convert import timestamp, to_datetime
from webhook_gateway.adapters.portal_sessions_repository import EMAIL_CODE_LIFETIME_S, PortalSession
from webhook_gateway.entrypoints import browser_session, portal_email_proof, portal_support
from webhook_gateway.entrypoints.app_keys import CLIENTS, PORTAL_SESSIONS, SUPPORT_MAIL
from webhook_gateway.entrypoints.merchant_requests import MAX_GRACE_PERIOD_SECONDS
from webhook_gateway.entrypoints.observability import METRICS
from webhook_gateway.entrypoints.portal_views import (
    FormError,
    customer_message,
    parse_expiry,
    parse_grace,
    refund_state,
    scope_words,
    split_list,
    usage_bars,
)
from webhook_gateway.entrypoints.request_body import format_minor, read_form
from webhook_gateway.entrypoints.rpc_refusals import UNAVAILABLE_CODE, refusal_for

log = logging.getLogger(__name__)

TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("portal_templates")
COOKIE = "__Host-paygate_access"
PORTAL_SESSION_SECONDS = 30 * 60
MAX_TOKEN_CHARS = 4096
MAX_PROOF_CHARS = 64
_STATUS_TEXT = {
    keys_pb2.KEY_STATUS_VALID: "active",
    keys_pb2.KEY_STATUS_EXPIRED: "expired",
    keys_pb2.KEY_STATUS_REVOKED: "revoked",
    keys_pb2.KEY_STATUS_SUSPENDED: "suspended",
}
_UNAVAILABLE_TEXT = "the service is temporarily unavailable; please retry"
MAX_RECEIPTS = 50
USAGE_DAYS = 30
_TITLES = {
    401: "This link is not valid",
    400: "Please check the form",
    403: "This form has expired",
    404: "Not found",
    409: "Already revealed",
    429: "Too many requests",
    503: "Temporarily unavailable",
}


def _csp(nonce: str) -> str:
    return (
        "default-src 'none'; "
        f"style-src 'nonce-{nonce}'; "
        "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


def _harden(response: web.StreamResponse, nonce: str) -> web.StreamResponse:
    browser_session.harden(response, _csp(nonce))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
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
    """A refusal page (the portal's own sentence for `code`; the code only in a data attribute) for a browser,
    the JSON error with `message` for an API client."""
    if _wants_html(request):
        response = _render(
            request,
            "error.html",
            status=status,
            title=_TITLES.get(status, "Something went wrong"),
            code=code,
            message=customer_message(code),
        )
    else:
        response = web.json_response({"error": {"code": code, "message": message}}, status=status)
        _harden(response, secrets.token_urlsafe(8))
    if status == 401:
        browser_session.clear_session_cookie(response, COOKIE, secure=True)
    return response


async def _open_session(request: web.Request, claims: keys_pb2.AccessTokenClaims) -> tuple[str, int]:
    session_key = secrets.token_urlsafe(32)
    token_left = int(to_datetime(claims.expires_at).timestamp() - datetime.now(UTC).timestamp())
    lifetime = max(1, min(PORTAL_SESSION_SECONDS, token_left))
    await request.app[PORTAL_SESSIONS].open(
        session_key,
        jti=claims.jti,
        session_id=claims.session_id,
        merchant_id=claims.merchant_id,
        csrf_token=secrets.token_urlsafe(32),
        lifetime_s=lifetime,
        email_proven=claims.mail_proven,
    )
    return session_key, lifetime


async def _current_session(request: web.Request) -> PortalSession | None:
    return await request.app[PORTAL_SESSIONS].current(request.cookies.get(COOKIE))


async def _end_session(request: web.Request) -> None:
    await request.app[PORTAL_SESSIONS].end(request.cookies.get(COOKIE))


async def _still_valid(request: web.Request, portal: PortalSession) -> tuple[int, str, str] | None:
    """None when the session's token still stands; else the refusal."""
    result = await _current_link(request, portal)
    return result if isinstance(result, tuple) else None


async def _current_link(
    request: web.Request, portal: PortalSession
) -> keys_pb2.AccessLink | tuple[int, str, str]:
    """The session's access link while its token still stands (it carries the opaque subject); else the
    refusal. The token itself is not kept, so a revocation is checked through the session's access link
    (which the keys service refuses once revoked)."""
    try:
        link = await request.app[CLIENTS].keys.GetAccessLink(
            keys_pb2.GetAccessLinkRequest(session_id=portal.session_id, merchant_id=portal.merchant_id)
        )
    except grpc.aio.AioRpcError as error:
        refusal = refusal_for(error)
        if refusal.status in (404, 409):
            return 401, "token_revoked", "this access link was revoked"
        return 503, UNAVAILABLE_CODE, _UNAVAILABLE_TEXT
    if link.access_token.id != portal.jti:
        return 401, "token_revoked", "this access link was replaced"
    return link


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


async def _support(
    request: web.Request, portal: PortalSession, mode: common_pb2.Mode
) -> dict[str, str | None]:
    """The merchant's support contact from its billing profile of the session's mode (test and live each
    have their own, contract §6a): an email, a URL, or neither. An unknown mode shows neither. `seller` is the
    profile's seller name (what its invoices print), the page's fallback when the merchant has no name."""
    if mode not in (common_pb2.MODE_TEST, common_pb2.MODE_LIVE):
        return {"email": None, "url": None, "seller": None}
    try:
        profile = await request.app[CLIENTS].billing.GetBillingProfile(
            billing_pb2.GetBillingProfileRequest(merchant_id=portal.merchant_id, mode=mode)
        )
    except grpc.aio.AioRpcError:
        return {"email": None, "url": None, "seller": None}
    url = getattr(profile, "support_url", "") or ""
    # Only http(s) links are rendered as links: a javascript: or data: URL must never become an href.
    safe_url = url if url.startswith(("https://", "http://")) else None
    # support_email, else the seller's email its invoices show (billing's `contact_email`).
    return {"email": profile.contact_email or None, "url": safe_url, "seller": profile.seller.name or None}


async def _merchant_name(request: web.Request, portal: PortalSession) -> str:
    """The merchant's display name, as the checkout page shows it ("" when it cannot be read: the page then
    falls back to the billing profile's seller name, or to "this seller")."""
    try:
        merchant = await request.app[CLIENTS].keys.GetMerchant(
            keys_pb2.GetMerchantRequest(merchant_id=portal.merchant_id)
        )
    except grpc.aio.AioRpcError as error:
        log.info("portal: merchant unavailable", extra={"grpc_code": error.code().name})
        return ""
    return merchant.name


async def _customer_key(request: web.Request, portal: PortalSession) -> keys_pb2.ApiKey | None:
    try:
        return await request.app[CLIENTS].keys.GetCustomerKey(
            keys_pb2.GetCustomerKeyRequest(session_id=portal.session_id, merchant_id=portal.merchant_id)
        )
    except grpc.aio.AioRpcError:
        return None


async def _usage(request: web.Request, portal: PortalSession) -> keys_pb2.CustomerKeyUsage | None:
    try:
        return await request.app[CLIENTS].keys.GetCustomerKeyUsage(
            keys_pb2.GetCustomerKeyUsageRequest(session_id=portal.session_id, days=USAGE_DAYS)
        )
    except grpc.aio.AioRpcError:
        return None


async def _key_and_usage(
    request: web.Request, portal: PortalSession
) -> tuple[keys_pb2.ApiKey | None, keys_pb2.CustomerKeyUsage | None]:
    """Usage first, then the key: never both at once. The keys service writes a key's last use and its day
    counts in one transaction and never moves last_used_at back, so a key read that starts after the usage
    read sees every use that read counted. Read side by side, a page could show seven uses "last used
    never" (CI caught it in test_usage_is_counted_per_day_and_charted)."""
    usage = await _usage(request, portal)
    return await _customer_key(request, portal), usage


async def _documents(
    request: web.Request, portal: PortalSession, subject: str, mode: common_pb2.Mode
) -> list[billing_pb2.Invoice]:
    """The invoices and credit notes the visitor may see. Once they proved the purchase's email address:
    every one of this customer with this merchant in this mode, i.e. of the sessions whose access links carry
    the same opaque subject (never matched by email text). Before: this purchase's own."""
    if mode == common_pb2.MODE_UNSPECIFIED:
        return []
    clients = request.app[CLIENTS]
    try:
        session_ids = [portal.session_id]
        if subject and portal.email_proven:
            sessions = await clients.keys.ListSubjectSessions(
                keys_pb2.ListSubjectSessionsRequest(
                    subject=subject, merchant_id=portal.merchant_id, mode=mode, limit=MAX_RECEIPTS
                )
            )
            session_ids = list(dict.fromkeys([portal.session_id, *sessions.session_ids]))
        reply = await clients.billing.ListSessionDocuments(
            billing_pb2.ListSessionDocumentsRequest(
                merchant_id=portal.merchant_id, mode=mode, session_ids=session_ids
            )
        )
    except grpc.aio.AioRpcError as error:
        log.info("portal: receipts unavailable", extra={"grpc_code": error.code().name})
        return []
    return list(reply.invoices)


async def _session(
    request: web.Request, portal: PortalSession, mode: common_pb2.Mode = common_pb2.MODE_UNSPECIFIED
) -> session_pb2.Session | None:
    """The portal's own session (None when it cannot be read). Scoped to the portal session's merchant; the
    mode may be left out because the session id itself came from the verified access token."""
    try:
        return await request.app[CLIENTS].session.GetSession(
            session_pb2.GetSessionRequest(
                session_id=portal.session_id, merchant_id=portal.merchant_id, mode=mode
            )
        )
    except grpc.aio.AioRpcError as error:
        log.info("portal: session unavailable", extra={"grpc_code": error.code().name})
        return None


def _can_prove(request: web.Request, subject: str, mode: common_pb2.Mode) -> bool:
    """Whether an address could be proven at all: the purchase has one (a subject), a known mode, mail set up."""
    return bool(subject) and mode != common_pb2.MODE_UNSPECIFIED and request.app[SUPPORT_MAIL] is not None


def _address_to_prove(session: session_pb2.Session | None) -> str:
    """The session's address a code can be mailed to; "" when it has none or the strict pattern refuses it."""
    address = session.customer_email if session is not None else ""
    return address if portal_email_proof.mailable(address) else ""


async def _provable_address(
    request: web.Request, portal: PortalSession, subject: str, mode: common_pb2.Mode
) -> str:
    """The address a code would be mailed to; "" when there is nothing to prove: no subject (the purchase has
    no address), an unknown mode, no mail configured, or an address the strict pattern refuses."""
    if not _can_prove(request, subject, mode):
        return ""
    return _address_to_prove(await _session(request, portal, mode))


async def _email_proof_view(
    request: web.Request,
    portal: PortalSession,
    subject: str,
    mode: common_pb2.Mode,
    session: session_pb2.Session | None,
) -> dict[str, Any] | None:
    """What the receipts section offers: None when there is nothing to prove (_provable_address; the page
    already read the session, so its address is not read again), else whether it is proven and, if not,
    where the code goes and whether one is out."""
    if portal.email_proven:
        return {"proven": True}
    address = _address_to_prove(session) if _can_prove(request, subject, mode) else ""
    if not address:
        return None
    pending = await request.app[PORTAL_SESSIONS].has_email_code(request.cookies.get(COOKIE))
    return {
        "proven": False,
        "to": portal_email_proof.masked(address),
        "code_pending": pending,
        "digits": portal_email_proof.CODE_DIGITS,
    }


def _money(total: common_pb2.Money) -> str:
    try:
        return format_minor(int(total.amount_minor or "0"), total.exponent)
    except ValueError:
        return total.amount_minor


def _invoice_view(
    invoice: billing_pb2.Invoice | None, numbers: Mapping[str, str] | None = None
) -> dict[str, str] | None:
    """One document. A credit note names the invoice it credits (`credits`, its number from `numbers`, the
    listed documents by id): "Credit note INV-7 −300" alone does not say which purchase got money back."""
    if invoice is None or not invoice.number:
        return None
    total = invoice.total
    issued = to_datetime(invoice.issued_at) if invoice.HasField("issued_at") else None
    credit_note = invoice.kind == billing_pb2.DOCUMENT_KIND_CREDIT_NOTE
    return {
        "id": invoice.id,
        "number": invoice.number,
        "amount": _money(total),
        "currency": total.currency,
        "date": issued.date().isoformat() if issued else "",
        "kind": "Credit note" if credit_note else "Receipt",
        "credits": (numbers or {}).get(invoice.credits_invoice_id, "") if credit_note else "",
    }


def _documents_view(
    documents: list[billing_pb2.Invoice], invoice: billing_pb2.Invoice | None
) -> list[dict[str, str]]:
    # A credit note credits an invoice of its own session, which is listed beside it (or is the page's invoice).
    numbers = {d.id: d.number for d in (*documents, *([invoice] if invoice else [])) if d.number}
    return [v for v in (_invoice_view(d, numbers) for d in documents) if v is not None]


def _minor(money: common_pb2.Money) -> int:
    try:
        return int(money.amount_minor or "0")
    except ValueError:
        return 0


def _refund_view(session: session_pb2.Session | None) -> dict[str, str] | None:
    """What went back to the customer, in the session's currency and exponent (None while nothing did)."""
    if session is None:
        return None
    refunded = _minor(session.amount_refunded)
    state = refund_state(
        _minor(session.amount),
        refunded,
        refunded_in_full=session.status == session_pb2.SESSION_STATUS_REFUNDED,
    )
    if state is None:
        return None
    return {
        "amount": format_minor(refunded, session.amount.exponent),
        "currency": session.amount.currency,
        "status": state,
    }


def _time_text(message: Any, field: str) -> str | None:
    if not message.HasField(field):
        return None
    return to_datetime(getattr(message, field)).strftime("%Y-%m-%d %H:%M UTC")


def _key_view(key: keys_pb2.ApiKey | None, seller: str = "") -> dict[str, Any] | None:
    if key is None:
        return None
    granted = list(key.granted_scopes) or ["*"]
    scopes = list(key.scopes) or ["*"]
    return {
        "scopes_text": scope_words(scopes, seller),
        "granted_text": scope_words(granted, seller),
        "hint": key.hint,
        "revealed": key.revealed,
        "can_reveal": not key.revealed and key.status == keys_pb2.KEY_STATUS_VALID and not key.rolled_from_id,
        "active": key.status == keys_pb2.KEY_STATUS_VALID,
        "status_text": _STATUS_TEXT.get(key.status, "not available"),
        "scopes": scopes,
        "granted": granted,
        "granted_all": granted == ["*"],
        "ip_allowlist": list(key.ip_allowlist),
        "created": _time_text(key, "created_at"),
        "last_used": _time_text(key, "last_used_at"),
        "expires": _time_text(key, "expires_at"),
    }


def _previous_keys_view(keys: list[keys_pb2.ApiKey]) -> list[dict[str, str | None]]:
    """Older keys of the purchase that still verify (a roll's grace period): their hint and end, never more."""
    return [{"hint": k.hint, "until": _time_text(k, "expires_at")} for k in keys]


async def _live_predecessors(
    request: web.Request, portal: PortalSession, key: keys_pb2.ApiKey | None
) -> list[keys_pb2.ApiKey]:
    """The keys this purchase's current key replaced that still work (rolled with a grace period), newest
    first. Without them the customer would believe the old secret dead while it still opens the API.

    One read of the session's own keys (ListKeys by session_id), following the roll chain (rolled_from_id)
    through them. A roll's grace ends at most MAX_GRACE_PERIOD_SECONDS after it (the new key's created_at), so
    an older roll is not looked into at all."""
    if key is None or not key.rolled_from_id or key.status != keys_pb2.KEY_STATUS_VALID:
        return []
    rolled_ago = datetime.now(UTC) - to_datetime(key.created_at)
    if rolled_ago.total_seconds() > MAX_GRACE_PERIOD_SECONDS + 60:  # 60 s: the roll's own clock and commit
        return []
    try:
        reply = await request.app[CLIENTS].keys.ListKeys(
            keys_pb2.ListKeysRequest(
                merchant_id=portal.merchant_id, mode=key.mode, session_id=portal.session_id, limit=100
            )
        )
    except grpc.aio.AioRpcError as error:
        log.info("portal: previous keys unavailable", extra={"grpc_code": error.code().name})
        return []
    by_id = {listed.id: listed for listed in reply.keys if listed.session_id == portal.session_id}
    found: list[keys_pb2.ApiKey] = []
    wanted = key.rolled_from_id
    for _ in range(len(by_id)):  # a chain visits each key once
        listed = by_id.get(wanted)
        if listed is None:
            break
        if listed.status == keys_pb2.KEY_STATUS_VALID:
            found.append(listed)
        wanted = listed.rolled_from_id
    return found


def _usage_view(usage: keys_pb2.CustomerKeyUsage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    days = [(d.day, int(d.count)) for d in usage.days]
    return {
        "total": int(usage.total),
        "bars": usage_bars(days),
        "first": days[0][0] if days else "",
        "last": days[-1][0] if days else "",
    }


def _page_mode(key: keys_pb2.ApiKey | None, session: session_pb2.Session | None) -> common_pb2.Mode:
    """The session's mode: its customer key has it; before the key exists, the session itself."""
    if key is not None:
        return key.mode
    return session.mode if session is not None else common_pb2.MODE_UNSPECIFIED


async def _portal_page(
    request: web.Request,
    portal: PortalSession,
    *,
    secret: str | None = None,
    status: int = 200,
    error: dict[str, str] | None = None,
    notice: str | None = None,
    link: keys_pb2.AccessLink | None = None,
) -> web.Response:
    invoice, (key, usage), session, merchant_name = await asyncio.gather(
        _invoice(request, portal),
        _key_and_usage(request, portal),
        _session(request, portal),
        _merchant_name(request, portal),
    )
    subject = link.access_token.subject if link is not None else ""
    mode = _page_mode(key, session)
    support, documents, proof, previous = await asyncio.gather(
        _support(request, portal, mode),
        _documents(request, portal, subject, mode),
        _email_proof_view(request, portal, subject, mode, session),
        _live_predecessors(request, portal, key),
    )
    # The merchant's name, as the checkout page showed it; else the seller its invoices print.
    seller = merchant_name or support["seller"] or ""
    return _render(
        request,
        "portal.html",
        status=status,
        seller=seller,
        test_mode=mode == common_pb2.MODE_TEST,
        invoice=_invoice_view(invoice),
        refund=_refund_view(session),
        documents=_documents_view(documents, invoice),
        max_receipts=MAX_RECEIPTS,
        proof=proof,
        key=_key_view(key, seller),
        previous_keys=_previous_keys_view(previous),
        usage=_usage_view(usage),
        secret=secret,
        csrf_token=portal.csrf_token,
        support_email=support["email"],
        support_url=support["url"],
        contact_form=bool(support["email"]) and request.app[SUPPORT_MAIL] is not None,
        max_message_chars=portal_support.MAX_MESSAGE_CHARS,
        error=error,
        notice=notice,
    )


async def access(request: web.Request) -> web.Response:
    token = request.query.get("token")
    if token is not None:
        return await _exchange(request, token, request.query.get("proof", ""))
    portal = await _current_session(request)
    if portal is None:
        if request.headers.get("Sec-Fetch-Site") == "cross-site":
            # A cross-site redirect chain (a mail link): the Strict cookie was withheld; re-open from here.
            return _render(request, "continue.html")
        return _refuse(request, 401, "no_portal_session", "your access session has ended")
    link = await _current_link(request, portal)
    if isinstance(link, tuple):
        if link[0] == 401:
            await _end_session(request)
        return _refuse(request, *link)
    return await _portal_page(request, portal, link=link)


async def _exchange(request: web.Request, token: str, proof: str) -> web.Response:
    """The link's token for a portal cookie. A link from the customer's mail also carries `proof` (the keys
    service checks it): its visitor read the mail sent to the purchase's address, so the portal session
    starts with the address proven (portal_email_proof.py)."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return _refuse(request, 401, "token_invalid", "this access link is not valid")
    try:
        claims = await request.app[CLIENTS].keys.VerifyAccessToken(
            keys_pb2.VerifyAccessTokenRequest(token=token, mail_proof=proof[:MAX_PROOF_CHARS])
        )
    except grpc.aio.AioRpcError as error:
        refusal = refusal_for(error)
        if refusal.status == 401:
            code = refusal.code if refusal.code != "unauthenticated" else "token_invalid"
            message = (
                "this access link has expired" if code == "token_expired" else "this access link is not valid"
            )
            return _refuse(request, 401, code, message)
        return _refuse(request, 503, UNAVAILABLE_CODE, _UNAVAILABLE_TEXT)
    session_key, lifetime = await _open_session(request, claims)
    if claims.mail_proven:
        request.app[METRICS].count_portal_proof("proven_by_mail_link")
    response = web.Response(status=303, headers={"Location": "/access"})
    browser_session.set_session_cookie(response, COOKIE, session_key, max_age=lifetime, secure=True)
    _harden(response, secrets.token_urlsafe(8))
    return response


@dataclass(frozen=True)
class _Post:
    portal: PortalSession
    form: Any
    link: keys_pb2.AccessLink


async def _guard_post(request: web.Request) -> _Post | web.Response:
    """Every portal form: another site's request, no session, a wrong CSRF token or a dead link is refused
    before anything is read or changed."""
    # The Strict cookie already keeps another site's POST out; Sec-Fetch-Site also catches a sibling origin
    # on the same site (same-site) and says "cross-site" plainly. Browsers always send it on POSTs.
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return _refuse(request, 403, "csrf_failed", "this form must be sent from the portal page itself")
    portal = await _current_session(request)
    if portal is None:
        return _refuse(request, 401, "no_portal_session", "your access session has ended")
    form = await read_form(request)
    if form is None:
        return _refuse(request, 400, "invalid_form", "the form could not be read")
    if not browser_session.csrf_matches(form, portal.csrf_token):
        return _refuse(request, 403, "csrf_failed", "the form has expired; reload the page and try again")
    link = await _current_link(request, portal)
    if isinstance(link, tuple):
        return _refuse(request, *link)
    return _Post(portal, form, link)


async def _form_refusal(
    request: web.Request, post: _Post, status: int, code: str, message: str, field: str | None = None
) -> web.Response:
    """A refused form: the portal page again with the portal's own sentence for `code` next to the form (HTML),
    or the JSON error with `message` and `field`."""
    if not _wants_html(request):
        body: dict[str, Any] = {"code": code, "message": message}
        if field:
            body["field"] = field
        response = web.json_response({"error": body}, status=status)
        _harden(response, secrets.token_urlsafe(8))
        return response
    return await _portal_page(
        request,
        post.portal,
        status=status,
        error={"code": code, "message": customer_message(code), "field": field or ""},
        link=post.link,
    )


async def _rpc_refusal(request: web.Request, post: _Post, error: grpc.aio.AioRpcError) -> web.Response:
    refusal = refusal_for(error)
    if refusal.unavailable or refusal.status not in (400, 404, 409, 429):
        return await _form_refusal(request, post, 503, UNAVAILABLE_CODE, _UNAVAILABLE_TEXT)
    field = _FIELD_BY_CODE.get(refusal.code)
    return await _form_refusal(request, post, refusal.status, refusal.code, refusal.message, field)


_FIELD_BY_CODE = {
    "invalid_scopes": "scopes",
    "scope_not_granted": "scopes",
    "invalid_ip_allowlist": "ip_allowlist",
    "invalid_expires_at": "expires_at",
    "current_key_mismatch": "current_key",
    "invalid_grace_period": "grace_period",
    "invalid_message": "message",
}


def _key_json(key: keys_pb2.ApiKey) -> dict[str, Any]:
    return {
        "key_id": key.id,
        "hint": key.hint,
        "status": _STATUS_TEXT.get(key.status, "not available"),
        "scopes": list(key.scopes),
        "granted_scopes": list(key.granted_scopes),
        "ip_allowlist": list(key.ip_allowlist),
        "expires_at": _time_text(key, "expires_at"),
    }


def _json(payload: dict[str, Any]) -> web.Response:
    response = web.json_response(payload)
    _harden(response, secrets.token_urlsafe(8))
    return response


async def reveal(request: web.Request) -> web.Response:
    post = await _guard_post(request)
    if isinstance(post, web.Response):
        return post
    portal = post.portal
    try:
        revealed = await request.app[CLIENTS].keys.RevealCustomerKey(
            keys_pb2.RevealCustomerKeyRequest(session_id=portal.session_id, access_token_id=portal.jti)
        )
    except grpc.aio.AioRpcError as error:
        refusal = refusal_for(error)
        if refusal.status == 409:
            message = {
                "already_revealed": "your API key was already revealed and cannot be shown again",
            }.get(refusal.code, "your API key cannot be revealed; please contact support")
            return _refuse(request, 409, refusal.code, message)
        if refusal.status == 404:
            return _refuse(request, 404, "not_found", "your API key is not ready yet")
        return _refuse(request, 503, UNAVAILABLE_CODE, _UNAVAILABLE_TEXT)
    if not _wants_html(request):
        return _json({"key_id": revealed.key.id, "secret": revealed.secret})
    return await _portal_page(request, portal, secret=revealed.secret, link=post.link)


async def key_settings(request: web.Request) -> web.Response:
    """Narrow the scopes, set the IP allow-list, bring the expiry forward. Each field present in the form is
    applied; the keys service refuses a scope outside the merchant's grant (a crafted post) and a bad CIDR."""
    post = await _guard_post(request)
    if isinstance(post, web.Response):
        return post
    form = post.form
    update = keys_pb2.UpdateCustomerKeySettingsRequest(
        session_id=post.portal.session_id, access_token_id=post.portal.jti
    )
    try:
        if "scopes" in form or "scope" in form or form.get("scopes_form") == "1":
            # Checkboxes (name="scope", one per granted scope) or a free list (name="scopes").
            chosen = [v for v in form.getall("scope", []) if isinstance(v, str)]
            typed = form.get("scopes")
            if isinstance(typed, str):
                chosen += split_list(typed)
            if not chosen:
                raise FormError("invalid_scopes", "choose at least one scope", "scopes")
            if len(chosen) > 64:
                raise FormError("invalid_scopes", "too many scopes", "scopes")
            update.set_scopes = True
            update.scopes.extend(chosen)
        if "ip_allowlist" in form:
            raw = form.get("ip_allowlist")
            if not isinstance(raw, str) or len(raw) > 4096:
                raise FormError(
                    "invalid_ip_allowlist", "ip_allowlist: at most 32 CIDR blocks", "ip_allowlist"
                )
            update.set_ip_allowlist = True
            update.ip_allowlist.extend(split_list(raw))
        expiry = parse_expiry(form.get("expires_at"))
        if expiry is not None:
            update.expires_at.CopyFrom(timestamp(expiry))
    except FormError as error:
        return await _form_refusal(request, post, 400, error.code, error.message, error.field)
    if not (update.set_scopes or update.set_ip_allowlist or update.HasField("expires_at")):
        return await _form_refusal(request, post, 400, "nothing_to_change", "change at least one setting")
    try:
        key = await request.app[CLIENTS].keys.UpdateCustomerKeySettings(update)
    except grpc.aio.AioRpcError as error:
        return await _rpc_refusal(request, post, error)
    if not _wants_html(request):
        return _json(_key_json(key))
    return await _portal_page(request, post.portal, notice="Your key's settings were saved.", link=post.link)


async def key_roll(request: web.Request) -> web.Response:
    """A new secret, shown once in this response only; the old one stops now or after the chosen grace."""
    post = await _guard_post(request)
    if isinstance(post, web.Response):
        return post
    current = post.form.get("current_key")
    if not isinstance(current, str) or not current.strip():
        return await _form_refusal(
            request, post, 400, "missing_current_key", "paste your current key to roll it", "current_key"
        )
    try:
        grace = parse_grace(post.form.get("grace_period"))
    except FormError as error:
        return await _form_refusal(request, post, 400, error.code, error.message, error.field)
    try:
        rolled = await request.app[CLIENTS].keys.CustomerRollKey(
            keys_pb2.CustomerRollKeyRequest(
                session_id=post.portal.session_id,
                access_token_id=post.portal.jti,
                current_secret=current[:200],
                grace_period_seconds=grace,
            )
        )
    except grpc.aio.AioRpcError as error:
        return await _rpc_refusal(request, post, error)
    if not _wants_html(request):
        return _json(
            {**_key_json(rolled.key), "secret": rolled.secret, "previous": _key_json(rolled.previous)}
        )
    notice = (
        "Your key was rolled. The old key stopped working."
        if grace == 0
        else (
            f"Your key was rolled. The old key keeps working until {_time_text(rolled.previous, 'expires_at')}."
        )
    )
    return await _portal_page(request, post.portal, secret=rolled.secret, notice=notice, link=post.link)


async def key_revoke(request: web.Request) -> web.Response:
    post = await _guard_post(request)
    if isinstance(post, web.Response):
        return post
    if post.form.get("confirm") != "yes":
        return await _form_refusal(
            request, post, 400, "missing_confirm", "tick the box to confirm the revocation", "confirm"
        )
    try:
        key = await request.app[CLIENTS].keys.CustomerRevokeKey(
            keys_pb2.CustomerRevokeKeyRequest(
                session_id=post.portal.session_id, access_token_id=post.portal.jti
            )
        )
    except grpc.aio.AioRpcError as error:
        return await _rpc_refusal(request, post, error)
    if not _wants_html(request):
        return _json(_key_json(key))
    return await _portal_page(request, post.portal, notice="Your key was revoked.", link=post.link)


async def support_contact(request: web.Request) -> web.Response:
    """Mail the merchant the customer's message with the session reference. Rate limited per session and
    per merchant (counted by the keys service, so every replica shares the limit), size limited."""
    post = await _guard_post(request)
    if isinstance(post, web.Response):
        return post
    settings = request.app[SUPPORT_MAIL]
    key = await _customer_key(request, post.portal)
    support = await _support(
        request, post.portal, key.mode if key is not None else common_pb2.MODE_UNSPECIFIED
    )
    to = support["email"]
    if settings is None or not to or not portal_support.is_address(to):
        return await _form_refusal(
            request,
            post,
            409,
            "contact_unavailable",
            "this seller takes no messages here; use the contact shown",
        )
    try:
        text = portal_support.clean_message(post.form.get("message"))
        reply_to = portal_support.clean_reply_to(post.form.get("reply_to"))
    except portal_support.SupportFormError as error:
        return await _form_refusal(request, post, 400, error.code, error.message, error.field)
    try:
        await request.app[CLIENTS].keys.RecordSupportMessage(
            keys_pb2.RecordSupportMessageRequest(
                session_id=post.portal.session_id,
                merchant_id=post.portal.merchant_id,
                chars=len(text),
                access_token_id=post.portal.jti,
            )
        )
    except grpc.aio.AioRpcError as error:
        return await _rpc_refusal(request, post, error)
    invoice = await _invoice(request, post.portal)
    message = portal_support.build_message(
        settings,
        to=to,
        session_reference=post.portal.session_id,
        invoice_number=invoice.number if invoice is not None and invoice.number else None,
        text=text,
        reply_to=reply_to,
    )
    unsent = await _mail_or_refusal(request, post, settings, message, "your message could not be sent")
    if unsent is not None:
        return unsent
    if not _wants_html(request):
        return _json({"sent": True, "session_reference": post.portal.session_id})
    return await _portal_page(
        request, post.portal, notice="Your message was sent to the seller.", link=post.link
    )


async def _mail_or_refusal(
    request: web.Request,
    post: _Post,
    settings: portal_support.SupportMailSettings,
    message: EmailMessage,
    failed: str,
) -> web.Response | None:
    """Send a portal mail; None once sent, else the 503 refusal (the mail server is the dependency)."""
    try:
        await portal_support.send(settings, message)
    except Exception as error:  # aiosmtplib errors, OSError, timeouts
        log.warning(
            "portal: mail not sent", extra={"error": type(error).__name__, "subject": message["Subject"]}
        )
        return await _form_refusal(
            request, post, 503, "mail_unavailable", f"{failed}; please try again later"
        )
    return None


async def receipts_code(request: web.Request) -> web.Response:
    """Mail the purchase's address a code that, entered in this browser, shows every receipt of the customer
    with this merchant. Three codes a purchase an hour, whichever browser asks."""
    post = await _guard_post(request)
    if isinstance(post, web.Response):
        return post
    portal = post.portal
    if portal.email_proven:
        return await _proof_done(request, post, "Your email address is already confirmed.")
    settings = request.app[SUPPORT_MAIL]
    key = await _customer_key(request, portal)
    mode = key.mode if key is not None else common_pb2.MODE_UNSPECIFIED
    address = await _provable_address(request, portal, post.link.access_token.subject, mode)
    if settings is None or not address:
        return await _form_refusal(
            request, post, 409, "email_proof_unavailable", "this purchase has no email address to confirm"
        )
    code = portal_email_proof.new_code()
    session_key = request.cookies.get(COOKIE, "")
    if not await request.app[PORTAL_SESSIONS].issue_email_code(session_key, portal.session_id, code):
        request.app[METRICS].count_portal_proof("rate_limited")
        return await _form_refusal(
            request, post, 429, "rate_limited", "three codes an hour were sent for this purchase; try later"
        )
    # Named and answerable as the access mail is: the seller in From and in the text, replies to its contact.
    support = await _support(request, portal, mode)
    message = portal_email_proof.build_code_message(
        settings,
        to=address,
        code=code,
        session_reference=portal.session_id,
        minutes=EMAIL_CODE_LIFETIME_S // 60,
        merchant_name=await _merchant_name(request, portal) or support["seller"] or "",
        reply_to=support["email"] or "",
    )
    unsent = await _mail_or_refusal(request, post, settings, message, "the code could not be sent")
    if unsent is not None:
        request.app[METRICS].count_portal_proof("mail_failed")
        return unsent
    request.app[METRICS].count_portal_proof("code_sent")
    to = portal_email_proof.masked(address)
    if not _wants_html(request):
        return _json({"sent": True, "to": to})
    return await _portal_page(
        request, portal, notice=f"We sent a code to {to}. Enter it below.", link=post.link
    )


async def receipts_verify(request: web.Request) -> web.Response:
    """The mailed code, entered: right, and this browser's portal lists every receipt of the customer."""
    post = await _guard_post(request)
    if isinstance(post, web.Response):
        return post
    if post.portal.email_proven:
        return await _proof_done(request, post, "Your email address is already confirmed.")
    code = portal_email_proof.clean_code(post.form.get("code"))
    if code is None:
        return await _form_refusal(
            request, post, 400, "invalid_code", "enter the 8 digits of the code we mailed you", "code"
        )
    checked = await request.app[PORTAL_SESSIONS].check_email_code(request.cookies.get(COOKIE, ""), code)
    request.app[METRICS].count_portal_proof(_PROOF_RESULT[checked])
    if checked == "wrong":
        return await _form_refusal(request, post, 400, "invalid_code", "that is not the code we sent", "code")
    if checked == "no_code":
        return await _form_refusal(
            request, post, 400, "code_expired", "the code has expired; ask for a new one", "code"
        )
    if checked == "too_many_attempts":
        return await _form_refusal(
            request, post, 429, "too_many_attempts", "too many wrong codes; ask for a new one", "code"
        )
    return await _proof_done(request, post, "Your email address is confirmed: here are all your receipts.")


_PROOF_RESULT = {
    "proven": "proven_by_code",
    "wrong": "wrong_code",
    "no_code": "code_expired",
    "too_many_attempts": "too_many_attempts",
}


async def _proof_done(request: web.Request, post: _Post, notice: str) -> web.Response:
    if not _wants_html(request):
        return _json({"proven": True})
    portal = dataclasses.replace(post.portal, email_proven=True)
    return await _portal_page(request, portal, notice=notice, link=post.link)


async def document_pdf(request: web.Request) -> web.Response:
    """One of the customer's receipts or credit notes as a PDF: only a document the page lists is served
    (this purchase's own; every one of the customer's with this merchant and mode once the purchase's email
    address is proven in this browser). Another id is 404."""
    portal = await _current_session(request)
    if portal is None:
        return _refuse(request, 401, "no_portal_session", "your access session has ended")
    link = await _current_link(request, portal)
    if isinstance(link, tuple):
        return _refuse(request, *link)
    wanted = request.match_info["id"]
    key = await _customer_key(request, portal)
    documents = await _documents(
        request, portal, link.access_token.subject, key.mode if key else common_pb2.MODE_UNSPECIFIED
    )
    document = next((d for d in documents if d.id == wanted), None)
    if document is None or key is None:
        return _refuse(request, 404, "not_found", "no such receipt")
    return await _pdf(request, portal, document, key.mode)


async def _pdf(
    request: web.Request,
    portal: PortalSession,
    invoice: billing_pb2.Invoice,
    mode: common_pb2.Mode = common_pb2.MODE_UNSPECIFIED,
) -> web.Response:
    try:
        document = await request.app[CLIENTS].billing.RenderInvoice(
            billing_pb2.RenderInvoiceRequest(
                merchant_id=portal.merchant_id,
                invoice_id=invoice.id,
                format=billing_pb2.RENDER_FORMAT_PDF,
                mode=mode,
            )
        )
    except grpc.aio.AioRpcError:
        return _refuse(request, 503, UNAVAILABLE_CODE, "the receipt is temporarily unavailable")
    filename = "".join(c for c in (document.filename or f"{invoice.number}.pdf") if c.isalnum() or c in "-_.")
    response = web.Response(
        body=document.content,
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename or "receipt.pdf"}"'},
    )
    _harden(response, secrets.token_urlsafe(8))
    return response


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
    return await _pdf(request, portal, invoice)


def setup(app: web.Application) -> None:
    browser_session.setup_templates(app, TEMPLATES)
    app.router.add_get("/access", access)
    app.router.add_post("/access/reveal", reveal)
    app.router.add_get("/access/receipt.pdf", receipt)
    app.router.add_get("/access/documents/{id}.pdf", document_pdf)
    app.router.add_post("/access/key/settings", key_settings)
    app.router.add_post("/access/key/roll", key_roll)
    app.router.add_post("/access/key/revoke", key_revoke)
    app.router.add_post("/access/support", support_contact)
    app.router.add_post("/access/receipts/code", receipts_code)
    app.router.add_post("/access/receipts/verify", receipts_verify)
