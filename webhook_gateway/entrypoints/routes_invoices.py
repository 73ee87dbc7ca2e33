"""Merchant invoice routes: list, read, receipts (PDF/HTML), void, revenue and the billing profile.

Every route is scoped to the authenticated merchant and its key's mode; the billing service answers
NOT_FOUND for another merchant's invoice, which becomes 404 `not_found` here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from google.protobuf.timestamp_pb2 import Timestamp

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from webhook_gateway.entrypoints.app_keys import CLIENTS
from webhook_gateway.entrypoints.http_errors import ApiError
from webhook_gateway.entrypoints.merchant_auth import authenticate
from webhook_gateway.entrypoints.request_body import format_minor, page_limit, read_json_object

_STATUS_BY_NAME = {"issued": billing_pb2.INVOICE_STATUS_ISSUED, "void": billing_pb2.INVOICE_STATUS_VOID}
_STATUS_NAMES = {v: k for k, v in _STATUS_BY_NAME.items()}
_KIND_BY_NAME = {
    "invoice": billing_pb2.DOCUMENT_KIND_INVOICE,
    "credit_note": billing_pb2.DOCUMENT_KIND_CREDIT_NOTE,
}
_KIND_NAMES = {v: k for k, v in _KIND_BY_NAME.items()}
_INTERVALS = {
    "day": billing_pb2.INTERVAL_DAY,
    "week": billing_pb2.INTERVAL_WEEK,
    "month": billing_pb2.INTERVAL_MONTH,
}
_MAX_ID_LENGTH = 200


# --- JSON shapes -----------------------------------------------------------------------------------------


def _iso(ts: Timestamp) -> str:
    return ts.ToDatetime(tzinfo=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _money_fields(name: str, money: common_pb2.Money) -> dict[str, Any]:
    minor = int(money.amount_minor)
    return {name: format_minor(minor, money.exponent), f"{name}_minor": minor}


def _party_json(party: billing_pb2.Party) -> dict[str, Any]:
    return {
        "name": party.name or None,
        "email": party.email or None,
        "address": {"lines": list(party.address.lines), "country": party.address.country or None},
        "tax_id": party.tax_id or None,
    }


def invoice_json(invoice: billing_pb2.Invoice) -> dict[str, Any]:
    """The contract's fields first (id, number, session_id, amount, amount_minor, currency, issued_at, status)."""
    body: dict[str, Any] = {
        "id": invoice.id,
        "object": _KIND_NAMES.get(invoice.kind, "invoice"),
        "number": invoice.number,
        "session_id": invoice.session_id,
        **_money_fields("amount", invoice.total),
        "currency": invoice.total.currency,
        "issued_at": _iso(invoice.issued_at),
        "status": _STATUS_NAMES.get(invoice.status, "issued"),
        "kind": _KIND_NAMES.get(invoice.kind, "invoice"),
        "mode": "live" if invoice.mode == common_pb2.MODE_LIVE else "test",
        "sequence": invoice.sequence,
        "exponent": invoice.total.exponent,
        **_money_fields("subtotal", invoice.subtotal),
        "tax_rate_bps": invoice.tax_rate_bps,
        **_money_fields("tax", invoice.tax),
        "seller": _party_json(invoice.seller),
        "buyer": _party_json(invoice.buyer),
        "line_items": [
            {
                "description": item.description,
                "quantity": item.quantity,
                **_money_fields("unit_amount", item.unit_amount),
                **_money_fields("amount", item.amount),
            }
            for item in invoice.line_items
        ],
        "credits_invoice_id": invoice.credits_invoice_id or None,
        "credit_note_id": invoice.credit_note_id or None,
        "pdf_url": f"/v1/invoices/{invoice.id}/pdf",
        "html_url": f"/v1/invoices/{invoice.id}/html",
    }
    return body


def _bucket_json(bucket: billing_pb2.RevenueBucket) -> dict[str, Any]:
    return {
        "period_start": _iso(bucket.period_start),
        "currency": bucket.currency,
        "exponent": bucket.net.exponent,
        "invoice_count": bucket.invoice_count,
        **_money_fields("invoice_total", bucket.invoice_total),
        "credit_note_count": bucket.credit_note_count,
        **_money_fields("credit_note_total", bucket.credit_note_total),
        **_money_fields("net", bucket.net),
    }


def _profile_json(profile: billing_pb2.BillingProfile) -> dict[str, Any]:
    return {
        "merchant_id": profile.merchant_id,
        "seller": _party_json(profile.seller),
        "invoice_prefix": profile.invoice_prefix,
        "tax_rate_bps": profile.tax_rate_bps,
        "reset_numbering_yearly": profile.reset_numbering_yearly,
        "support_email": profile.support_email or None,
    }


# --- query parsing ---------------------------------------------------------------------------------------


def parse_instant(value: str, field: str) -> datetime:
    """ISO 8601 date (midnight UTC) or date-time; a time without an offset is read as UTC."""
    moment = None
    # An unencoded "+02:00" offset arrives as " 02:00" because query strings decode "+" as a space.
    for candidate in dict.fromkeys((value, value.replace(" ", "+"))):
        try:
            moment = datetime.fromisoformat(candidate)
            break
        except ValueError:
            continue
    if moment is None:
        raise ApiError(
            400, f"invalid_{field}", f"{field} must be an ISO 8601 date or date-time, e.g. 2025-01-31"
        )
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _optional_range(query: Any) -> tuple[datetime | None, datetime | None]:
    start = parse_instant(query["from"], "from") if query.get("from") else None
    end = parse_instant(query["to"], "to") if query.get("to") else None
    if start is not None and end is not None and end <= start:
        raise ApiError(400, "invalid_date_range", "to must be after from")
    return start, end


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
    if status is not None and status not in _STATUS_BY_NAME:
        raise ApiError(400, "invalid_status", "status must be issued or void")
    kind = query.get("kind")
    if kind is not None and kind not in _KIND_BY_NAME:
        raise ApiError(400, "invalid_kind", "kind must be invoice or credit_note")
    limit = page_limit(query)
    start, end = _optional_range(query)
    starting_after = query.get("starting_after", "")
    if len(starting_after) > _MAX_ID_LENGTH:
        raise ApiError(400, "invalid_starting_after", "starting_after names no invoice of yours")
    reply = await request.app[CLIENTS].billing.ListInvoices(
        billing_pb2.ListInvoicesRequest(
            merchant_id=merchant.merchant_id,
            mode=merchant.mode,
            status=_STATUS_BY_NAME.get(status or "", 0),
            kind=_KIND_BY_NAME.get(kind or "", 0),
            issued_from=_timestamp(start) if start else None,
            issued_to=_timestamp(end) if end else None,
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
        billing_pb2.GetInvoiceRequest(merchant_id=merchant.merchant_id, invoice_id=_invoice_id(request))
    )
    return web.json_response(invoice_json(invoice))


async def _render(request: web.Request, fmt: int) -> web.Response:
    merchant = await authenticate(request)
    document = await request.app[CLIENTS].billing.RenderInvoice(
        billing_pb2.RenderInvoiceRequest(
            merchant_id=merchant.merchant_id, invoice_id=_invoice_id(request), format=fmt
        )
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
            merchant_id=merchant.merchant_id, invoice_id=_invoice_id(request), reason=reason
        )
    )
    return web.json_response(
        {"invoice": invoice_json(reply.invoice), "credit_note": invoice_json(reply.credit_note)}
    )


async def revenue(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    query = request.query
    for field in ("from", "to"):
        if not query.get(field):
            raise ApiError(400, f"missing_{field}", f"{field} is required (ISO 8601 date or date-time)")
    start, end = _optional_range(query)
    assert start is not None and end is not None
    interval = query.get("interval", "day").lower()
    if interval not in _INTERVALS:
        raise ApiError(400, "invalid_interval", "interval must be day, week or month")
    request_pb = billing_pb2.RevenueSummaryRequest(
        merchant_id=merchant.merchant_id,
        mode=merchant.mode,
        to=_timestamp(end),
        interval=_INTERVALS[interval],
    )
    getattr(request_pb, "from").CopyFrom(_timestamp(start))  # `from` is a Python keyword
    reply = await request.app[CLIENTS].billing.RevenueSummary(request_pb)
    return web.json_response(
        {
            "object": "revenue_summary",
            "mode": merchant.mode_name,
            "interval": interval,
            "from": start.isoformat().replace("+00:00", "Z"),
            "to": end.isoformat().replace("+00:00", "Z"),
            "buckets": [_bucket_json(b) for b in reply.buckets],
        }
    )


async def get_billing_profile(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    profile = await request.app[CLIENTS].billing.GetBillingProfile(
        billing_pb2.GetBillingProfileRequest(merchant_id=merchant.merchant_id)
    )
    return web.json_response(_profile_json(profile))


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
    """Fields left out keep their current value, so a merchant can change its tax rate alone."""
    merchant = await authenticate(request)
    body = await read_json_object(request)
    billing = request.app[CLIENTS].billing
    profile = await billing.GetBillingProfile(
        billing_pb2.GetBillingProfileRequest(merchant_id=merchant.merchant_id)
    )
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
    profile.merchant_id = merchant.merchant_id
    saved = await billing.UpdateBillingProfile(billing_pb2.UpdateBillingProfileRequest(profile=profile))
    return web.json_response(_profile_json(saved))


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/invoices", list_invoices)
    app.router.add_get("/v1/invoices/{id}", get_invoice)
    app.router.add_get("/v1/invoices/{id}/pdf", invoice_pdf)
    app.router.add_get("/v1/invoices/{id}/html", invoice_html)
    app.router.add_post("/v1/invoices/{id}/void", void_invoice)
    app.router.add_get("/v1/revenue", revenue)
    app.router.add_get("/v1/billing_profile", get_billing_profile)
    app.router.add_put("/v1/billing_profile", put_billing_profile)
