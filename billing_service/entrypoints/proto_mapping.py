"""Translation between billing protos and domain values; the only place that knows both."""

from __future__ import annotations

import re
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from billing_service.domain.einvoice import missing_seller_fields
from billing_service.domain.invoices import (
    Address,
    DocumentKind,
    Invoice,
    InvoiceStatus,
    LineItem,
    Mode,
    Party,
)
from billing_service.domain.profiles import BillingProfile, contact_email
from billing_service.domain.revenue import Interval, RevenueBucket
from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from paygate_runtime import proto_convert
from paygate_runtime.errors import InvalidArgument
from paygate_runtime.proto_convert import mode_enum, mode_name

_INTEGER = re.compile(r"-?[0-9]{1,80}")

KIND_FROM_PROTO = {
    billing_pb2.DOCUMENT_KIND_INVOICE: DocumentKind.INVOICE,
    billing_pb2.DOCUMENT_KIND_CREDIT_NOTE: DocumentKind.CREDIT_NOTE,
}
KIND_TO_PROTO = {v: k for k, v in KIND_FROM_PROTO.items()}
STATUS_FROM_PROTO = {
    billing_pb2.INVOICE_STATUS_ISSUED: InvoiceStatus.ISSUED,
    billing_pb2.INVOICE_STATUS_VOID: InvoiceStatus.VOID,
}
STATUS_TO_PROTO = {v: k for k, v in STATUS_FROM_PROTO.items()}
INTERVAL_FROM_PROTO = {
    billing_pb2.INTERVAL_DAY: Interval.DAY,
    billing_pb2.INTERVAL_WEEK: Interval.WEEK,
    billing_pb2.INTERVAL_MONTH: Interval.MONTH,
}


def mode_from_proto(mode: int, *, default: Mode | None = None) -> Mode:
    name = mode_name(mode)
    if name is not None:
        return Mode(name)
    if mode == common_pb2.MODE_UNSPECIFIED:
        if default is not None:
            return default
        raise InvalidArgument("missing_mode", "mode is required", field="mode")
    raise InvalidArgument("invalid_mode", "mode must be test or live", field="mode")


def parse_minor(text: str, field: str) -> int:
    """An integer from Money.amount_minor; anything but base-10 digits is refused naming the field."""
    if not text:
        raise InvalidArgument(f"missing_{field}", f"{field} is required", field=field)
    if _INTEGER.fullmatch(text) is None:
        raise InvalidArgument(f"invalid_{field}", f"{field} must be an integer in minor units", field=field)
    return int(text)


def money(minor: int, currency: str, exponent: int) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=str(minor), currency=currency, exponent=exponent)


def timestamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    return proto_convert.timestamp(moment)


def from_timestamp(stamp: Timestamp, present: bool) -> datetime | None:
    return proto_convert.to_datetime(stamp) if present else None


def party_from_proto(party: billing_pb2.Party) -> Party:
    return Party(
        name=party.name,
        email=party.email,
        tax_id=party.tax_id,
        address=Address(lines=tuple(party.address.lines), country=party.address.country),
    )


def party_to_proto(party: Party) -> billing_pb2.Party:
    return billing_pb2.Party(
        name=party.name,
        email=party.email,
        tax_id=party.tax_id,
        address=common_pb2.Address(lines=list(party.address.lines), country=party.address.country),
    )


def line_items_from_proto(items: list[billing_pb2.LineItem], currency: str) -> list[LineItem]:
    result = []
    for item in items:
        if item.unit_amount.currency and item.unit_amount.currency != currency:
            raise InvalidArgument(
                "line_item_currency_mismatch",
                "every line item must be in the invoice currency",
                field="line_items.unit_amount",
            )
        result.append(
            LineItem(
                item.description, item.quantity, parse_minor(item.unit_amount.amount_minor, "unit_amount")
            )
        )
    return result


def invoice_to_proto(invoice: Invoice) -> billing_pb2.Invoice:
    def m(minor: int) -> common_pb2.Money:
        return money(minor, invoice.currency, invoice.exponent)

    return billing_pb2.Invoice(
        id=invoice.id,
        number=invoice.number,
        kind=KIND_TO_PROTO[invoice.kind],
        merchant_id=invoice.merchant_id,
        mode=mode_enum(invoice.mode),
        session_id=invoice.session_id,
        seller=party_to_proto(invoice.seller),
        buyer=party_to_proto(invoice.buyer),
        line_items=[
            billing_pb2.LineItem(
                description=i.description,
                quantity=i.quantity,
                unit_amount=m(i.unit_amount),
                amount=m(i.amount),
            )
            for i in invoice.line_items
        ],
        subtotal=m(invoice.subtotal),
        tax_rate_bps=invoice.tax_rate_bps,
        tax=m(invoice.tax),
        total=m(invoice.total),
        issued_at=timestamp(invoice.issued_at),
        status=STATUS_TO_PROTO[invoice.status],
        credits_invoice_id=invoice.credits_invoice_id or "",
        credit_note_id=invoice.credit_note_id or "",
        sequence=invoice.sequence,
    )


def bucket_to_proto(bucket: RevenueBucket) -> billing_pb2.RevenueBucket:
    def m(minor: int) -> common_pb2.Money:
        return money(minor, bucket.currency, bucket.exponent)

    return billing_pb2.RevenueBucket(
        period_start=timestamp(bucket.period_start),
        currency=bucket.currency,
        invoice_count=bucket.invoice_count,
        invoice_total=m(bucket.invoice_total),
        credit_note_count=bucket.credit_note_count,
        credit_note_total=m(bucket.credit_note_total),
        net=m(bucket.net),
    )


def profile_to_proto(profile: BillingProfile) -> billing_pb2.BillingProfile:
    missing = missing_seller_fields(profile.seller)
    return billing_pb2.BillingProfile(
        complete=not missing,
        missing_fields=list(missing),
        merchant_id=profile.merchant_id,
        mode=mode_enum(profile.mode),
        seller=party_to_proto(profile.seller),
        invoice_prefix=profile.invoice_prefix,
        tax_rate_bps=profile.tax_rate_bps,
        reset_numbering_yearly=profile.reset_numbering_yearly,
        support_email=profile.support_email,
        support_url=profile.support_url,
        contact_email=contact_email(profile),
    )


def profile_from_proto(profile: billing_pb2.BillingProfile, mode: Mode) -> BillingProfile:
    """`mode` comes from the request, never from the profile message: its `mode` is output only."""
    return BillingProfile(
        merchant_id=profile.merchant_id,
        mode=mode,
        seller=party_from_proto(profile.seller),
        # An empty prefix means "not set" in proto3; the default applies rather than a refusal.
        invoice_prefix=profile.invoice_prefix or "INV",
        tax_rate_bps=profile.tax_rate_bps,
        reset_numbering_yearly=profile.reset_numbering_yearly,
        support_email=profile.support_email,
        support_url=profile.support_url,
    )
