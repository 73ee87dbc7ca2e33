"""Which changes emit which merchant events, exactly once and only when the change commits: failed, expired
(merchant and sweeper), quarantine entries, and group-committed payments."""

from __future__ import annotations

import asyncio
import collections
import uuid
from typing import Any

import pytest
from merchant_events_support import FAST_ENV, eventually, paid_session

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from support.stack import Merchant, ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **FAST_ENV, "PAYGATE_SWEEP_INTERVAL_MS": "100"}


async def _events(stack: ServiceStack, merchant: Merchant, event_type: str = "") -> list[dict[str, Any]]:
    query = f"?limit=100&type={event_type}" if event_type else "?limit=100"
    status, page = await stack.request("GET", "/v1/merchant_events" + query, headers=merchant.headers)
    assert status == 200, page
    return page["data"]


async def _create(stack: ServiceStack, merchant: Merchant, **fields: Any) -> str:
    reply = await stack.session.CreateSession(
        session_pb2.CreateSessionRequest(
            merchant_id=merchant.id, amount="10.00", mode=common_pb2.MODE_TEST, **fields
        ),
        timeout=10,
    )
    return reply.session.id


async def _apply(
    stack: ServiceStack, session_id: str, kind: int, minor: int = 1000, event_id: str = ""
) -> Any:
    return await stack.session.ApplyPaymentEvent(
        session_pb2.ApplyPaymentEventRequest(
            session_id=session_id,
            provider="onecom",
            provider_event_id=event_id or f"evt_{uuid.uuid4().hex}",
            kind=kind,
            amount=common_pb2.Money(amount_minor=str(minor), currency="EUR", exponent=2),
            provider_reference=f"tx_{uuid.uuid4().hex[:8]}",
        ),
        timeout=10,
    )


async def test_failed_expired_and_quarantined_emit_their_events(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    failed = await _create(stack, merchant)
    await _apply(stack, failed, session_pb2.EVENT_KIND_FAILED)
    expired = await _create(stack, merchant)
    status, _ = await stack.request("POST", f"/v1/sessions/{expired}/expire", headers=merchant.headers)
    assert status == 200
    swept = await _create(stack, merchant)
    conn = await stack.db.admin()
    try:  # due now: the sweeper expires it on its next pass
        await conn.execute(
            "UPDATE session.sessions SET expires_at = now() - interval '1 second' WHERE id = $1",
            uuid.UUID(swept),
        )
    finally:
        await conn.close()
    mismatched = await _create(stack, merchant)
    reply = await _apply(stack, mismatched, session_pb2.EVENT_KIND_SUCCEEDED, minor=500)
    assert reply.quarantine_id

    async def all_there() -> list[dict[str, Any]] | None:
        found = await _events(stack, merchant)
        return found if len([e for e in found if e["type"] == "session.expired"]) == 2 else None

    found = await eventually(all_there, timeout=30)
    by_type = collections.defaultdict(list)
    for event in found:
        by_type[event["type"]].append(event["data"]["object"])
    assert [o["id"] for o in by_type["session.failed"]] == [failed]
    assert by_type["session.failed"][0]["status"] == "failed"
    assert {o["id"] for o in by_type["session.expired"]} == {expired, swept}
    assert [o["id"] for o in by_type["quarantine.created"]] == [reply.quarantine_id]
    quarantine = by_type["quarantine.created"][0]
    status, listed = await stack.request("GET", "/v1/quarantine", headers=merchant.headers)
    assert quarantine == next(e for e in listed["data"] if e["id"] == reply.quarantine_id)
    # A session that did not move emitted nothing: the mismatched one is still open.
    session_events = [o["id"] for t, objs in by_type.items() if t.startswith("session.") for o in objs]
    assert mismatched not in session_events
    assert not by_type["session.paid"]


async def test_each_paid_session_emits_one_event_under_concurrent_and_repeated_deliveries(
    stack: ServiceStack,
) -> None:
    """Group commit, redeliveries and races: the event exists exactly when the move committed, once."""
    merchant = await stack.create_merchant()
    ids = [await _create(stack, merchant) for _ in range(30)]
    event_ids = {sid: f"evt_{uuid.uuid4().hex}" for sid in ids}
    # Every session paid by three concurrent deliveries of the same event and one of another event.
    await asyncio.gather(
        *(
            _apply(stack, sid, session_pb2.EVENT_KIND_SUCCEEDED, event_id=event_ids[sid])
            for sid in ids
            for _ in range(3)
        ),
        *(_apply(stack, sid, session_pb2.EVENT_KIND_SUCCEEDED) for sid in ids),
        return_exceptions=True,
    )
    paid = await _events(stack, merchant, "session.paid")
    assert sorted(e["data"]["object"]["id"] for e in paid) == sorted(ids)
    assert len({e["id"] for e in paid}) == 30


async def test_listing_pages_and_is_per_mode(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    for _ in range(3):
        await paid_session(stack, merchant)
    status, first = await stack.request(
        "GET", "/v1/merchant_events?type=session.paid&limit=2", headers=merchant.headers
    )
    assert status == 200 and len(first["data"]) == 2 and first["has_more"] is True
    status, second = await stack.request(
        "GET",
        f"/v1/merchant_events?type=session.paid&limit=2&starting_after={first['data'][-1]['id']}",
        headers=merchant.headers,
    )
    assert status == 200 and len(second["data"]) == 1 and second["has_more"] is False
    assert {e["id"] for e in first["data"]}.isdisjoint({e["id"] for e in second["data"]})
    created = [e["created"] for e in first["data"] + second["data"]]
    assert created == sorted(created, reverse=True)
