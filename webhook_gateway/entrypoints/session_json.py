"""Session messages rendered as the contract's JSON."""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from paygate.session.v1 import session_pb2
from webhook_gateway.entrypoints.request_body import format_minor

STATUS_NAMES = {
    session_pb2.SESSION_STATUS_CREATED: "created",
    session_pb2.SESSION_STATUS_PENDING: "pending",
    session_pb2.SESSION_STATUS_PAID: "paid",
    session_pb2.SESSION_STATUS_FAILED: "failed",
    session_pb2.SESSION_STATUS_EXPIRED: "expired",
}
STATUS_BY_NAME = {v: k for k, v in STATUS_NAMES.items()}


def iso(ts: Timestamp, present: bool = True) -> str | None:
    if not present:
        return None
    return ts.ToDatetime().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def public_status(session: session_pb2.Session) -> dict[str, Any]:
    """The unauthenticated view: no amounts, emails or metadata."""
    return {
        "id": session.id,
        "status": STATUS_NAMES[session.status],
        "payment_status": session.payment_status,
        "provider": session.provider,
        "paid_at": iso(session.paid_at, session.HasField("paid_at")),
    }


def session_summary(session: session_pb2.Session) -> dict[str, Any]:
    amount_minor = int(session.amount.amount_minor)
    body: dict[str, Any] = {
        "id": session.id,
        "object": "checkout.session",
        "status": STATUS_NAMES[session.status],
        "payment_status": session.payment_status,
        "amount": format_minor(amount_minor, session.amount.exponent),
        "amount_minor": amount_minor,
        "currency": session.amount.currency,
        "provider": session.provider,
        "mode": "live" if session.mode == 2 else "test",
        "url": f"/checkout?session={session.id}",
        "created_at": iso(session.created_at),
        "expires_at": iso(session.expires_at),
        "metadata": dict(session.metadata),
        "customer_email": session.customer_email or None,
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
    if session.HasField("amount_received") and session.amount_received.amount_minor:
        received = int(session.amount_received.amount_minor)
        body["amount_received"] = format_minor(received, session.amount_received.exponent)
        body["amount_received_minor"] = received
    return body
