"""The customer's checkout page, and keeping our sessions and Stripe Checkout Sessions in step.

Stripe failure policy (a payments choice). Once our session is committed it is the merchant's object, so a
Stripe failure never turns the create into an error that invites a blind retry (which, without an
Idempotency-Key, would make a second session). The create answers 201 without `provider_checkout_url` and
with `provider_checkout_error: {code, message}`. The Stripe page is then created lazily, under the same Stripe
idempotency key, when the customer opens `/checkout` (the `url` every session has) or when the merchant calls
`POST /v1/sessions/{id}/provider_checkout`. A Stripe URL is shown only once the session service has recorded
it, so that an expiry can always close the page it belongs to.

Expiry: the merchant's expire closes Stripe's page first; if Stripe cannot be reached our session stays open
(503), and if the customer already paid on Stripe's page the expire is refused (409), so the payment on its
way is applied instead of quarantined. Sessions the sweeper expires need no call: Stripe's page is made to
close no later than our session (see adapters.stripe_checkout.stripe_expires_at).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections import OrderedDict
from functools import cache
from typing import Any

import grpc
import jinja2
import segno
from aiohttp import web

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate.session.v1 import session_pb2, session_pb2_grpc
from webhook_gateway.adapters.stripe_checkout import (
    StripeCheckout,
    StripeCheckoutError,
    StripeCheckoutSettings,
)
from webhook_gateway.entrypoints.app_keys import CLIENTS, CONFIG
from webhook_gateway.entrypoints.http_errors import ApiError, raise_for_rpc_error
from webhook_gateway.entrypoints.merchant_auth import authenticate
from webhook_gateway.entrypoints.request_body import format_minor
from webhook_gateway.entrypoints.session_json import STATUS_NAMES, session_detail

log = logging.getLogger(__name__)

_S = session_pb2
# After a failed Stripe call, page views of the same session wait this long before calling Stripe again.
RETRY_PAUSE_S = 5.0
REFUSED_PAUSE_S = 60.0  # after Stripe refused the request itself, which a quick retry will not change
_MAX_REMEMBERED_FAILURES = 10_000


class ProviderCheckouts:
    """Creates Stripe's page for a stripe session (at most one, retried safely) and expires it first."""

    def __init__(self, stripe: StripeCheckout | None) -> None:
        self.stripe = stripe
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}  # lock and its users
        self._failures: OrderedDict[str, tuple[float, StripeCheckoutError]] = OrderedDict()

    def wanted(self, session: session_pb2.Session) -> bool:
        return (
            self.stripe is not None
            and session.provider == "stripe"
            and session.status == _S.SESSION_STATUS_CREATED
            and not session.provider_session_id
        )

    def _lock(self, session_id: str) -> asyncio.Lock:
        # One Stripe call per session at a time in this process: concurrent requests with one idempotency
        # key would get Stripe's 409 "request in progress" instead of the Checkout Session.
        entry = self._locks.setdefault(session_id, (asyncio.Lock(), [0]))
        entry[1][0] += 1
        return entry[0]

    def _release(self, session_id: str) -> None:
        entry = self._locks[session_id]
        entry[1][0] -= 1
        if entry[1][0] == 0:
            del self._locks[session_id]

    def _remember_failure(self, session_id: str, error: StripeCheckoutError) -> None:
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
    ) -> tuple[session_pb2.Session, StripeCheckoutError | None]:
        """The session with its Stripe page recorded, or unchanged with the reason it has none."""
        if not self.wanted(session) or self.stripe is None:
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
                    created = await self.stripe.create(session)
                except StripeCheckoutError as error:
                    log.warning(
                        "stripe checkout not created",
                        extra={"session_id": session.id, "code": error.code, "detail": error.message},
                    )
                    self._remember_failure(session.id, error)
                    return session, error
                self._failures.pop(session.id, None)
                return await self._record(sessions, session, created.id, created.url or "")
        finally:
            self._release(session.id)

    async def _record(
        self,
        sessions: session_pb2_grpc.SessionServiceStub,
        session: session_pb2.Session,
        cs_id: str,
        url: str,
    ) -> tuple[session_pb2.Session, StripeCheckoutError | None]:
        try:
            recorded = await sessions.SetProviderCheckout(
                session_pb2.SetProviderCheckoutRequest(
                    session_id=session.id,
                    merchant_id=session.merchant_id,
                    provider_session_id=cs_id,
                    provider_checkout_url=url,
                )
            )
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                # Not recorded, so not shown: an unrecorded page could not be closed by an expiry. The next
                # attempt gets the same Checkout Session back from Stripe's idempotency.
                return session, StripeCheckoutError(
                    "provider_unavailable", "the Stripe page could not be recorded yet", transient=True
                )
            # Another page was recorded first (a replica with another idempotency outcome): keep that one.
            try:
                current = await sessions.GetSession(session_pb2.GetSessionRequest(session_id=session.id))
            except grpc.aio.AioRpcError:
                return session, StripeCheckoutError(
                    "provider_unavailable", "the Stripe page could not be recorded yet", transient=True
                )
            if current.provider_session_id != cs_id:
                await self.close_page(cs_id)
            return current, None
        if recorded.status in (_S.SESSION_STATUS_EXPIRED, _S.SESSION_STATUS_FAILED):
            # The session closed while Stripe was creating its page: that page must not take money.
            await self.close_page(cs_id)
        return recorded, None

    async def close_page(self, cs_id: str) -> None:
        """Best-effort expiry of a Stripe page that no open session of ours points to."""
        if self.stripe is None:
            return
        try:
            await self.stripe.expire(cs_id)
        except StripeCheckoutError as error:
            log.warning(
                "orphan stripe page not expired", extra={"checkout_session": cs_id, "code": error.code}
            )

    async def expire(
        self, sessions: session_pb2_grpc.SessionServiceStub, session_id: str, merchant_id: str
    ) -> session_pb2.Session:
        """Merchant expiry: Stripe's page first (so it stops taking money), then our session."""
        if self.stripe is None:
            return await _expire_ours(sessions, session_id, merchant_id)
        lock = self._lock(session_id)
        try:
            async with lock:  # waits for a page being created for this session right now
                try:
                    session = await sessions.GetSession(
                        session_pb2.GetSessionRequest(session_id=session_id, merchant_id=merchant_id)
                    )
                except grpc.aio.AioRpcError as error:
                    raise_for_rpc_error(error)
                closed = ""
                if session.provider_session_id and session.status == _S.SESSION_STATUS_CREATED:
                    await self._expire_page_or_refuse(session.provider_session_id)
                    closed = session.provider_session_id
                expired = await _expire_ours(sessions, session_id, merchant_id)
        finally:
            self._release(session_id)
        was_open = session.status == _S.SESSION_STATUS_CREATED
        if was_open and expired.provider_session_id and expired.provider_session_id != closed:
            # Another gateway replica recorded a page between our read and the expiry.
            await self.close_page(expired.provider_session_id)
        return expired

    async def _expire_page_or_refuse(self, cs_id: str) -> None:
        assert self.stripe is not None
        try:
            await self.stripe.expire(cs_id)
        except StripeCheckoutError as error:
            if error.code == "provider_session_complete":
                raise ApiError(409, error.code, error.message) from None
            status = 503 if error.transient else 502
            raise ApiError(status, error.code, f"{error.message}; the session was not expired") from None

    async def close(self) -> None:
        if self.stripe is not None:
            await self.stripe.close()


async def _expire_ours(
    sessions: session_pb2_grpc.SessionServiceStub, session_id: str, merchant_id: str
) -> session_pb2.Session:
    try:
        return await sessions.ExpireSession(
            session_pb2.ExpireSessionRequest(session_id=session_id, merchant_id=merchant_id)
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)


PROVIDER_CHECKOUTS: web.AppKey[ProviderCheckouts] = web.AppKey("provider_checkouts")


def provider_checkouts(app: web.Application) -> ProviderCheckouts:
    return app[PROVIDER_CHECKOUTS]


def checkout_error_body(error: StripeCheckoutError) -> dict[str, str]:
    return {"code": error.code, "message": error.message}


async def create_provider_checkout(request: web.Request) -> web.Response:
    """`POST /v1/sessions/{id}/provider_checkout`: the merchant's retry after a create without a Stripe URL."""
    merchant = await authenticate(request)
    sessions = request.app[CLIENTS].session
    try:
        session = await sessions.GetSession(
            session_pb2.GetSessionRequest(
                session_id=request.match_info["id"], merchant_id=merchant.merchant_id
            )
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    flows = provider_checkouts(request.app)
    if session.provider != "stripe":
        raise ApiError(409, "not_a_stripe_session", "only stripe sessions have a provider checkout page")
    if flows.stripe is None:
        raise ApiError(409, "provider_not_configured", "no Stripe API key is configured on this gateway")
    if session.status != _S.SESSION_STATUS_CREATED and not session.provider_session_id:
        raise ApiError(409, "session_not_open", "the session is no longer open for payment")
    session, problem = await flows.ensure(sessions, session)
    if problem is not None:
        raise ApiError(503 if problem.transient else 502, problem.code, problem.message)
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
    problem: StripeCheckoutError | None,
    result: str | None,
) -> dict[str, Any]:
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
        "result": result if result in ("success", "cancel") else None,
        "web3": None,
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
        "img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
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
    session, problem = await provider_checkouts(request.app).ensure(
        sessions, session, pause_after_failure=True
    )
    merchant_name = await _merchant_name(request, session.merchant_id)
    context = page_context(session, merchant_name, problem, request.query.get("result"))
    return _render("checkout.html", 200, **context)


async def _on_cleanup(app: web.Application) -> None:
    await app[PROVIDER_CHECKOUTS].close()


def setup(app: web.Application) -> None:
    config = app[CONFIG]
    stripe_checkout = None
    api_key = getattr(config, "stripe_api_key", None)
    if api_key:
        stripe_checkout = StripeCheckout(
            StripeCheckoutSettings(
                api_key=api_key,
                public_url=config.public_url,
                api_base=getattr(config, "stripe_api_base", None),
                timeout_s=getattr(config, "stripe_timeout_s", 10.0),
            )
        )
    app[PROVIDER_CHECKOUTS] = ProviderCheckouts(stripe_checkout)
    app.on_cleanup.append(_on_cleanup)
    app.router.add_get("/checkout", checkout_page)
    app.router.add_post("/v1/sessions/{id}/provider_checkout", create_provider_checkout)
