"""The customer's checkout page, and keeping our sessions and the providers' payments in step.

A `stripe` session gets a Stripe Checkout Session and a `onecom` session a One.com payment (when that
provider's API is configured for the session's mode), both through the provider interface
(adapters.payment_providers). Each payment created is also recorded in the gateway's own
`provider_payments`, which the reconciliation worker reads (service_layer.reconciliation).

Failure policy (a payments choice). Once our session is committed it is the merchant's object, so a provider
failure never turns the create into an error that invites a blind retry (which, without an Idempotency-Key,
would make a second session). The create answers 201 without `provider_checkout_url` and with
`provider_checkout_error: {code, message}`; the checkout page says the card rail is unavailable. The payment
is then created lazily, under the same provider idempotency key, when the customer opens `/checkout` (the `url`
every session has) or when the merchant calls `POST /v1/sessions/{id}/provider_checkout`. A provider URL is
shown only once the session service has recorded it, so that an expiry can always close the payment it
belongs to.

Expiry: the merchant's expire closes the provider's page or payment first; if the provider cannot be reached
our session stays open (503), and if the customer already paid there the expire is refused (409), so the
payment on its way is applied instead of quarantined. Sessions the sweeper expires: Stripe's page is made to
close no later than our session (see adapters.stripe_checkout.stripe_expires_at); a One.com payment is
cancelled by the reconciliation worker once it sees the session expired.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC
from functools import cache
from typing import Any

import grpc
import jinja2
import segno
from aiohttp import web

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate.session.v1 import session_pb2, session_pb2_grpc
from paygate_runtime.api_objects import STATUS_NAMES, customer_json, session_detail
from paygate_runtime.grpc_errors import error_code
from webhook_gateway.adapters.onecom_api import OneComApiSettings, OneComClient, ProviderMetrics
from webhook_gateway.adapters.payment_providers import (
    OneComProvider,
    PaymentProvider,
    StripeProvider,
    mode_of,
)
from webhook_gateway.adapters.provider_errors import ProviderError
from webhook_gateway.adapters.provider_payments_repository import ProviderPaymentsRepository
from webhook_gateway.adapters.stripe_checkout import (
    StripeCheckout,
    StripeCheckoutSettings,
)
from webhook_gateway.entrypoints import browser_session
from webhook_gateway.entrypoints.app_keys import CLIENTS, CONFIG, POOL
from webhook_gateway.entrypoints.http_errors import ApiError, raise_for_rpc_error
from webhook_gateway.entrypoints.merchant_auth import authenticate
from webhook_gateway.entrypoints.observability import METRICS
from webhook_gateway.entrypoints.provider_config import ProviderApiConfig
from webhook_gateway.entrypoints.request_body import format_minor
from webhook_gateway.service_layer.reconciliation import Reconciler, ReconcileSettings

log = logging.getLogger(__name__)

_S = session_pb2
# After a failed provider call, page views of the same session wait this long before calling it again.
RETRY_PAUSE_S = 5.0
REFUSED_PAUSE_S = 60.0  # after the provider refused the request itself, which a quick retry will not change
_MAX_REMEMBERED_FAILURES = 10_000


class ProviderCheckouts:
    """Creates the provider's page or payment for a session (at most one, retried safely), records it for
    reconciliation, and closes it first when the merchant expires the session."""

    def __init__(
        self,
        providers: Mapping[str, PaymentProvider],
        payments: ProviderPaymentsRepository | None = None,
        *,
        first_check_in_s: float = 300.0,
    ) -> None:
        self.providers = dict(providers)
        self.payments = payments
        self.first_check_in_s = first_check_in_s
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}  # lock and its users
        self._failures: OrderedDict[str, tuple[float, ProviderError]] = OrderedDict()

    @property
    def stripe(self) -> PaymentProvider | None:
        return self.providers.get("stripe")

    def provider_for(self, session: session_pb2.Session) -> PaymentProvider | None:
        provider = self.providers.get(session.provider)
        if provider is None:
            return None
        # A Stripe key of the other mode is reported when creating (provider_mode_mismatch); a mode without
        # a One.com key simply has no One.com API (the page then shows the manual instructions).
        if provider.name != "stripe" and not provider.available(mode_of(session)):
            return None
        return provider

    def wanted(self, session: session_pb2.Session) -> bool:
        return (
            self.provider_for(session) is not None
            and session.status == _S.SESSION_STATUS_CREATED
            and not session.provider_session_id
        )

    def _lock(self, session_id: str) -> asyncio.Lock:
        # One provider call per session at a time in this process: concurrent requests with one idempotency
        # key would get the provider's "request in progress" conflict instead of the payment.
        entry = self._locks.setdefault(session_id, (asyncio.Lock(), [0]))
        entry[1][0] += 1
        return entry[0]

    def _release(self, session_id: str) -> None:
        entry = self._locks[session_id]
        entry[1][0] -= 1
        if entry[1][0] == 0:
            del self._locks[session_id]

    def _remember_failure(self, session_id: str, error: ProviderError) -> None:
        self._failures[session_id] = (time.monotonic(), error)
        self._failures.move_to_end(session_id)
        while len(self._failures) > _MAX_REMEMBERED_FAILURES:
            self._failures.popitem(last=False)

    async def ensure(
        self,
        sessions: session_pb2_grpc.SessionServiceStub,
        session: session_pb2.Session,
        *,
        pause_after_failure: bool = False,
    ) -> tuple[session_pb2.Session, ProviderError | None]:
        """The session with its provider page recorded, or unchanged with the reason it has none."""
        provider = self.provider_for(session)
        if provider is None or not self.wanted(session):
            return session, None
        if pause_after_failure:
            failed = self._failures.get(session.id)
            pause = RETRY_PAUSE_S if failed is None or failed[1].transient else REFUSED_PAUSE_S
            if failed is not None and time.monotonic() - failed[0] < pause:
                return session, failed[1]
        lock = self._lock(session.id)
        try:
            async with lock:
                try:
                    created = await provider.create_payment(session)
                    await self._watch(provider.name, created.payment_id, session)
                except ProviderError as error:
                    log.warning(
                        "provider checkout not created",
                        extra={
                            "session_id": session.id,
                            "provider": provider.name,
                            "code": error.code,
                            "detail": error.message,
                        },
                    )
                    self._remember_failure(session.id, error)
                    return session, error
                self._failures.pop(session.id, None)
                return await self._record(
                    sessions, session, provider, created.payment_id, created.checkout_url or ""
                )
        finally:
            self._release(session.id)

    async def _watch(self, provider: str, payment_id: str, session: session_pb2.Session) -> None:
        """Record the payment for reconciliation before it is shown anywhere: a payment the customer can reach
        is always one the worker knows about."""
        if self.payments is None:
            return
        try:
            await self.payments.record(
                provider=provider,
                payment_id=payment_id,
                session_id=session.id,
                merchant_id=session.merchant_id,
                mode=mode_of(session),
                session_expires_at=session.expires_at.ToDatetime(tzinfo=UTC),
                first_check_in_s=self.first_check_in_s,
            )
        except Exception:
            log.warning(
                "provider payment not recorded",
                extra={"session_id": session.id, "provider": provider},
                exc_info=True,
            )
            raise ProviderError(
                "provider_unavailable", "the provider payment could not be recorded yet", transient=True
            ) from None

    async def _record(
        self,
        sessions: session_pb2_grpc.SessionServiceStub,
        session: session_pb2.Session,
        provider: PaymentProvider,
        payment_id: str,
        url: str,
    ) -> tuple[session_pb2.Session, ProviderError | None]:
        try:
            recorded = await sessions.SetProviderCheckout(
                session_pb2.SetProviderCheckoutRequest(
                    session_id=session.id,
                    merchant_id=session.merchant_id,
                    mode=session.mode,
                    provider_session_id=payment_id,
                    provider_checkout_url=url,
                )
            )
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                # Not recorded, so not shown: an unrecorded page could not be closed by an expiry. The next
                # attempt gets the same payment back from the provider's idempotency.
                return session, ProviderError(
                    "provider_unavailable", "the provider page could not be recorded yet", transient=True
                )
            # Another page was recorded first (a replica with another idempotency outcome): keep that one.
            try:
                current = await sessions.GetSession(session_pb2.GetSessionRequest(session_id=session.id))
            except grpc.aio.AioRpcError:
                return session, ProviderError(
                    "provider_unavailable", "the provider page could not be recorded yet", transient=True
                )
            if current.provider_session_id != payment_id:
                await self.close_page(provider, mode_of(session), payment_id)
            return current, None
        if recorded.status in (_S.SESSION_STATUS_EXPIRED, _S.SESSION_STATUS_FAILED):
            # The session closed while the provider was creating its page: that page must not take money.
            await self.close_page(provider, mode_of(session), payment_id)
        return recorded, None

    async def close_page(self, provider: PaymentProvider, mode: str, payment_id: str) -> None:
        """Best-effort close of a provider page or payment that no open session of ours points to."""
        try:
            await provider.cancel_payment(mode, payment_id)
        except ProviderError as error:
            log.warning(
                "orphan provider payment not closed",
                extra={"provider": provider.name, "payment_id": payment_id, "code": error.code},
            )
            return
        if self.payments is not None:
            await self.payments.mark_canceled(provider.name, payment_id)

    async def expire(
        self,
        sessions: session_pb2_grpc.SessionServiceStub,
        session_id: str,
        merchant_id: str,
        mode: int = 0,
    ) -> session_pb2.Session:
        """Merchant expiry: the provider's page or payment first (so it stops taking money), then our
        session. `mode` is the caller's key's mode: a session of the other mode is NOT_FOUND."""
        if not self.providers:
            return await _expire_ours(sessions, session_id, merchant_id, mode)
        lock = self._lock(session_id)
        try:
            async with lock:  # waits for a page being created for this session right now
                try:
                    session = await sessions.GetSession(
                        session_pb2.GetSessionRequest(
                            session_id=session_id, merchant_id=merchant_id, mode=mode
                        )
                    )
                except grpc.aio.AioRpcError as error:
                    raise_for_rpc_error(error)
                provider = self.provider_for(session)
                closed = ""
                if (
                    provider is not None
                    and session.provider_session_id
                    and session.status == _S.SESSION_STATUS_CREATED
                ):
                    await self._close_or_refuse(provider, mode_of(session), session.provider_session_id)
                    closed = session.provider_session_id
                expired = await _expire_ours(sessions, session_id, merchant_id, mode)
        finally:
            self._release(session_id)
        was_open = session.status == _S.SESSION_STATUS_CREATED
        if (
            provider is not None
            and was_open
            and expired.provider_session_id
            and expired.provider_session_id != closed
        ):
            # Another gateway replica recorded a page between our read and the expiry.
            await self.close_page(provider, mode_of(expired), expired.provider_session_id)
        return expired

    async def _close_or_refuse(self, provider: PaymentProvider, mode: str, payment_id: str) -> None:
        try:
            await provider.cancel_payment(mode, payment_id)
        except ProviderError as error:
            if error.code == "provider_session_complete":
                raise ApiError(409, error.code, error.message) from None
            # A provider that refused is a conflict the merchant can act on (409), not a broken server; only an
            # unreachable provider is a 5xx (contract §6a: 503 only for an unavailable dependency).
            status = 503 if error.transient else 409
            raise ApiError(status, error.code, f"{error.message}; the session was not expired") from None
        if self.payments is not None:
            await self.payments.mark_canceled(provider.name, payment_id)

    async def close(self) -> None:
        for provider in self.providers.values():
            await provider.close()


async def _expire_ours(
    sessions: session_pb2_grpc.SessionServiceStub, session_id: str, merchant_id: str, mode: int = 0
) -> session_pb2.Session:
    try:
        return await sessions.ExpireSession(
            session_pb2.ExpireSessionRequest(session_id=session_id, merchant_id=merchant_id, mode=mode)
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)


PROVIDER_CHECKOUTS: web.AppKey[ProviderCheckouts] = web.AppKey("provider_checkouts")
RECONCILER: web.AppKey[Reconciler] = web.AppKey("provider_reconciler")


def provider_checkouts(app: web.Application) -> ProviderCheckouts:
    return app[PROVIDER_CHECKOUTS]


def checkout_error_body(error: ProviderError) -> dict[str, str]:
    return {"code": error.code, "message": error.message}


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
    flows = provider_checkouts(request.app)
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
) -> dict[str, Any]:
    """The template's context. `provider_api`: this gateway creates the payment at the session's provider
    (so the page links to the provider's page, or says the card rail is unavailable when it has none).
    `customer_form`: the buyer's details are asked for first (see needs_customer), in place of the pay
    buttons."""
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
        "provider": session.provider,
        "test_mode": session.mode != common_pb2.MODE_LIVE,
        "stripe_url": _safe_link(session.provider_checkout_url) if session.provider_checkout_url else None,
        "stripe_problem": problem.message if problem is not None else None,
        "provider_api": provider_api,
        "provider_url": _safe_link(session.provider_checkout_url) if session.provider_checkout_url else None,
        "result": result if result in ("success", "cancel") else None,
        "web3": None,
        "customer_form": customer_form,
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


def _security_headers(nonce: str) -> dict[str, str]:
    policy = (
        "default-src 'none'; "
        f"script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "img-src data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }


def _render(template: str, http_status: int, **context: Any) -> web.Response:
    nonce = secrets.token_urlsafe(16)
    html = templates().get_template(template).render(nonce=nonce, **context)
    return web.Response(
        text=html,
        status=http_status,
        content_type="text/html",
        charset="utf-8",
        headers=_security_headers(nonce),
    )


def _error_page(status: int, title: str, message: str) -> web.Response:
    return _render("checkout_error.html", status, title=title, message=message)


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
# HttpOnly SameSite=Strict cookie the page sets, echoed in a hidden field) must match in constant time.

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
    response.set_cookie(CSRF_COOKIE, token, path="/checkout", httponly=True, samesite="Strict", secure=secure)


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
    flows = provider_checkouts(request.app)
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
    context = page_context(
        session, merchant_name, problem, result, provider_api=flows.provider_for(session) is not None
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
    try:
        form = await request.post()
    except (ValueError, AssertionError):  # a malformed body (bad encoding, broken multipart)
        return _customer_refusal(request, 400, "invalid_form", "the form could not be read")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    presented = form.get("csrf_token")
    if (
        not _TOKEN_RE.fullmatch(cookie)
        or not isinstance(presented, str)
        or not hmac.compare_digest(presented.encode(), cookie.encode())
    ):
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
        if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
            return _customer_refusal(request, 404, "not_found", "this checkout link is not valid")
        return _customer_refusal(request, 503, "upstream_unavailable", "please try again shortly")
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
            code = error_code(error) or ""
            if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                code = code or "invalid_customer"
                problem = (400, code, _customer_message(code), _CUSTOMER_CODES.get(code))
            elif error.code() == grpc.StatusCode.FAILED_PRECONDITION:
                problem = (409, code or "session_not_open", "this checkout is no longer open", None)
            elif error.code() == grpc.StatusCode.NOT_FOUND:
                return _customer_refusal(request, 404, "not_found", "this checkout link is not valid")
            else:
                return _customer_refusal(request, 503, "upstream_unavailable", "please try again shortly")
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
        "invalid_customer_country": "enter the country as its two-letter code, e.g. DE",
    }.get(code, "check what you entered")


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
        if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
            return _not_found()
        return _error_page(
            503, "Checkout unavailable", "This page is briefly unavailable. Try again shortly."
        )
    return await _page_response(request, session, result=request.query.get("result"))


async def _on_cleanup(app: web.Application) -> None:
    await app[PROVIDER_CHECKOUTS].close()


def _providers(app: web.Application, config: Any) -> dict[str, PaymentProvider]:
    providers: dict[str, PaymentProvider] = {}
    api_key = getattr(config, "stripe_api_key", None)
    if api_key:
        providers["stripe"] = StripeProvider(
            StripeCheckout(
                StripeCheckoutSettings(
                    api_key=api_key,
                    public_url=config.public_url,
                    api_base=getattr(config, "stripe_api_base", None),
                    timeout_s=getattr(config, "stripe_timeout_s", 10.0),
                )
            )
        )
    settings: ProviderApiConfig = getattr(config, "providers", None) or ProviderApiConfig()
    if settings.onecom_enabled:
        assert settings.onecom_api_base is not None
        client = OneComClient(
            OneComApiSettings(
                api_base=settings.onecom_api_base,
                api_keys=settings.onecom_api_keys,
                timeout_s=settings.onecom_timeout_s,
                max_attempts=settings.onecom_max_attempts,
                breaker_threshold=settings.onecom_breaker_threshold,
                breaker_cooldown_s=settings.onecom_breaker_cooldown_s,
            ),
            app[PROVIDER_METRICS],
        )
        providers["onecom"] = OneComProvider(client, config.public_url)
    return providers


PROVIDER_METRICS: web.AppKey[ProviderMetrics] = web.AppKey("provider_metrics")


def setup(app: web.Application) -> None:
    # Runs after routes_webhooks (ROUTE_MODULES order): reconciliation applies through its EventProcessor.
    from webhook_gateway.entrypoints.routes_webhooks import PROCESSOR

    config = app[CONFIG]
    settings: ProviderApiConfig = getattr(config, "providers", None) or ProviderApiConfig()
    app[PROVIDER_METRICS] = ProviderMetrics(app[METRICS].registry)
    providers = _providers(app, config)
    payments = ProviderPaymentsRepository(app[POOL])
    app[PROVIDER_CHECKOUTS] = ProviderCheckouts(
        providers, payments, first_check_in_s=settings.reconcile_after_s
    )
    app[RECONCILER] = Reconciler(
        payments,
        providers,
        app[CLIENTS].session,
        app[PROCESSOR],
        ReconcileSettings(
            after_s=settings.reconcile_after_s,
            interval_s=settings.reconcile_interval_s,
            max_interval_s=settings.reconcile_max_interval_s,
            late_window_s=settings.reconcile_late_window_s,
        ),
        metrics=app[PROVIDER_METRICS],
    )
    app.on_cleanup.append(_on_cleanup)
    app.router.add_get("/checkout", checkout_page)
    app.router.add_post("/checkout/customer", checkout_customer)
    app.router.add_post("/v1/sessions/{id}/provider_checkout", create_provider_checkout)


def background(app: web.Application) -> list[Callable[[], Awaitable[None]]]:
    """The reconciliation worker, on every replica (claims are leases: replicas share the work)."""
    config = app[CONFIG]
    settings: ProviderApiConfig = getattr(config, "providers", None) or ProviderApiConfig()
    if not settings.reconcile_worker or not app[RECONCILER].providers:
        return []

    async def reconcile() -> None:
        await app[RECONCILER].run()

    return [reconcile]
