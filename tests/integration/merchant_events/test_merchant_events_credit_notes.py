"""`credit_note.issued` (contract §7): every credit note, whatever issued it (a refund, a dispute lost, a void),
gives exactly one event, and its `data.object` is the credit note as GET /v1/invoices/{id} returns it.

Credit notes are billing's documents: billing's own outbox is written in the transaction that inserts one, and
its forwarder hands it to the session service (RecordMerchantEvent, idempotent on the credit note)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from merchant_events_support import FAST_ENV, Receiver, create_endpoint, eventually, paid_session

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from support.stack import Merchant, ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **FAST_ENV}


async def _invoice_id(stack: ServiceStack, merchant: Merchant, session_id: str) -> str:
    async def fulfilled() -> str | None:
        reply = await stack.session.GetSession(
            session_pb2.GetSessionRequest(session_id=session_id, merchant_id=merchant.id), timeout=5
        )
        return reply.invoice_id if reply.fulfilment_status == "done" else None

    invoice_id: str = await eventually(fulfilled, timeout=30)
    return invoice_id


async def _api(stack: ServiceStack, merchant: Merchant, document_id: str) -> dict[str, Any]:
    status, body = await stack.request("GET", f"/v1/invoices/{document_id}", headers=merchant.headers)
    assert status == 200, body
    return body


async def _listed(stack: ServiceStack, merchant: Merchant) -> list[dict[str, Any]]:
    status, page = await stack.request(
        "GET", "/v1/merchant_events?type=credit_note.issued&limit=100", headers=merchant.headers
    )
    assert status == 200, page
    return page["data"]


async def _delivered(receiver: Receiver, count: int = 1) -> list[Any]:
    async def arrived() -> list[Any] | None:
        found = receiver.of_type("credit_note.issued")
        return found if len(found) >= count else None

    found: list[Any] = await eventually(arrived, timeout=20)
    return found


async def _stored_events(stack: ServiceStack, object_id: str) -> int:
    conn = await stack.db.admin()
    try:
        return int(
            await conn.fetchval(
                """SELECT count(*) FROM session.merchant_events
                    WHERE type = 'credit_note.issued' AND object_id = $1""",
                object_id,
            )
        )
    finally:
        await conn.close()


async def test_a_refunds_credit_note_event_is_the_credit_note_as_the_api_returns_it(
    stack: ServiceStack, receiver: Receiver
) -> None:
    merchant = await stack.create_merchant()
    await create_endpoint(stack, merchant, receiver.url, ["credit_note.issued"])
    session_id = await paid_session(stack, merchant)
    await _invoice_id(stack, merchant, session_id)

    status, refund = await stack.request(
        "POST",
        f"/v1/sessions/{session_id}/refund",
        json={"amount": "1.00", "provider_refund_id": "re_outside_1", "reason": "goodwill"},
        headers=merchant.headers,
    )
    assert status == 202, refund

    [delivery] = await _delivered(receiver)
    obj = delivery.json["data"]["object"]
    api = await _api(stack, merchant, obj["id"])
    # The outside walk found a hand-made object here (amount_minor "100", a positive string, 8 fields).
    assert api["object"] == "credit_note" and api["amount_minor"] == -100 and api["amount"] == "-1.00"
    assert obj == api
    [listed] = await _listed(stack, merchant)
    assert listed["data"]["object"] == api and listed["id"] == delivery.json["id"]

    # Billing's IssueCreditNote asked again for the same refund (the refund worker's retry after a lost
    # answer) returns the same credit note and issues nothing: still one event.
    again = await stack.billing.IssueCreditNote(
        billing_pb2.IssueCreditNoteRequest(
            merchant_id=merchant.id,
            mode=common_pb2.MODE_TEST,
            session_id=session_id,
            refund_id=refund["id"],
            amount=common_pb2.Money(amount_minor="100", currency="EUR", exponent=2),
            reason="goodwill",
        ),
        timeout=5,
    )
    assert again.id == api["id"]
    await asyncio.sleep(0.5)
    assert len(await _listed(stack, merchant)) == 1 and await _stored_events(stack, api["id"]) == 1
    assert len(receiver.of_type("credit_note.issued")) == 1


async def test_voiding_an_invoice_emits_credit_note_issued_once(
    stack: ServiceStack, receiver: Receiver
) -> None:
    merchant = await stack.create_merchant()
    await create_endpoint(stack, merchant, receiver.url, ["credit_note.issued"])
    session_id = await paid_session(stack, merchant)
    invoice_id = await _invoice_id(stack, merchant, session_id)

    status, voided = await stack.request(
        "POST", f"/v1/invoices/{invoice_id}/void", json={"reason": "cancelled"}, headers=merchant.headers
    )
    assert status == 200, voided
    note = voided["credit_note"]
    assert note["object"] == "credit_note" and note["credits_invoice_id"] == invoice_id

    [delivery] = await _delivered(receiver)
    obj = delivery.json["data"]["object"]
    assert obj == note == await _api(stack, merchant, note["id"])
    [listed] = await _listed(stack, merchant)
    assert listed["data"]["object"] == note

    # A second void is refused and issues nothing.
    status, again = await stack.request("POST", f"/v1/invoices/{invoice_id}/void", headers=merchant.headers)
    assert (status, again["error"]["code"]) == (409, "already_void")
    await asyncio.sleep(0.5)
    assert len(await _listed(stack, merchant)) == 1 and len(receiver.of_type("credit_note.issued")) == 1


async def test_a_void_while_the_session_service_is_down_arrives_later_and_a_retry_records_it_once(
    stack: ServiceStack, receiver: Receiver
) -> None:
    merchant = await stack.create_merchant()
    await create_endpoint(stack, merchant, receiver.url, ["credit_note.issued"])
    session_id = await paid_session(stack, merchant)
    invoice_id = await _invoice_id(stack, merchant, session_id)

    # The void commits in billing alone: the event waits in billing's outbox until the owner is back.
    await stack.stop_service("session")
    status, voided = await stack.request("POST", f"/v1/invoices/{invoice_id}/void", headers=merchant.headers)
    assert status == 200, voided
    note = voided["credit_note"]
    await asyncio.sleep(0.3)
    await stack.start_service("session")
    [delivery] = await _delivered(receiver)
    assert delivery.json["data"]["object"] == note == await _api(stack, merchant, note["id"])

    # A forwarder that crashed after RecordMerchantEvent but before marking its row forwarded sends the
    # row again: the session service records nothing new.
    conn = await stack.db.admin()
    try:
        [row] = await conn.fetch(
            "SELECT id, forwarded_at FROM billing.merchant_event_outbox WHERE invoice_id = $1",
            uuid.UUID(note["id"]),
        )
        assert row["forwarded_at"] is not None
        await conn.execute(
            """UPDATE billing.merchant_event_outbox SET forwarded_at = NULL, next_attempt_at = now()
                WHERE id = $1""",
            row["id"],
        )
        await conn.execute("SELECT pg_notify('billing_merchant_events', '')")

        async def forwarded_again() -> bool:
            return bool(
                await conn.fetchval(
                    "SELECT forwarded_at IS NOT NULL FROM billing.merchant_event_outbox WHERE id = $1",
                    row["id"],
                )
            )

        await eventually(forwarded_again, timeout=20)
    finally:
        await conn.close()
    assert await _stored_events(stack, note["id"]) == 1
    await asyncio.sleep(0.3)
    assert len(receiver.of_type("credit_note.issued")) == 1
