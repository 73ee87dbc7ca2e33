"""Merchant invoice routes: list, read, receipts (PDF/HTML), void, revenue and the billing profile.

Every route is scoped to the authenticated merchant and its key's mode (`**merchant.scope` on every request);
the billing service answers NOT_FOUND for another merchant's invoice and for one of the other mode alike,
which becomes 404 `not_found` here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from paygate_runtime.api_objects import (
    DOCUMENT_KIND_BY_NAME,
    INVOICE_STATUS_BY_NAME,
    billing_profile_json,
    invoice_json,
    revenue_bucket_json,
    utc_millis,
)
from paygate_runtime.proto_convert import timestamp
from webhook_gateway.entrypoints.app_keys import BILLING_READINESS, CLIENTS
from webhook_gateway.entrypoints.http_errors import ApiError
from webhook_gateway.entrypoints.merchant_auth import authenticate
from webhook_gateway.entrypoints.request_body import (
    optional_date_range,
    page_cursor,
    page_limit,
    read_json_object,
    reporting_range,
)

_INTERVALS = {
    "day": billing_pb2.INTERVAL_DAY,
    "week": billing_pb2.INTERVAL_WEEK,
    "month": billing_pb2.INTERVAL_MONTH,
}
_MAX_ID_LENGTH = 200


# --- query parsing ---------------------------------------------------------------------------------------


def _invoice_id(request: web.Request) -> str:
    invoice_id = request.match_info["id"]
    if len(invoice_id) > _MAX_ID_LENGTH:
        raise ApiError(404, "not_found", "no such invoice")
    return invoice_id


# --- handlers --------------------------------------------------------------------------------------------


async def list_invoices(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    query = request.query
    status = query.get("status")
    if status is not None and status not in INVOICE_STATUS_BY_NAME:
        raise ApiError(400, "invalid_status", "status must be issued or void")
    kind = query.get("kind")
    if kind is not None and kind not in DOCUMENT_KIND_BY_NAME:
        raise ApiError(400, "invalid_kind", "kind must be invoice or credit_note")
    limit = page_limit(query)
    start, end = optional_date_range(query)
    starting_after = page_cursor(query)
    reply = await request.app[CLIENTS].billing.ListInvoices(
        billing_pb2.ListInvoicesRequest(
            **merchant.scope,
            status=INVOICE_STATUS_BY_NAME.get(status or "", billing_pb2.INVOICE_STATUS_UNSPECIFIED),
            kind=DOCUMENT_KIND_BY_NAME.get(kind or "", billing_pb2.DOCUMENT_KIND_UNSPECIFIED),
            issued_from=timestamp(start) if start else None,
            issued_to=timestamp(end) if end else None,
            limit=limit,
            starting_after=starting_after,
        )
    )
    return web.json_response(
        {"object": "list", "data": [invoice_json(i) for i in reply.invoices], "has_more": reply.has_more}
    )


async def get_invoice(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    invoice = await request.app[CLIENTS].billing.GetInvoice(
        billing_pb2.GetInvoiceRequest(**merchant.scope, invoice_id=_invoice_id(request))
    )
    return web.json_response(invoice_json(invoice))


async def _render(request: web.Request, fmt: billing_pb2.RenderFormat) -> web.Response:
    merchant = await authenticate(request)
    document = await request.app[CLIENTS].billing.RenderInvoice(
        billing_pb2.RenderInvoiceRequest(**merchant.scope, invoice_id=_invoice_id(request), format=fmt)
    )
    disposition = "attachment" if fmt == billing_pb2.RENDER_FORMAT_PDF else "inline"
    return web.Response(
        body=document.content,
        headers={
            "Content-Type": document.content_type,
            "Content-Disposition": f'{disposition}; filename="{document.filename}"',
            # Receipts carry personal data: never keep them in a shared cache.
            "Cache-Control": "private, no-store",
        },
    )


async def invoice_pdf(request: web.Request) -> web.Response:
    return await _render(request, billing_pb2.RENDER_FORMAT_PDF)


async def invoice_html(request: web.Request) -> web.Response:
    return await _render(request, billing_pb2.RENDER_FORMAT_HTML)


async def void_invoice(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    body = await read_json_object(request, allow_empty=True)
    reason = body.get("reason", "")
    if not isinstance(reason, str):
        raise ApiError(400, "invalid_reason", "reason must be a string")
    reply = await request.app[CLIENTS].billing.VoidInvoice(
        billing_pb2.VoidInvoiceRequest(
            **merchant.scope, invoice_id=_invoice_id(request), reason=reason, actor=merchant.api_actor
        )
    )
    return web.json_response(
        {"invoice": invoice_json(reply.invoice), "credit_note": invoice_json(reply.credit_note)}
    )


async def revenue(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    query = request.query
    start, end = reporting_range(query, datetime.now(UTC))
    interval = query.get("interval", "day").lower()
    if interval not in _INTERVALS:
        raise ApiError(400, "invalid_interval", "interval must be day, week or month")
    request_pb = billing_pb2.RevenueSummaryRequest(
        **merchant.scope,
        to=timestamp(end),
        interval=_INTERVALS[interval],
    )
    getattr(request_pb, "from").CopyFrom(timestamp(start))  # `from` is a Python keyword
    reply = await request.app[CLIENTS].billing.RevenueSummary(request_pb)
    return web.json_response(
        {
            "object": "revenue_summary",
            "mode": merchant.mode_name,
            "interval": interval,
            "from": utc_millis(start),
            "to": utc_millis(end),
            "buckets": [revenue_bucket_json(b) for b in reply.buckets],
        }
    )


async def get_billing_profile(request: web.Request) -> web.Response:
    """The profile of the key's mode: test and live each have their own (contract §6a)."""
    merchant = await authenticate(request)
    profile = await request.app[CLIENTS].billing.GetBillingProfile(
        billing_pb2.GetBillingProfileRequest(**merchant.scope)
    )
    return web.json_response(billing_profile_json(profile))


def _text(body: dict[str, Any], key: str, code: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, code, f"{key} must be a string")
    return value


def _apply_seller(seller: billing_pb2.Party, raw: Any) -> None:
    if not isinstance(raw, dict):
        raise ApiError(400, "invalid_seller", "seller must be an object")
    for key in ("name", "email", "tax_id"):
        value = _text(raw, key, f"invalid_seller_{key}")
        if value is not None:
            setattr(seller, key, value)
    if "address" in raw:
        address = raw["address"]
        if address is None:
            address = {}
        lines = address.get("lines", []) if isinstance(address, dict) else None
        country = address.get("country") if isinstance(address, dict) else None
        if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
            raise ApiError(400, "invalid_seller_address", "seller.address.lines must be a list of strings")
        if country is not None and not isinstance(country, str):
            raise ApiError(400, "invalid_seller_country", "seller.address.country must be a string")
        seller.address.CopyFrom(common_pb2.Address(lines=lines, country=country or ""))


async def put_billing_profile(request: web.Request) -> web.Response:
    """Fields left out keep their current value, so a merchant can change its tax rate alone. Only the
    profile of the key's mode is read and replaced: a test key never touches the live seller."""
    merchant = await authenticate(request)
    body = await read_json_object(request)
    billing = request.app[CLIENTS].billing
    profile = await billing.GetBillingProfile(billing_pb2.GetBillingProfileRequest(**merchant.scope))
    if "seller" in body:
        _apply_seller(profile.seller, body["seller"])
    prefix = _text(body, "invoice_prefix", "invalid_invoice_prefix")
    if prefix is not None:
        if not prefix:
            raise ApiError(
                400, "invalid_invoice_prefix", "invoice_prefix must be 1 to 12 characters A-Z or 0-9"
            )
        profile.invoice_prefix = prefix
    if "tax_rate_bps" in body:
        rate = body["tax_rate_bps"]
        if isinstance(rate, bool) or not isinstance(rate, int) or not 0 <= rate <= 10_000:
            raise ApiError(400, "invalid_tax_rate", "tax_rate_bps must be an integer from 0 to 10000")
        profile.tax_rate_bps = rate
    if "reset_numbering_yearly" in body:
        reset = body["reset_numbering_yearly"]
        if not isinstance(reset, bool):
            raise ApiError(
                400, "invalid_reset_numbering_yearly", "reset_numbering_yearly must be true or false"
            )
        profile.reset_numbering_yearly = reset
    email = _text(body, "support_email", "invalid_support_email")
    if email is not None:
        profile.support_email = email
    url = _text(body, "support_url", "invalid_support_url")
    if url is not None:
        profile.support_url = url
    profile.merchant_id = merchant.merchant_id
    saved = await billing.UpdateBillingProfile(
        billing_pb2.UpdateBillingProfileRequest(profile=profile, mode=merchant.mode, actor=merchant.api_actor)
    )
    if merchant.mode == common_pb2.MODE_LIVE:
        # A live profile made incomplete again refuses the next live session here at once.
        request.app[BILLING_READINESS].forget(merchant.merchant_id)
    return web.json_response(billing_profile_json(saved))


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/invoices", list_invoices)
    app.router.add_get("/v1/invoices/{id}", get_invoice)
    app.router.add_get("/v1/invoices/{id}/pdf", invoice_pdf)
    app.router.add_get("/v1/invoices/{id}/html", invoice_html)
    app.router.add_post("/v1/invoices/{id}/void", void_invoice)
    app.router.add_get("/v1/revenue", revenue)
    app.router.add_get("/v1/billing_profile", get_billing_profile)
    app.router.add_put("/v1/billing_profile", put_billing_profile)
