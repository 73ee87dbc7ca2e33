"""The billing service's merchant events (`credit_note.issued`), forwarded to the session service, which owns
merchant events (contract §7).

A trigger writes an outbox row in the transaction that inserts a credit note, whichever use case issued it
(IssueCreditNote for a refund or a lost dispute, VoidInvoice for a void; migration 0100). The shared forwarder
(`paygate_runtime.merchant_event_forwarder`) empties the outbox; this module says what a row is as an event:
the document read from billing's own table and rendered as the merchant API returns it (`render`, given by the
process assembly: the gateway's `invoice_json` over the same proto GetInvoice answers with), under
`source_key = "billing:<type>:<document id>"`. A credit note never changes once inserted, so the object
rendered when the row is forwarded is the object as it was issued.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import grpc

from billing_service.adapters import invoice_repository as invoices
from billing_service.domain.invoices import Invoice
from paygate_runtime.grpc_client import DeadlineChannel
from paygate_runtime.merchant_event_forwarder import (
    DEFAULT_RETENTION_DAYS,
    EventOf,
    ForwardedEvent,
    ForwarderSettings,
    MerchantEventForwarder,
)

CHANNEL = "billing_merchant_events"

# The document as the merchant API returns it (GET /v1/invoices/{id}).
RenderDocument = Callable[[Invoice], dict[str, Any]]


def source_key(row: Any) -> str:
    """The event's stable id for RecordMerchantEvent: one event per document and type, however often sent."""
    return f"billing:{row['event_type']}:{row['invoice_id']}"


def events_of(render: RenderDocument) -> EventOf:
    async def event_of(conn: asyncpg.Connection, row: Any) -> ForwardedEvent | None:
        document = await invoices.load_for_caller(conn, row["merchant_id"], None, row["invoice_id"])
        if document is None:  # documents are never deleted; without one there is nothing to tell
            return None
        return ForwardedEvent(object_id=document.id, object=render(document), source_key=source_key(row))

    return event_of


def merchant_event_forwarder(
    pool: asyncpg.Pool,
    listen_dsn: str,
    channel: grpc.aio.Channel | DeadlineChannel,
    render: RenderDocument,
    *,
    retention_days: int = DEFAULT_RETENTION_DAYS,
) -> MerchantEventForwarder:
    settings = ForwarderSettings("billing-merchant-events", CHANNEL, retention_days=retention_days)
    return MerchantEventForwarder(pool, listen_dsn, channel, events_of(render), settings)
