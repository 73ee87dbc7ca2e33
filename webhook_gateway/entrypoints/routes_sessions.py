"""Merchant session routes: create (with Idempotency-Key), get, list, expire."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import grpc
from aiohttp import web

from paygate.keys.v1 import keys_pb2
from paygate.session.v1 import session_pb2
from paygate_runtime.api_objects import STATUS_BY_NAME, session_detail, session_summary
from paygate_runtime.errors import InvalidArgument
from paygate_runtime.money import (
    MAX_AMOUNT_MINOR,
    MAX_EXPONENT,
    CurrencyKind,
    Money,
    parse_amount,
    resolve_currency,
)
from paygate_runtime.money.currencies import why_not_payable
from paygate_runtime.proto_convert import timestamp
from webhook_gateway.entrypoints.app_keys import BILLING_READINESS, CLIENTS, IDEMPOTENCY, PROVIDER_CHECKOUTS
from webhook_gateway.entrypoints.http_errors import ApiError, raise_for_rpc_error
from webhook_gateway.entrypoints.merchant_auth import AuthenticatedMerchant, authenticate
from webhook_gateway.entrypoints.merchant_requests import optional_idempotency_key
from webhook_gateway.entrypoints.request_body import (
    amount_text,
    body_fingerprint,
    page_cursor,
    page_limit,
    parse_expires_in,
    parse_instant,
    request_json_object,
)
from webhook_gateway.entrypoints.session_lookup import load_session
from webhook_gateway.service_layer import checkout_rules as rules
from webhook_gateway.service_layer.checkout_rules import ExpireRefused

_PROVIDERS = {"stripe", "onecom", "web3"}
_MAX_METADATA_KEYS = 50


def _field_error(field: str, code: str, message: str) -> ApiError:
    return ApiError(400, code, f"{field}: {message}")


def build_create_request(
    merchant: AuthenticatedMerchant, body: dict[str, Any]
) -> session_pb2.CreateSessionRequest:
    amount = body.get("amount")
    if amount is None:
        raise _field_error("amount", "missing_amount", "is required")
    if isinstance(amount, bool) or not isinstance(amount, str | int | Decimal):
        raise _field_error("amount", "invalid_amount", "must be a decimal string or a JSON number")
    # Left out, the merchant's default currency applies; sent empty (or null), it is a client bug that must
    # not be quietly priced in the default currency.
    currency = body.get("currency", "")
    if not isinstance(currency, str) or ("currency" in body and not currency.strip()):
        raise _field_error(
            "currency", "invalid_currency", "must be a currency code (leave it out for the default)"
        )
    # Left out, the session is a card session (empty on the wire, "card" once stored) that either card rail
    # may pay; the first payment event binds it to that rail (contract §6a).
    provider = body.get("provider", "")
    if "provider" in body and (not isinstance(provider, str) or provider not in _PROVIDERS):
        raise _field_error("provider", "invalid_provider", "must be stripe, onecom or web3")
    mode = body.get("mode")
    if mode is not None and mode not in ("test", "live"):
        raise _field_error("mode", "invalid_mode", "must be test or live")
    if mode is not None and mode != merchant.mode_name:
        raise _field_error("mode", "mode_mismatch", f"this key is a {merchant.mode_name} key")
    email = body.get("customer_email")
    if email is not None and (not isinstance(email, str) or "@" not in email or len(email) > 254):
        raise _field_error("customer_email", "invalid_customer_email", "must be an email address")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict) or len(metadata) > _MAX_METADATA_KEYS:
        raise _field_error("metadata", "invalid_metadata", "must be an object of at most 50 string values")
    for key, value in metadata.items():
        if not isinstance(value, str) or len(key) > 40 or len(value) > 500:
            raise _field_error(
                "metadata", "invalid_metadata", "keys up to 40 chars, values strings up to 500 chars"
            )
    expires_in = parse_expires_in(body.get("expires_in"))
    description = body.get("description", "")
    if not isinstance(description, str) or len(description) > 200:
        raise _field_error("description", "invalid_description", "must be a string of at most 200 chars")
    # Contract §12: the scopes of the session's customer key; the session service checks each one.
    # Left out, the grant is every scope (["*"]); given, it must name 1 to 32 (an empty list is refused, never
    # read as the default: `[]` would otherwise grant everything).
    scopes = body.get("scopes", ["*"])
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise _field_error("scopes", "invalid_scopes", 'must be a list of scope strings, like ["read"]')
    if not scopes:
        raise _field_error("scopes", "invalid_scopes", 'must name 1 to 32 scopes (leave it out for ["*"])')
    return session_pb2.CreateSessionRequest(
        merchant_id=merchant.merchant_id,
        mode=merchant.mode,
        amount=amount_text(amount),
        currency=currency,
        provider=provider,
        customer_email=email or "",
        metadata=metadata,
        expires_in_seconds=expires_in,
        description=description,
        scopes=scopes,
        set_scopes=True,
        customer=parse_customer(body.get("customer")),
        # The audit trail names the key that created it, not just the merchant.
        actor=merchant.api_actor,
    )


_CUSTOMER_FIELDS = ("name", "country", "address", "vat_id")


def parse_customer(raw: object) -> session_pb2.SessionCustomer | None:
    """Contract §9: `customer: {"name", "country", "address", "vat_id"}`, all optional; `address` is one
    string (lines split on newlines) or a list of lines. Only the shape is checked here; the session service
    checks the values (country code, lengths) and names the field on a 400."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - set(_CUSTOMER_FIELDS):
        raise _field_error(
            "customer", "invalid_customer", 'must be an object of "name", "country", "address", "vat_id"'
        )
    for name in ("name", "country", "vat_id"):
        if raw.get(name) is not None and not isinstance(raw[name], str):
            raise _field_error(f"customer.{name}", f"invalid_customer_{name}", "must be a string")
    address = raw.get("address") or []
    if isinstance(address, str):
        address = address.splitlines()
    if not isinstance(address, list) or not all(isinstance(line, str) for line in address):
        raise _field_error(
            "customer.address", "invalid_customer_address", "must be a string or a list of strings"
        )
    return session_pb2.SessionCustomer(
        name=raw.get("name") or "",
        country=raw.get("country") or "",
        address_lines=address,
        vat_id=raw.get("vat_id") or "",
    )


async def _require_live_billing_profile(
    request: web.Request, merchant: AuthenticatedMerchant, raw: bytes
) -> None:
    """409 billing_profile_incomplete unless the merchant's live seller profile allows live invoices. A request
    that is wrong in itself (a test `mode` on a live key, a malformed amount, ...) gets its 400 first: a
    client learns what is wrong with its own request before being told about the account's state."""
    try:
        missing = await request.app[BILLING_READINESS].missing_fields(merchant.merchant_id)
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    if missing:
        # Checked only on the way to this refusal, so a sound request pays nothing for it; like the 409, a 400
        # raised here is not stored under the Idempotency-Key (see create_session).
        create = await checked_create_request(request, merchant, raw)
        _refuse_a_malformed_amount(create)
        raise ApiError(
            409,
            "billing_profile_incomplete",
            "live sessions need a complete billing profile (PUT /v1/billing_profile); missing: "
            + ", ".join(missing),
        )


def _refuse_a_malformed_amount(create: session_pb2.CreateSessionRequest) -> None:
    """400 with the session service's own code for an amount it would refuse whatever the account's state:
    malformed, not positive, or finer than a known currency's decimals; and for a currency no session of any
    merchant can be priced in: a malformed code (`invalid_currency`) or an ISO 4217 code that is not payable
    (BGN, CLF, XAU: `unknown_currency`). The gateway only checks the JSON type on the way; without this, such a
    request met the 409 first. A well-formed code unknown here (a merchant's token) or a currency left out
    (the merchant's default) is checked for the shape and sign only; the ceiling is the merchant's business,
    so `amount_too_large` is left to the session service too."""
    try:
        unit = resolve_currency(create.currency) if create.currency else None
    except InvalidArgument as error:
        if error.code != "unknown_currency" or why_not_payable(create.currency.upper()) is not None:
            raise ApiError(400, error.code, error.message) from None
        unit = None
    try:
        if unit is not None:
            parse_amount(create.amount, unit.code, unit.exponent, MAX_AMOUNT_MINOR)
        else:  # a unit unknown here: any placeholder unit, the finest decimals, only shape and sign count
            parse_amount(create.amount, "XXX", MAX_EXPONENT, MAX_AMOUNT_MINOR)
    except InvalidArgument as error:
        if error.field == "amount" and error.code != "amount_too_large":
            raise ApiError(400, error.code, error.message) from None


def fingerprint(raw: bytes) -> str:
    return body_fingerprint(raw)


async def create_session(request: web.Request) -> web.StreamResponse:
    merchant = await authenticate(request)
    raw = await request.read()
    key = optional_idempotency_key(request)
    if merchant.mode_name == "live":
        # Before the Idempotency-Key is claimed: the refusal is not stored, so the same key works once the
        # merchant completes the profile (contract §9).
        await _require_live_billing_profile(request, merchant, raw)
    if key is None:
        return await _create(request, merchant, raw, None)
    store = request.app[IDEMPOTENCY]
    print_ = fingerprint(raw)
    previous = await store.claim(merchant.merchant_id, merchant.mode_name, key, print_)
    if previous is not None:
        if previous.fingerprint != print_:
            raise ApiError(
                409, "idempotency_conflict", "this Idempotency-Key was used with another request body"
            )
        if previous.status_code is None:
            previous = await store.wait_for_response(merchant.merchant_id, merchant.mode_name, key)
        if previous is None or previous.status_code is None:
            raise ApiError(
                409, "idempotency_in_progress", "a request with this Idempotency-Key is still running"
            )
        return web.Response(
            status=previous.status_code,
            body=previous.body,
            content_type="application/json",
            charset="utf-8",  # as the first reply's web.json_response said
            headers={"Idempotent-Replayed": "true"},
        )
    try:
        response = await _create(request, merchant, raw, key)
    except ApiError as error:
        if error.status_code >= 500:
            await store.release(merchant.merchant_id, merchant.mode_name, key)
        else:
            await store.complete(
                merchant.merchant_id, merchant.mode_name, key, error.status_code, (error.text or "").encode()
            )
        raise
    except BaseException:
        await store.release(merchant.merchant_id, merchant.mode_name, key)
        raise
    body = response.body if isinstance(response.body, bytes) else b""  # a json_response: always bytes
    await store.complete(merchant.merchant_id, merchant.mode_name, key, response.status, body)
    return response


async def _create(
    request: web.Request, merchant: AuthenticatedMerchant, raw: bytes, idempotency_key: str | None
) -> web.Response:
    create = await checked_create_request(request, merchant, raw)
    if idempotency_key:
        create.idempotency_key = idempotency_key
        create.request_fingerprint = fingerprint(raw)
    sessions = request.app[CLIENTS].session
    try:
        reply = await sessions.CreateSession(create)
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    # The session is committed: a provider failure now must not become an error (see
    # service_layer.provider_checkouts).
    session, problem = await request.app[PROVIDER_CHECKOUTS].ensure(sessions, reply.session)
    body = session_summary(session)
    if problem is not None:
        body["provider_checkout_error"] = _checkout_error(problem.code, problem.message)
    return web.json_response(body, status=201)


async def checked_create_request(
    request: web.Request, merchant: AuthenticatedMerchant, raw: bytes
) -> session_pb2.CreateSessionRequest:
    """The CreateSession request for the body `raw`, after every check the gateway makes (400 on a fault)."""
    create = build_create_request(merchant, request_json_object(request, raw))
    await _require_a_card_rail_for_the_amount(request, merchant, create)
    return create


async def _require_a_card_rail_for_the_amount(
    request: web.Request, merchant: AuthenticatedMerchant, create: session_pb2.CreateSessionRequest
) -> None:
    """Contract §6a: a card session (no `provider`) is paid by one of the card rails this gateway has for its
    mode. When every such rail limits amounts (Stripe alone), an amount none of them can charge is refused now,
    with the code and message a `stripe` session gets from the session service (400 amount_not_chargeable),
    rather than met later by a customer on a checkout page with no way to pay. Only the gateway knows its rails,
    so the check is made here, before the session exists."""
    if create.provider:
        return
    rails = request.app[PROVIDER_CHECKOUTS].configured_card_rails(merchant.mode_name)
    if not rules.card_amount_matters(rails):
        return
    amount = await _card_amount(request, create)
    if amount is None:
        return
    reason = rules.card_session_refusal(rails, amount.amount_minor, amount.currency, amount.exponent)
    if reason is not None:
        raise _field_error("amount", "amount_not_chargeable", reason)


async def _card_amount(request: web.Request, create: session_pb2.CreateSessionRequest) -> Money | None:
    """The card session's amount as the session service will price it (the merchant's default currency when
    none is given), or None when that service will refuse it with its own code (an unknown or non-fiat currency,
    a malformed or over-precise amount)."""
    code = create.currency
    if not code:
        try:
            settings = await request.app[CLIENTS].session.GetPaymentSettings(
                session_pb2.GetPaymentSettingsRequest(merchant_id=create.merchant_id)
            )
        except grpc.aio.AioRpcError as error:
            raise_for_rpc_error(error)
        code = settings.default_currency
    try:
        currency = resolve_currency(code)
        if currency.kind is not CurrencyKind.FIAT:
            return None
        return parse_amount(create.amount, currency.code, currency.exponent, MAX_AMOUNT_MINOR)
    except InvalidArgument:
        return None


def _checkout_error(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


async def _show_checkout_errors(
    request: web.Request, sessions: Sequence[session_pb2.Session], bodies: Sequence[dict[str, Any]]
) -> None:
    """Add `provider_checkout_error` to the bodies of sessions still without their provider page because the
    last attempt failed (kept by service_layer.provider_checkouts), as the create said it."""
    errors = await request.app[PROVIDER_CHECKOUTS].checkout_errors(sessions)
    for session, body in zip(sessions, bodies, strict=True):
        error = errors.get(session.id)
        if error is not None:
            body["provider_checkout_error"] = _checkout_error(error.code, error.message)


async def access_url_for(request: web.Request, session: session_pb2.Session) -> str | None:
    if not session.access_token_id:
        return None
    try:
        link = await request.app[CLIENTS].keys.GetAccessLink(
            keys_pb2.GetAccessLinkRequest(session_id=session.id, merchant_id=session.merchant_id)
        )
    except grpc.aio.AioRpcError:
        return None
    return link.url


async def get_session(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    session = await load_session(request, merchant, request.match_info["id"])
    body = session_detail(session, await access_url_for(request, session))
    await _show_checkout_errors(request, [session], [body])
    return web.json_response(body)


LIST_PROVIDERS = ("stripe", "onecom", "web3", "card")
_MAX_EMAIL = 254


def session_list_filters(query: Mapping[str, str]) -> dict[str, Any]:
    """The optional filters of `GET /v1/sessions` as ListSessionsRequest fields, checked for shape (400 with
    the parameter's code); the session service applies them in SQL within the key's merchant and mode."""
    fields: dict[str, Any] = {}
    provider = query.get("provider")
    if provider is not None:
        if provider not in LIST_PROVIDERS:
            raise ApiError(400, "invalid_provider", "provider must be stripe, onecom, web3 or card")
        fields["provider"] = provider
    email = query.get("customer_email")
    if email is not None:
        if len(email) > _MAX_EMAIL or "@" not in email or any(ord(c) < 32 or ord(c) == 127 for c in email):
            raise ApiError(400, "invalid_customer_email", "customer_email must be an email address")
        fields["customer_email"] = email
    moments = {
        n: parse_instant(query[n], n) for n in ("created_from", "created_to") if query.get(n) is not None
    }
    if len(moments) == 2 and moments["created_to"] <= moments["created_from"]:
        raise ApiError(400, "invalid_created_to", "created_to must be after created_from")
    for name, moment in moments.items():
        fields[name] = timestamp(moment)
    bounds: dict[str, int] = {}
    for name in ("amount_min_minor", "amount_max_minor"):
        raw = query.get(name)
        if raw is None:
            continue
        if not (raw.isascii() and raw.isdecimal()) or len(raw) > 78:
            raise ApiError(400, f"invalid_{name}", f"{name} must be a whole number of minor units, e.g. 1050")
        bounds[name] = int(raw)
        fields[name] = str(bounds[name])
    if len(bounds) == 2 and bounds["amount_max_minor"] < bounds["amount_min_minor"]:
        raise ApiError(400, "invalid_amount_max_minor", "amount_max_minor must not be below amount_min_minor")
    currency = query.get("currency")
    if currency is not None:
        if not (currency.isascii() and currency.isalnum()) or not 0 < len(currency) <= 11:
            raise ApiError(400, "invalid_currency", "currency must be a currency code or token symbol")
        fields["currency"] = currency.upper()
    return fields


async def list_sessions(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    query = request.query
    status_name = query.get("status")
    if status_name is not None and status_name not in STATUS_BY_NAME:
        raise ApiError(
            400, "invalid_status", "status must be created, pending, paid, failed, expired or refunded"
        )
    limit = page_limit(query)
    filters = session_list_filters(query)
    try:
        reply = await request.app[CLIENTS].session.ListSessions(
            session_pb2.ListSessionsRequest(
                **merchant.scope,
                status=STATUS_BY_NAME.get(status_name or "", session_pb2.SESSION_STATUS_UNSPECIFIED),
                limit=limit,
                starting_after=page_cursor(query),
                **filters,
            )
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    data = [session_summary(s) for s in reply.sessions]
    await _show_checkout_errors(request, reply.sessions, data)
    return web.json_response({"object": "list", "data": data, "has_more": reply.has_more})


async def expire_session(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    # Stripe's page is expired first, so that it can no longer take money for a session we closed.
    try:
        session = await request.app[PROVIDER_CHECKOUTS].expire(
            request.app[CLIENTS].session,
            request.match_info["id"],
            merchant.merchant_id,
            merchant.mode,
            actor=merchant.api_actor,
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    except ExpireRefused as refused:
        # A provider that refused is a conflict the merchant can act on (409), not a broken server; only an
        # unreachable provider is a 5xx (contract §6a: 503 only for an unavailable dependency).
        raise ApiError(503 if refused.retryable else 409, refused.code, refused.message) from None
    return web.json_response(session_detail(session, None))


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/sessions", create_session)
    app.router.add_post("/create_session", create_session)
    app.router.add_get("/v1/sessions", list_sessions)
    app.router.add_get("/v1/sessions/{id}", get_session)
    app.router.add_post("/v1/sessions/{id}/expire", expire_session)
