"""The merchant API's JSON objects, rendered from the service protos: ONE renderer per object.

The gateway answers the API with these, and a merchant event carries the same object as `data.object`
(contract §7): the session service renders sessions, quarantine entries and issued invoices into its events
with them, the keys service its revoked customer keys. Living here (not in the gateway) keeps the services
independent of each other while the event object stays byte-for-byte the API's.

Pure: proto messages in, JSON-ready dicts out. Money is rendered from integer minor units by
`paygate_runtime.money.format_major`, never through a float.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate.session.v1 import session_pb2
from paygate_runtime.money import format_major
from paygate_runtime.money.allocation import allocate, net_unit_price
from paygate_runtime.proto_convert import mode_label, to_datetime

# --- shared field formats ----------------------------------------------------------------------------------


def iso(ts: Timestamp, present: bool = True) -> str | None:
    """A timestamp as UTC ISO 8601 with milliseconds ("2026-01-02T03:04:05.678Z"); None when not present."""
    if not present:
        return None
    return iso_millis(ts)


def iso_millis(ts: Timestamp) -> str:
    return utc_millis(to_datetime(ts))


def utc_millis(moment: datetime) -> str:
    """The one format of every time in the API's JSON: UTC, milliseconds, `Z` ("2026-01-02T03:04:05.678Z").
    Cut, not rounded, so a key's expiry never reads later than it is. (Audit entries keep their microseconds:
    that is the value their hash chain holds and their merged order.)"""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def proto_time(message: Message, field: str) -> str | None:
    """A Timestamp field of a key object in the API's one format (utc_millis); None when unset."""
    if not message.HasField(field):
        return None
    ts: Timestamp = getattr(message, field)
    return iso_millis(ts)


def money_fields(name: str, money: common_pb2.Money) -> dict[str, Any]:
    """`<name>` (major-unit decimal string) and `<name>_minor` (integer minor units)."""
    minor = int(money.amount_minor)
    return {name: format_major(minor, money.exponent), f"{name}_minor": minor}


# --- checkout sessions (contract §4, §8, §9) ----------------------------------------------------------------

STATUS_NAMES = {
    session_pb2.SESSION_STATUS_CREATED: "created",
    session_pb2.SESSION_STATUS_PENDING: "pending",
    session_pb2.SESSION_STATUS_PAID: "paid",
    session_pb2.SESSION_STATUS_FAILED: "failed",
    session_pb2.SESSION_STATUS_EXPIRED: "expired",
    session_pb2.SESSION_STATUS_REFUNDED: "refunded",
}
STATUS_BY_NAME = {v: k for k, v in STATUS_NAMES.items()}


def public_status(session: session_pb2.Session) -> dict[str, Any]:
    """The unauthenticated view: no amounts, emails or metadata."""
    return {
        "id": session.id,
        "status": STATUS_NAMES[session.status],
        "payment_status": session.payment_status,
        "provider": session.provider,
        "paid_at": iso(session.paid_at, session.HasField("paid_at")),
    }


def customer_json(session: session_pb2.Session) -> dict[str, Any] | None:
    """The buyer named on the invoice (contract §9), or None when the session has none. `address` is the
    list of lines (creation accepts one string or a list)."""
    if not session.HasField("customer"):
        return None
    customer = session.customer
    return {
        "name": customer.name or None,
        "country": customer.country or None,
        "address": list(customer.address_lines),
        "vat_id": customer.vat_id or None,
    }


def session_summary(session: session_pb2.Session) -> dict[str, Any]:
    amount_minor = int(session.amount.amount_minor)
    body: dict[str, Any] = {
        "id": session.id,
        "object": "checkout.session",
        "status": STATUS_NAMES[session.status],
        "payment_status": session.payment_status,
        "amount": format_major(amount_minor, session.amount.exponent),
        "amount_minor": amount_minor,
        "currency": session.amount.currency,
        "provider": session.provider,
        "mode": mode_label(session.mode),
        "url": f"/checkout?session={session.id}",
        "created_at": iso(session.created_at),
        "expires_at": iso(session.expires_at),
        "metadata": dict(session.metadata),
        "scopes": list(session.scopes) or ["*"],
        "customer_email": session.customer_email or None,
        "customer": customer_json(session),
    }
    if session.provider_checkout_url:
        body["provider_checkout_url"] = session.provider_checkout_url
    if session.HasField("payment"):
        body["payment"] = {
            "chain_id": session.payment.chain_id,
            "deposit_address": session.payment.deposit_address,
            "token": session.payment.token or None,
            "min_confirmations": session.payment.min_confirmations,
        }
    return body


def session_detail(session: session_pb2.Session, access_url: str | None) -> dict[str, Any]:
    body = session_summary(session)
    body.update(
        {
            "paid_at": iso(session.paid_at, session.HasField("paid_at")),
            "invoice_id": session.invoice_id or None,
            "invoice_number": session.invoice_number or None,
            "api_key_id": session.api_key_id or None,
            "access_url": access_url,
            "fulfilment_status": session.fulfilment_status or "none",
            "history": [
                {
                    "from": STATUS_NAMES.get(move.from_status),
                    "to": STATUS_NAMES.get(move.to_status),
                    "at": iso(move.at),
                    "source_event_id": move.source_event_id or None,
                    "note": move.note or None,
                }
                for move in session.history
            ],
            "alerts": [
                {"code": a.code, "detail": a.detail, "reference": a.reference or None, "at": iso(a.at)}
                for a in session.alerts
            ],
        }
    )
    body.update(refund_fields(session))
    if session.HasField("amount_received") and session.amount_received.amount_minor:
        received = int(session.amount_received.amount_minor)
        body["amount_received"] = format_major(received, session.amount_received.exponent)
        body["amount_received_minor"] = received
    return body


def refund_json(refund: session_pb2.Refund) -> dict[str, Any]:
    """A refund as the merchant API shows it (contract §8)."""
    amount = int(refund.amount.amount_minor or 0)
    credited = int(refund.credited.amount_minor or 0)
    skipped = (
        refund.credit_note_id.removeprefix("skipped:") if refund.credit_note_id.startswith("skipped:") else ""
    )
    return {
        "id": refund.id,
        "object": "refund",
        "session_id": refund.session_id,
        "amount": format_major(amount, refund.amount.exponent),
        "amount_minor": amount,
        "currency": refund.amount.currency,
        "status": refund.status,
        "origin": refund.origin,
        "provider_refund_id": refund.provider_refund_id or None,
        "reason": refund.reason or None,
        # Why a failed refund failed (the provider's reason or refusal code); only a failed refund has one
        # (session_service.domain.refunds.Refund, and the refunds table's CHECK).
        "failure_reason": refund.failure_reason or None,
        # The refund that stands for a canceled one (paygate's own pending record merged into the provider's):
        # a merchant's system reads `refund.canceled` with it as "refunded under that id", not "not refunded".
        "replaced_by": refund.replaced_by or None,
        "credited": format_major(credited, refund.amount.exponent),
        "credited_minor": credited,
        # "skipped:<reason>": billing refused a credit note because the invoice was already voided.
        "credit_note_id": None if skipped else (refund.credit_note_id or None),
        "credit_note_skipped": skipped or None,
        "credit_note_number": refund.credit_note_number or None,
        "created_at": iso(refund.created_at, refund.HasField("created_at")),
    }


def refund_fields(session: session_pb2.Session) -> dict[str, Any]:
    """`amount_refunded`, `refunds`, `dispute_status` and `dispute_kind` of a session (contract §8)."""
    refunded = int(session.amount_refunded.amount_minor or 0)
    return {
        "amount_refunded": format_major(refunded, session.amount.exponent),
        "amount_refunded_minor": refunded,
        "refunds": [refund_json(r) for r in session.refunds],
        "dispute_status": session.dispute_status or None,
        # Additive (contract §8): "inquiry" (a refund is allowed and usually settles it) or "chargeback"; the
        # session service sets it only beside a dispute_status (session_messages.add_refund_fields).
        "dispute_kind": session.dispute_kind or None,
    }


def dispute_json(
    *, dispute_id: str, session_id: str, status: str, kind: str | None, amount: common_pb2.Money | None
) -> dict[str, Any]:
    """A dispute as a merchant event shows it (contract §7, §8): the provider's dispute id, paygate's status
    of it, its kind (`inquiry` or `chargeback`: a merchant refunds the one and answers the other with
    evidence), and the disputed money in the provider's dispute currency (null when the event did not carry
    it)."""
    body: dict[str, Any] = {
        "id": dispute_id,
        "object": "dispute",
        "session_id": session_id,
        "status": status,
        "kind": kind,
        "amount": None,
        "amount_minor": None,
        "currency": None,
    }
    if amount is not None and amount.amount_minor:
        body.update(money_fields("amount", amount))
        body["currency"] = amount.currency
    return body


# --- quarantine entries -------------------------------------------------------------------------------------


def _quarantine_money(value: common_pb2.Money, present: bool) -> dict[str, Any] | None:
    if not present or not value.amount_minor:
        return None
    minor = int(value.amount_minor)
    return {
        "amount": format_major(minor, value.exponent),
        "amount_minor": minor,
        "currency": value.currency,
    }


def quarantine_entry_json(entry: session_pb2.QuarantineEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "object": "quarantine_entry",
        "session_id": entry.session_id,
        "reason": entry.reason,
        "mode": mode_label(entry.mode),
        "provider": entry.provider,
        "provider_event_id": entry.provider_event_id,
        "provider_reference": entry.provider_reference or None,
        "amount": _quarantine_money(entry.amount, entry.HasField("amount")),
        "expected": _quarantine_money(entry.expected, entry.HasField("expected")),
        "surplus": _quarantine_money(entry.surplus, entry.HasField("surplus")),
        "status": entry.status,
        "note": entry.note or None,
        "resolution_note": entry.resolution_note or None,
        "created_at": iso(entry.created_at),
        "resolved_at": iso(entry.resolved_at, entry.HasField("resolved_at")),
    }


# --- invoices, revenue and the billing profile (contract §6a, §9) --------------------------------------------

INVOICE_STATUS_BY_NAME = {
    "issued": billing_pb2.INVOICE_STATUS_ISSUED,
    "void": billing_pb2.INVOICE_STATUS_VOID,
}
INVOICE_STATUS_NAMES = {v: k for k, v in INVOICE_STATUS_BY_NAME.items()}
DOCUMENT_KIND_BY_NAME = {
    "invoice": billing_pb2.DOCUMENT_KIND_INVOICE,
    "credit_note": billing_pb2.DOCUMENT_KIND_CREDIT_NOTE,
}
DOCUMENT_KIND_NAMES = {v: k for k, v in DOCUMENT_KIND_BY_NAME.items()}


def party_json(party: billing_pb2.Party) -> dict[str, Any]:
    return {
        "name": party.name or None,
        "email": party.email or None,
        "address": {"lines": list(party.address.lines), "country": party.address.country or None},
        "tax_id": party.tax_id or None,
    }


def _half_even(numerator: int, denominator: int) -> int:
    quotient, remainder = divmod(numerator, denominator)
    if 2 * remainder > denominator or (2 * remainder == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def invoice_lines_json(invoice: billing_pb2.Invoice) -> list[dict[str, Any]]:
    """The document's lines as the PDF and the Factur-X XML state them: net, adding up to `subtotal`.

    Billing stores each line gross (tax included: what was paid); the net of a line is its share of the
    document's net in proportion to its gross, so `amount` adds up to `subtotal` to the minor unit.
    `unit_amount` is the net price of one unit, exact or rounded half to even four digits past the currency
    (the PDF's "Net unit price"); `unit_amount_minor` is it rounded half to even to the minor unit. The gross
    figures the lines were sold at are `gross_unit_amount` and `gross_amount`. Negative on a credit note.
    """
    exponent = invoice.subtotal.exponent or invoice.total.exponent
    subtotal = int(invoice.subtotal.amount_minor or 0)
    sign = -1 if subtotal < 0 or (subtotal == 0 and int(invoice.total.amount_minor or 0) < 0) else 1
    items = list(invoice.line_items)
    gross = [abs(int(item.amount.amount_minor or 0)) for item in items]
    nets = allocate(sign * subtotal, tuple(gross)) if items else ()
    lines = []
    for item, net in zip(items, nets, strict=True):
        quantity = max(int(item.quantity), 1)
        lines.append(
            {
                "description": item.description,
                "quantity": item.quantity,
                "unit_amount": ("-" if sign < 0 and net else "")
                + format(net_unit_price(net, quantity, exponent), "f"),
                "unit_amount_minor": sign * _half_even(net, quantity),
                "amount": format_major(sign * net, exponent),
                "amount_minor": sign * net,
                **money_fields("gross_unit_amount", item.unit_amount),
                **money_fields("gross_amount", item.amount),
            }
        )
    return lines


def invoice_json(invoice: billing_pb2.Invoice) -> dict[str, Any]:
    """The contract's fields first (id, number, session_id, amount, amount_minor, currency, issued_at, status)."""
    body: dict[str, Any] = {
        "id": invoice.id,
        "object": DOCUMENT_KIND_NAMES.get(invoice.kind, "invoice"),
        "number": invoice.number,
        "session_id": invoice.session_id,
        **money_fields("amount", invoice.total),
        "currency": invoice.total.currency,
        "issued_at": iso_millis(invoice.issued_at),
        "status": INVOICE_STATUS_NAMES.get(invoice.status, "issued"),
        "kind": DOCUMENT_KIND_NAMES.get(invoice.kind, "invoice"),
        "mode": mode_label(invoice.mode),
        "sequence": invoice.sequence,
        "exponent": invoice.total.exponent,
        **money_fields("subtotal", invoice.subtotal),
        "tax_rate_bps": invoice.tax_rate_bps,
        **money_fields("tax", invoice.tax),
        "seller": party_json(invoice.seller),
        "buyer": party_json(invoice.buyer),
        "line_items": invoice_lines_json(invoice),
        "credits_invoice_id": invoice.credits_invoice_id or None,
        "credit_note_id": invoice.credit_note_id or None,
        "pdf_url": f"/v1/invoices/{invoice.id}/pdf",
        "html_url": f"/v1/invoices/{invoice.id}/html",
    }
    return body


def revenue_bucket_json(bucket: billing_pb2.RevenueBucket) -> dict[str, Any]:
    return {
        "period_start": iso_millis(bucket.period_start),
        "currency": bucket.currency,
        "exponent": bucket.net.exponent,
        "invoice_count": bucket.invoice_count,
        **money_fields("invoice_total", bucket.invoice_total),
        "credit_note_count": bucket.credit_note_count,
        **money_fields("credit_note_total", bucket.credit_note_total),
        **money_fields("net", bucket.net),
    }


def billing_profile_json(profile: billing_pb2.BillingProfile) -> dict[str, Any]:
    return {
        "merchant_id": profile.merchant_id,
        "mode": mode_label(profile.mode),
        "seller": party_json(profile.seller),
        "invoice_prefix": profile.invoice_prefix,
        "tax_rate_bps": profile.tax_rate_bps,
        "reset_numbering_yearly": profile.reset_numbering_yearly,
        "support_email": profile.support_email or None,
        "support_url": profile.support_url or None,
        # Where customers reach the merchant: support_email, else the seller's email (billing decides).
        "contact_email": profile.contact_email or None,
        # Whether live invoices may be issued (and live sessions created) with this profile, and what is
        # still missing for that (contract §9; billing decides).
        "complete": profile.complete,
        "missing_fields": list(profile.missing_fields),
    }


# --- customer API keys (contract §2, §12) -------------------------------------------------------------------

KEY_STATUS_NAMES = {
    keys_pb2.KEY_STATUS_VALID: "VALID",
    keys_pb2.KEY_STATUS_NOT_FOUND: "NOT_FOUND",
    keys_pb2.KEY_STATUS_EXPIRED: "EXPIRED",
    keys_pb2.KEY_STATUS_REVOKED: "REVOKED",
    keys_pb2.KEY_STATUS_SUSPENDED: "SUSPENDED",
    keys_pb2.KEY_STATUS_IP_NOT_ALLOWED: "IP_NOT_ALLOWED",
}


def api_key_json(key: keys_pb2.ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "object": "api_key",
        "prefix": key.prefix,
        "hint": key.hint,
        "status": KEY_STATUS_NAMES.get(key.status, "NOT_FOUND"),
        "mode": mode_label(key.mode),
        "session_id": key.session_id,
        "revealed": key.revealed,
        "metadata": dict(key.metadata),
        "rolled_from_id": key.rolled_from_id or None,
        "created_at": proto_time(key, "created_at"),
        "expires_at": proto_time(key, "expires_at"),
        "revoked_at": proto_time(key, "revoked_at"),
        "last_used_at": proto_time(key, "last_used_at"),
        # Contract §12: what the key may do now, what the merchant granted, and where it may be used from.
        "scopes": list(key.scopes) or ["*"],
        "granted_scopes": list(key.granted_scopes) or ["*"],
        "ip_allowlist": list(key.ip_allowlist),
    }
