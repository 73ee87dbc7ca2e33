"""The customer's checkout page and the merchant's provider-checkout retry (thin handlers).

The coordination with the payment providers (create the provider's page at most once, record it, close it
first on expiry) is service_layer.provider_checkouts; this module parses the request, calls it, and renders.

A card session (created without `provider`, contract §6a) shows one button per card rail this gateway can take
for its mode; the buttons are one form, `POST /checkout/pay` (`checkout_pay`), protected like the buyer's
details form below, which creates that rail's payment (or finds it again) and sends the customer to the
provider's page with a 303. The page's CSP lets its form go to the offered rails' page origins and nowhere
else.
"""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from collections.abc import Mapping
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import grpc
import jinja2
import segno
from aiohttp import web

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate.session.v1 import session_pb2, session_pb2_grpc
from paygate_runtime.api_objects import STATUS_NAMES, customer_json, session_detail
from webhook_gateway.adapters.provider_errors import ProviderError
from webhook_gateway.entrypoints import browser_session
from webhook_gateway.entrypoints.app_keys import CLIENTS, CONFIG, PROVIDER_CHECKOUTS
from webhook_gateway.entrypoints.http_errors import ApiError, raise_for_rpc_error
from webhook_gateway.entrypoints.merchant_auth import authenticate
from webhook_gateway.entrypoints.portal_email_proof import masked
from webhook_gateway.entrypoints.request_body import format_minor, read_form
from webhook_gateway.entrypoints.rpc_refusals import UNAVAILABLE_CODE, refusal_for
from webhook_gateway.service_layer import checkout_rules as rules

log = logging.getLogger(__name__)

_S = session_pb2


async def create_provider_checkout(request: web.Request) -> web.Response:
    """`POST /v1/sessions/{id}/provider_checkout`: the merchant's retry after a create without a provider URL."""
    merchant = await authenticate(request)
    sessions = request.app[CLIENTS].session
    try:
        session = await sessions.GetSession(
            session_pb2.GetSessionRequest(session_id=request.match_info["id"], **merchant.scope)
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    flows = request.app[PROVIDER_CHECKOUTS]
    if session.provider not in ("stripe", "onecom"):
        raise ApiError(
            409, "not_a_provider_session", "only stripe and onecom sessions have a provider checkout page"
        )
    if flows.provider_for(session) is None:
        raise ApiError(
            409, "provider_not_configured", f"no {session.provider} API key is configured on this gateway"
        )
    if session.status != _S.SESSION_STATUS_CREATED and not session.provider_session_id:
        raise ApiError(409, "session_not_open", "the session is no longer open for payment")
    session, problem = await flows.ensure(sessions, session)
    if problem is not None:
        raise ApiError(503 if problem.transient else 409, problem.code, problem.message)
    return web.json_response(session_detail(session, None))


# ---- the checkout page -------------------------------------------------------------------------------


@cache
def templates() -> jinja2.Environment:
    # Our own Environment (not aiohttp_jinja2.setup) so that other page areas can keep theirs.
    return jinja2.Environment(
        loader=jinja2.PackageLoader("webhook_gateway", "templates"), autoescape=True, enable_async=False
    )


STATUS_LABELS = {
    "created": "Awaiting payment",
    "pending": "Payment processing",
    "paid": "Paid",
    "failed": "Payment failed",
    "expired": "Expired",
    "refunded": "Refunded",  # contract §8: the whole amount went back to the customer
}
# The states no payment event moves a session out of (contract §6; session_service.domain.states.TERMINAL,
# which a unit test holds this to): once the page shows one, it says so and stops asking for the status.
FINAL_STATUSES: tuple[str, ...] = ("paid", "failed", "expired", "refunded")


def eip681_uri(payment: session_pb2.Web3Payment, amount_minor: int) -> str:
    """EIP-681 payment request: native coin `value` in wei, or an ERC-20 `transfer` in token base units."""
    if payment.token:
        return (
            f"ethereum:{payment.token}@{payment.chain_id}/transfer"
            f"?address={payment.deposit_address}&uint256={amount_minor}"
        )
    return f"ethereum:{payment.deposit_address}@{payment.chain_id}?value={amount_minor}"


def qr_svg(uri: str) -> str:
    # segno draws only path data from the URI, so the SVG carries no text that needs escaping.
    return segno.make(uri, error="m").svg_inline(scale=4, border=4, dark="#111", light="#fff")


def display_amount(amount_minor: int, exponent: int) -> str:
    """Exact major units; token amounts drop trailing zeros (0.05 ETH, not 0.050000000000000000)."""
    text = format_minor(amount_minor, exponent)
    if exponent > 2 and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _safe_link(url: str) -> str | None:
    # Autoescaping does not stop a `javascript:` URL in href; only web links are ever rendered.
    return url if url.startswith(("https://", "http://")) else None


def page_context(
    session: session_pb2.Session,
    merchant_name: str | None,
    problem: ProviderError | None,
    result: str | None,
    *,
    provider_api: bool = False,
    customer_form: dict[str, Any] | None = None,
    card_rails: list[str] | None = None,
    pay_csrf_token: str | None = None,
    late_payment: str | None = None,
) -> dict[str, Any]:
    """The template's context. `provider_api`: this gateway creates the payment at the session's provider
    (so the page links to the provider's page, or says the card rail is unavailable when it has none).
    `customer_form`: the buyer's details are asked for first (see needs_customer), in place of the pay
    buttons. `card_rails`: a card session's rails, one button each (none: the seller has set up no card
    payments); `pay_csrf_token` goes in their form. `late_payment`: the quarantine status ("open",
    "refunded", "dismissed") of money paid after the session closed (see late_payment_status)."""
    status = STATUS_NAMES[session.status]
    amount_minor = int(session.amount.amount_minor)
    context: dict[str, Any] = {
        "session_id": session.id,
        "merchant_name": merchant_name,
        "description": session.description or "API access",
        "amount": display_amount(amount_minor, session.amount.exponent),
        "amount_minor": amount_minor,
        "currency": session.amount.currency,
        "status": status,
        "status_label": STATUS_LABELS[status],
        "labels": STATUS_LABELS,
        "final_statuses": list(FINAL_STATUSES),
        "provider": session.provider,
        "test_mode": session.mode != common_pb2.MODE_LIVE,
        "stripe_url": _safe_link(session.provider_checkout_url) if session.provider_checkout_url else None,
        "stripe_problem": problem.message if problem is not None else None,
        "provider_api": provider_api,
        "provider_url": _safe_link(session.provider_checkout_url) if session.provider_checkout_url else None,
        "result": result if result in ("success", "cancel") else None,
        "web3": None,
        "customer_form": customer_form,
        "card": None,
        # paygate mails the access link to this address once the session is fulfilled; the page shows it
        # masked, as the portal does, so a shared checkout link does not give the address away.
        "mailed_to": masked(session.customer_email) if session.customer_email else None,
        "fulfilled": session.fulfilment_status == "done",
        "late_payment": None,
    }
    if late_payment in LATE_PAYMENT_LABELS and status in ("expired", "failed"):
        context["status_label"] = LATE_PAYMENT_LABELS[late_payment]
        # Only a late payment on an expired session can be accepted (session_service accept_late_payment);
        # a failed session's money can only be refunded.
        context["late_payment"] = {"status": late_payment, "can_accept": status == "expired"}
    if card_rails is not None:
        context["card"] = {
            "rails": [{"name": name, "label": rules.RAIL_LABELS[name]} for name in card_rails],
            "csrf_token": pay_csrf_token,
        }
    if session.provider == "web3" and session.HasField("payment"):
        uri = eip681_uri(session.payment, amount_minor)
        context["web3"] = {
            "chain_id": session.payment.chain_id,
            "deposit_address": session.payment.deposit_address,
            "token": session.payment.token or None,
            "uri": uri,
            "qr_svg": qr_svg(uri),
            "min_confirmations": session.payment.min_confirmations,
        }
    return context


# ---- money paid after the session closed ---------------------------------------------------------------
# Such money is quarantined as `payment_on_closed_session` for the merchant to accept (the session then
# becomes paid) or refund; the card was charged. The page must not send the customer to pay a second time, so
# it says the payment arrived and follows the merchant's decision. The session carries no trace of the entry
# (no history row, no alert): the page reads the session's own entries (ListQuarantine by session_id).

QUARANTINE_LATE = "payment_on_closed_session"
# More than a session ever has: one entry per payment the provider reported after the session closed.
_LATE_ENTRIES_READ = 100
# The entry's status, most telling first: an open entry is what the customer waits on.
LATE_PAYMENT_LABELS = {
    "open": "Payment under review",
    "refunded": "Payment refunded",
    "dismissed": "Closed",
}


async def late_payment_status(
    sessions: session_pb2_grpc.SessionServiceStub, session: session_pb2.Session
) -> str | None:
    """The status of the quarantine entry of money paid after `session` closed, or None (none, the session is
    not closed for money, or the quarantine is unreadable: the page then says what the session's status
    says)."""
    if session.status not in (_S.SESSION_STATUS_EXPIRED, _S.SESSION_STATUS_FAILED):
        return None
    try:
        reply = await sessions.ListQuarantine(
            session_pb2.ListQuarantineRequest(
                merchant_id=session.merchant_id,
                mode=session.mode,
                session_id=session.id,
                limit=_LATE_ENTRIES_READ,
            )
        )
    except grpc.aio.AioRpcError as error:
        log.info("checkout: quarantine unavailable", extra={"grpc_code": error.code().name})
        return None
    # The session test stays: a session service of the previous release ignores session_id during a rolling
    # deploy and answers the merchant's newest entries.
    found = {e.status for e in reply.entries if e.session_id == session.id and e.reason == QUARANTINE_LATE}
    return next((status for status in LATE_PAYMENT_LABELS if status in found), None)


def _security_headers(nonce: str, form_origins: tuple[str, ...] = ()) -> dict[str, str]:
    # A form post's redirect is held to form-action too: the card rails' form may end on their pages. img-src
    # 'self' is for the favicon the page links (/favicon.svg).
    form_action = " ".join(("'self'", *form_origins))
    policy = (
        "default-src 'none'; "
        f"script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        f"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action {form_action}; "
        "frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }


def _render(
    template: str, http_status: int, *, form_origins: tuple[str, ...] = (), **context: Any
) -> web.Response:
    nonce = secrets.token_urlsafe(16)
    html = templates().get_template(template).render(nonce=nonce, **context)
    return web.Response(
        text=html,
        status=http_status,
        content_type="text/html",
        charset="utf-8",
        headers=_security_headers(nonce, form_origins),
    )


def _error_page(
    status: int, title: str, message: str, *, link: str | None = None, link_text: str | None = None
) -> web.Response:
    return _render(
        "checkout_error.html", status, title=title, message=message, link=link, link_text=link_text
    )


def _not_found() -> web.Response:
    return _error_page(
        404, "Checkout not found", "This checkout link is not valid. Ask the seller for a new one."
    )


async def _merchant_name(request: web.Request, merchant_id: str) -> str | None:
    try:
        merchant = await request.app[CLIENTS].keys.GetMerchant(
            keys_pb2.GetMerchantRequest(merchant_id=merchant_id)
        )
    except grpc.aio.AioRpcError:
        return None  # the page stays useful without the seller's name
    return merchant.name or None


# ---- the buyer's details (contract §9) -----------------------------------------------------------------
# A live invoice names its buyer; a live session created without the buyer's name or country asks for them on
# this page before the pay buttons. The form is a same-origin POST protected like the portal's forms: the
# browser's Sec-Fetch-Site (or Origin) must say it came from our own page, and a double-submit CSRF token (an
# HttpOnly SameSite=Lax cookie the page sets, echoed in a hidden field) must match in constant time.
# Lax, not Strict: the link in the customer's mail is a cross-site navigation, on which a browser sends no
# Strict cookie, so opening it a second time made a new token and broke the first tab's form. A Lax cookie
# rides on that top-level link but still on no cross-site POST, which the origin check refuses as well.

CSRF_COOKIE = "paygate_checkout_csrf"
_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_CUSTOMER_CODES = {  # the session service's codes for what the customer typed, with the form field they name
    "missing_customer_name": "name",
    "invalid_customer_name": "name",
    "missing_customer_country": "country",
    "invalid_customer_country": "country",
}


def needs_customer(session: session_pb2.Session) -> bool:
    """A live session still open for payment whose buyer has no name or no country (contract §9)."""
    return (
        session.mode == common_pb2.MODE_LIVE
        and session.status == _S.SESSION_STATUS_CREATED
        and not (session.customer.name and session.customer.country)
    )


def _csrf_token(request: web.Request) -> str:
    """The browser's existing token (so that two open tabs both keep working), or a new one."""
    current = request.cookies.get(CSRF_COOKIE, "")
    return current if _TOKEN_RE.fullmatch(current) else secrets.token_urlsafe(32)


def _set_csrf_cookie(request: web.Request, response: web.Response, token: str) -> None:
    secure = request.secure or str(getattr(request.app[CONFIG], "public_url", "")).startswith("https://")
    response.set_cookie(CSRF_COOKIE, token, path="/checkout", httponly=True, samesite="Lax", secure=secure)


def _csrf_matches(request: web.Request, form: Mapping[str, Any]) -> bool:
    """The form's token is the browser's CSRF cookie (double submit): a cookie of our token's shape, compared
    in constant time by the portal's and dashboard's own check."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return _TOKEN_RE.fullmatch(cookie) is not None and browser_session.csrf_matches(form, cookie)


def _same_origin(request: web.Request) -> bool:
    return browser_session.same_origin(request, str(getattr(request.app[CONFIG], "public_url", "") or ""))


def _wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


def _form_text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


async def _page_response(
    request: web.Request,
    session: session_pb2.Session,
    *,
    status: int = 200,
    result: str | None = None,
    form_values: Mapping[str, str] | None = None,
    form_error: dict[str, str] | None = None,
) -> web.Response:
    """The checkout page of `session`: the buyer's form first when it is needed, else the pay buttons."""
    merchant_name = await _merchant_name(request, session.merchant_id)
    flows = request.app[PROVIDER_CHECKOUTS]
    if needs_customer(session):
        token = _csrf_token(request)
        values = form_values or {}
        context = page_context(
            session,
            merchant_name,
            None,
            result,
            provider_api=flows.provider_for(session) is not None,
            customer_form={
                "csrf_token": token,
                "name": values.get("name", session.customer.name),
                "country": values.get("country", session.customer.country),
                "error": form_error,
            },
        )
        response = _render("checkout.html", status, **context)
        _set_csrf_cookie(request, response, token)
        return response
    # The provider's page is created only once it can be shown: never while the buyer's form stands first.
    session, problem = await flows.ensure(request.app[CLIENTS].session, session, pause_after_failure=True)
    if session.provider == rules.CARD and session.status == _S.SESSION_STATUS_CREATED:
        # A card session: a button per rail of its mode, in a form that creates the chosen rail's payment.
        rails = flows.card_rails(session)
        pay_token = _csrf_token(request) if rails else None
        context = page_context(
            session, merchant_name, None, result, card_rails=rails, pay_csrf_token=pay_token
        )
        response = _render("checkout.html", status, form_origins=tuple(flows.page_origins(rails)), **context)
        if pay_token is not None:
            _set_csrf_cookie(request, response, pay_token)
        return response
    context = page_context(
        session,
        merchant_name,
        problem,
        result,
        provider_api=flows.provider_for(session) is not None,
        late_payment=await late_payment_status(request.app[CLIENTS].session, session),
    )
    return _render("checkout.html", status, **context)


def _customer_refusal(
    request: web.Request, status: int, code: str, message: str, field: str | None = None
) -> web.Response:
    if _wants_html(request):
        return _error_page(status, "Details not saved", message)
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return web.json_response({"error": body}, status=status, headers=_NO_STORE)


async def checkout_customer(request: web.Request) -> web.Response:
    """`POST /checkout/customer`: the buyer's name and country from the checkout page's form (contract §9).
    Saved through the session service, which fills only what the session lacks and only while it is open;
    then back to the page (303), which now shows the pay buttons."""
    if not _same_origin(request):
        return _customer_refusal(request, 403, "csrf_failed", "this form must be sent from the checkout page")
    form = await read_form(request)
    if form is None:
        return _customer_refusal(request, 400, "invalid_form", "the form could not be read")
    if not _csrf_matches(request, form):
        return _customer_refusal(
            request, 403, "csrf_failed", "the form has expired; reload the checkout page and try again"
        )
    try:
        session_id = str(uuid.UUID(_form_text(form, "session")))
    except ValueError:
        return _customer_refusal(request, 404, "not_found", "this checkout link is not valid")
    sessions = request.app[CLIENTS].session
    try:
        session = await sessions.GetSession(session_pb2.GetSessionRequest(session_id=session_id))
    except grpc.aio.AioRpcError as error:
        if refusal_for(error).status in (400, 404):
            return _customer_refusal(request, 404, "not_found", "this checkout link is not valid")
        return _customer_refusal(request, 503, UNAVAILABLE_CODE, "please try again shortly")
    values = {"name": _form_text(form, "name"), "country": _form_text(form, "country").upper()}
    problem: tuple[int, str, str, str | None] | None = None
    if not values["name"]:
        problem = (400, "missing_customer_name", "enter your name", "name")
    elif not values["country"]:
        problem = (400, "missing_customer_country", "enter your country", "country")
    else:
        try:
            session = await sessions.SetSessionCustomer(
                session_pb2.SetSessionCustomerRequest(
                    session_id=session.id,
                    merchant_id=session.merchant_id,
                    mode=session.mode,
                    customer=session_pb2.SessionCustomer(name=values["name"], country=values["country"]),
                )
            )
        except grpc.aio.AioRpcError as error:
            refusal = refusal_for(error)
            if refusal.status == 400:
                code = refusal.code
                problem = (400, code, _customer_message(code), _CUSTOMER_CODES.get(code))
            elif refusal.status == 409:
                problem = (409, refusal.code, "this checkout is no longer open", None)
            elif refusal.status == 404:
                return _customer_refusal(request, 404, "not_found", "this checkout link is not valid")
            else:
                return _customer_refusal(request, 503, UNAVAILABLE_CODE, "please try again shortly")
    if problem is not None:
        status, code, message, field = problem
        if not _wants_html(request) or status != 400 or not needs_customer(session):
            return _customer_refusal(request, status, code, message, field)
        # A browser gets its page back with the error beside the form and what it typed kept.
        return await _page_response(
            request,
            session,
            status=400,
            form_values=values,
            form_error={"code": code, "message": message, "field": field or ""},
        )
    if not _wants_html(request):
        return web.json_response({"id": session.id, "customer": customer_json(session)}, headers=_NO_STORE)
    return web.Response(status=303, headers={"Location": f"/checkout?session={session.id}", **_NO_STORE})


def _customer_message(code: str) -> str:
    return {
        "invalid_customer_name": "the name is too long or contains characters that cannot be printed",
        # Refused codes are mostly two letters that are no ISO code, "UK" above all: name the standard and GB.
        "invalid_customer_country": "enter the country as its ISO two-letter code, e.g. DE (GB for the United Kingdom)",
    }.get(code, "check what you entered")


# ---- a card session's pay buttons (contract §6a) ------------------------------------------------------
# `POST /checkout/pay` {session, provider, csrf_token}: the page's form, protected as the buyer's details form
# is (same origin by Sec-Fetch-Site/Origin, the double-submit token of the HttpOnly SameSite=Strict cookie). It
# does nothing the checkout link alone does not allow: it makes (once) the payment the chosen provider shows.
# A refusal is a page for a browser (with the way back to the checkout) and the JSON error for anyone else; it
# never tells more about a session than its own checkout page does.

_PAY_TITLES = {
    400: "Payment not started",
    403: "Checkout page out of date",
    404: "Checkout not found",
    409: "Payment not started",
    503: "Card payment unavailable",
}


def _pay_refusal(
    request: web.Request,
    status: int,
    code: str,
    message: str,
    *,
    session_id: str | None = None,
    field: str | None = None,
) -> web.Response:
    if _wants_html(request):
        back = f"/checkout?session={session_id}" if session_id else None
        return _error_page(
            status,
            _PAY_TITLES.get(status, "Payment not started"),
            message,
            link=back,
            link_text="Back to the checkout",
        )
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return web.json_response({"error": body}, status=status, headers=_NO_STORE)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _provider_problem(rail: str, problem: ProviderError) -> tuple[int, str, str]:
    """What the customer is told when the provider gave no page: never the provider's own wording."""
    label = rules.RAIL_LABELS.get(rail, rail)
    if problem.code == "provider_payment_closed":
        return 409, problem.code, problem.message
    if problem.transient:
        return 503, problem.code, f"Payment with {label} is unavailable right now. Try again in a moment."
    return (
        409,
        problem.code,
        f"{label} cannot take this payment. Try another way to pay, or contact the seller.",
    )


async def checkout_pay(request: web.Request) -> web.Response:
    """`POST /checkout/pay`: the customer chose a card rail on the checkout page. Creates that provider's payment
    for the session (or finds the one already made: one per session and provider) and answers 303 to the
    provider's page."""
    if not _same_origin(request):
        return _pay_refusal(request, 403, "csrf_failed", "This form must be sent from the checkout page.")
    form = await read_form(request)
    if form is None:
        return _pay_refusal(request, 400, "invalid_form", "The form could not be read.")
    try:
        session_id = str(uuid.UUID(_form_text(form, "session")))
    except ValueError:
        session_id = None
    if not _csrf_matches(request, form):
        return _pay_refusal(
            request,
            403,
            "csrf_failed",
            "This checkout page is out of date: reload the checkout page and try again.",
            session_id=session_id,
        )
    if session_id is None:
        return _pay_refusal(
            request, 404, "not_found", "This checkout link is not valid. Ask the seller for a new one."
        )
    rail = _form_text(form, "provider")
    if rail not in rules.CARD_RAILS:
        return _pay_refusal(
            request,
            400,
            "invalid_provider",
            "Choose one of the payment buttons on the checkout page.",
            session_id=session_id,
            field="provider",
        )
    sessions = request.app[CLIENTS].session
    try:
        session = await sessions.GetSession(session_pb2.GetSessionRequest(session_id=session_id))
    except grpc.aio.AioRpcError as error:
        if refusal_for(error).status in (400, 404):
            return _pay_refusal(
                request, 404, "not_found", "This checkout link is not valid. Ask the seller for a new one."
            )
        return _pay_refusal(
            request, 503, UNAVAILABLE_CODE, "Please try again shortly.", session_id=session_id
        )
    refusal = rules.rail_refusal(session, rail)
    if refusal is not None:
        return _pay_refusal(request, refusal.status, refusal.code, refusal.message, session_id=session_id)
    if needs_customer(session):
        return _pay_refusal(
            request,
            409,
            "customer_details_required",
            "Enter your name and country on the checkout page first.",
            session_id=session_id,
        )
    flows = request.app[PROVIDER_CHECKOUTS]
    configured = (
        rail in flows.card_rails(session)
        if session.provider == rules.CARD
        else flows.provider_for(session) is not None
    )
    if not configured:
        return _pay_refusal(
            request,
            409,
            "provider_not_configured",
            f"The seller has not set up card payments with {rules.RAIL_LABELS[rail]}.",
            session_id=session_id,
        )
    try:
        result = await flows.pay_with(sessions, session, rail)
    except grpc.aio.AioRpcError:
        return _pay_refusal(
            request, 503, UNAVAILABLE_CODE, "Please try again shortly.", session_id=session_id
        )
    refusal = rules.rail_refusal(result.session, rail)
    if refusal is not None:  # the session closed (or was bound to the other rail) meanwhile
        return _pay_refusal(request, refusal.status, refusal.code, refusal.message, session_id=session_id)
    url = _safe_link(result.url) if result.url else None
    if result.problem is not None or url is None:
        problem = result.problem or rules.not_recorded_yet("page")
        status, code, message = _provider_problem(rail, problem)
        return _pay_refusal(request, status, code, message, session_id=session_id)
    if _wants_html(request) and _origin(url) not in {o.lower() for o in flows.page_origins([rail])}:
        # The page's CSP would stop a redirect to an origin it does not name: a link goes anywhere.
        label = rules.RAIL_LABELS[rail]
        return _error_page(
            200,
            f"Continue to {label}",
            f"Your {label} payment is ready.",
            link=url,
            link_text=f"Continue to {label}",
        )
    return web.Response(status=303, headers={"Location": url, **_NO_STORE})


async def checkout_page(request: web.Request) -> web.Response:
    raw_id = request.query.get("session", "")
    try:
        session_id = str(uuid.UUID(raw_id))
    except ValueError:
        return _not_found()
    sessions = request.app[CLIENTS].session
    try:
        session = await sessions.GetSession(session_pb2.GetSessionRequest(session_id=session_id))
    except grpc.aio.AioRpcError as error:
        if refusal_for(error).status in (400, 404):
            return _not_found()
        return _error_page(
            503, "Checkout unavailable", "This page is briefly unavailable. Try again shortly."
        )
    return await _page_response(request, session, result=request.query.get("result"))


def setup(app: web.Application) -> None:
    app.router.add_get("/checkout", checkout_page)
    app.router.add_post("/checkout/customer", checkout_customer)
    app.router.add_post("/checkout/pay", checkout_pay)
    app.router.add_post("/v1/sessions/{id}/provider_checkout", create_provider_checkout)
