"""`data.object` of a merchant event: the object as the merchant API returns it.

There is ONE renderer per object, the one the gateway answers the API with (`paygate_runtime.api_objects`:
`session_detail`, `quarantine_entry_json`, `invoice_json`), fed the same proto messages the API feeds it. A
session or quarantine entry is rendered from the snapshot its trigger took at commit (so the body shows the
object as it was then, not as it is when the delivery happens to run); an invoice, immutable once issued, is
read from billing once and kept on the event. `access_url` is null in a session event: an access link is a
bearer credential and is never sent to a URL; the merchant reads it from `GET /v1/sessions/{id}`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from paygate.billing.v1 import billing_pb2
from paygate_runtime.api_objects import invoice_json, quarantine_entry_json, session_detail
from paygate_runtime.proto_convert import mode_enum
from session_service.adapters.session_messages import quarantine_message, session_message

FetchInvoice = Callable[[billing_pb2.GetInvoiceRequest], Awaitable[billing_pb2.Invoice]]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def session_row(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A session snapshot (to_jsonb of the row) back in the shape asyncpg returns the row in."""
    row = dict(snapshot)
    for key in ("created_at", "expires_at", "paid_at", "closed_at"):
        row[key] = _time(row.get(key))
    row["history"] = [{**h, "at": _time(h["at"])} for h in row.get("history") or ()]
    row["alerts"] = [{**a, "at": _time(a["at"])} for a in row.get("alerts") or ()]
    # Snapshots taken before migration 0101 have no refunds (and none were possible before 0060).
    row["refunds"] = [
        {**r, "created_at": _time(r["created_at"]), "updated_at": _time(r.get("updated_at"))}
        for r in row.get("refunds") or ()
    ]
    return row


def quarantine_row(snapshot: dict[str, Any]) -> dict[str, Any]:
    row = dict(snapshot)
    for key in ("created_at", "resolved_at"):
        row[key] = _time(row.get(key))
    return row


def render_snapshot(kind: str, snapshot: Any) -> dict[str, Any] | None:
    """The object of a session or quarantine event; None for kinds read from elsewhere."""
    data = _json(snapshot)
    if kind == "session":
        return session_detail(session_message(session_row(data)), None)
    if kind == "quarantine":
        return quarantine_entry_json(quarantine_message(quarantine_row(data)))
    if kind == "json":
        return data
    if kind == "invoice":
        # Rendered by fulfilment from IssueInvoice's reply (migration 0102); older events have none.
        return data.get("object")
    return None


def invoice_event_object(invoice: billing_pb2.Invoice) -> str:
    """JSON text of an `invoice.issued` event's object, as GET /v1/invoices/{id} renders the invoice."""
    return json.dumps(invoice_json(invoice), separators=(",", ":"))


async def render_object(event: Any, fetch_invoice: FetchInvoice | None) -> tuple[dict[str, Any], bool]:
    """(object, fetched): `fetched` when it was read from elsewhere now and should be kept on the event."""
    stored = _json(event["object"])
    if stored is not None:
        return stored, False
    rendered = render_snapshot(event["object_kind"], event["snapshot"])
    if rendered is not None:
        return rendered, False
    if event["object_kind"] == "invoice":
        if fetch_invoice is None:
            raise LookupError("no billing client to read the invoice")
        snapshot = _json(event["snapshot"])
        invoice = await fetch_invoice(
            billing_pb2.GetInvoiceRequest(
                merchant_id=str(event["merchant_id"]),
                invoice_id=snapshot["invoice_id"],
                mode=mode_enum(event["mode"]),
            )
        )
        return invoice_json(invoice), True
    raise LookupError(f"unknown object kind {event['object_kind']!r}")
