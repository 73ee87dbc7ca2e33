"""Expiry (sweeper and merchant), late payments through quarantine and acceptance, and the merchant HTTP
routes: Idempotency-Key replay and conflict, list with cursor, expire, quarantine list/resolve, isolation."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from session_itest_support import OUTCOME, STATUS, admin_val, apply, create_session, eur, eventually

from paygate.session.v1 import session_pb2
from support.stack import ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, "PAYGATE_SWEEP_INTERVAL_MS": "100", "PAYGATE_OUTBOX_POLL_MS": "100"}


async def _make_due(stack: ServiceStack, session_id: str) -> None:
    conn = await stack.db.admin()
    try:
        await conn.execute(
            "UPDATE session.sessions SET expires_at = now() - interval '1 second' WHERE id = $1",
            uuid.UUID(session_id),
        )
    finally:
        await conn.close()


async def _status(stack: ServiceStack, session_id: str) -> str:
    got = await stack.session.GetSession(session_pb2.GetSessionRequest(session_id=session_id), timeout=5)
    return STATUS[got.status]


async def test_sweeper_expires_due_created_sessions_but_never_pending(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    due = await create_session(stack, merchant.id)
    in_flight = await create_session(stack, merchant.id)
    fresh = await create_session(stack, merchant.id)
    await apply(stack, in_flight.id, "pending")
    await _make_due(stack, due.id)
    await _make_due(stack, in_flight.id)
    await eventually(lambda: _is(stack, due.id, "expired"))
    await asyncio.sleep(0.3)  # a few more sweeps
    assert await _status(stack, in_flight.id) == "pending"
    assert await _status(stack, fresh.id) == "created"
    got = await stack.session.GetSession(session_pb2.GetSessionRequest(session_id=due.id), timeout=5)
    assert [(m.source_event_id, m.note) for m in got.history] == [("sweeper:expire", "expired")]
    assert got.payment_status == "expired"


async def _is(stack: ServiceStack, session_id: str, status: str) -> bool:
    return await _status(stack, session_id) == status


async def test_late_payment_is_quarantined_then_accepted_and_fulfilled(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant.id)
    await _make_due(stack, session.id)
    await eventually(lambda: _is(stack, session.id, "expired"))
    late = await apply(stack, session.id, "succeeded", amount=eur(9999), reference="pi_late")
    assert OUTCOME[late.outcome] == "payment_on_closed_session"
    status, listed = await stack.request("GET", "/v1/quarantine?status=open", headers=merchant.headers)
    assert status == 200
    [entry] = listed["data"]
    assert entry["id"] == late.quarantine_id and entry["reason"] == "payment_on_closed_session"
    assert entry["amount"] == {"amount": "99.99", "amount_minor": 9999, "currency": "EUR"}
    # Another merchant neither sees nor resolves it.
    other = await stack.create_merchant("Other", "other")
    status, other_list = await stack.request("GET", "/v1/quarantine", headers=other.headers)
    assert status == 200 and other_list["data"] == []
    status, body = await stack.request(
        "POST", f"/v1/quarantine/{entry['id']}/resolve", json={"decision": "accepted"}, headers=other.headers
    )
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, resolved = await stack.request(
        "POST",
        f"/v1/quarantine/{entry['id']}/resolve",
        json={"decision": "accepted", "note": "customer paid on time"},
        headers=merchant.headers,
    )
    assert status == 200 and resolved["status"] == "accepted" and resolved["resolved_at"]
    # Replaying the same decision is idempotent; a different one is refused.
    status, _ = await stack.request(
        "POST",
        f"/v1/quarantine/{entry['id']}/resolve",
        json={"decision": "accepted"},
        headers=merchant.headers,
    )
    assert status == 200
    status, body = await stack.request(
        "POST",
        f"/v1/quarantine/{entry['id']}/resolve",
        json={"decision": "refunded"},
        headers=merchant.headers,
    )
    assert (status, body["error"]["code"]) == (409, "quarantine_already_resolved")
    got = await stack.session.GetSession(session_pb2.GetSessionRequest(session_id=session.id), timeout=5)
    assert STATUS[got.status] == "paid"
    assert got.history[-1].source_event_id == f"quarantine:{entry['id']}"
    assert got.history[-1].note == "late_payment_accepted"
    assert (
        await admin_val(
            stack, "SELECT count(*) FROM session.audit_log WHERE action = 'late_payment_accepted'"
        )
        == 1
    )

    async def fulfilled() -> bool:
        current = await stack.session.GetSession(
            session_pb2.GetSessionRequest(session_id=session.id), timeout=5
        )
        return current.fulfilment_status == "done"

    await eventually(fulfilled, timeout=20)


async def test_only_late_payments_can_be_accepted(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant.id)
    short = await apply(stack, session.id, "succeeded", amount=eur(5), reference="pi_short")
    status, body = await stack.request(
        "POST",
        f"/v1/quarantine/{short.quarantine_id}/resolve",
        json={"decision": "accepted"},
        headers=merchant.headers,
    )
    assert (status, body["error"]["code"]) == (409, "session_not_expired")
    assert await _status(stack, session.id) == "created"
    status, body = await stack.request(
        "POST",
        f"/v1/quarantine/{short.quarantine_id}/resolve",
        json={"decision": "maybe"},
        headers=merchant.headers,
    )
    assert (status, body["error"]["code"]) == (400, "invalid_decision")
    status, body = await stack.request(
        "POST",
        f"/v1/quarantine/{short.quarantine_id}/resolve",
        json={"decision": "refunded"},
        headers=merchant.headers,
    )
    assert status == 200 and body["status"] == "refunded"


async def test_merchant_expires_a_created_session_only(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    _, created = await stack.request(
        "POST", "/v1/sessions", json={"amount": "5.00"}, headers=merchant.headers
    )
    status, expired = await stack.request(
        "POST", f"/v1/sessions/{created['id']}/expire", headers=merchant.headers
    )
    assert status == 200 and expired["status"] == "expired"
    assert expired["history"][0]["source_event_id"] == "merchant:expire"
    status, again = await stack.request(
        "POST", f"/v1/sessions/{created['id']}/expire", headers=merchant.headers
    )
    assert status == 200 and again["status"] == "expired" and len(again["history"]) == 1
    _, other = await stack.request("POST", "/v1/sessions", json={"amount": "5.00"}, headers=merchant.headers)
    await apply(stack, other["id"], "pending")
    status, body = await stack.request("POST", f"/v1/sessions/{other['id']}/expire", headers=merchant.headers)
    assert (status, body["error"]["code"]) == (409, "session_not_expirable")
    stranger = await stack.create_merchant("Stranger", "stranger")
    status, body = await stack.request("POST", f"/v1/sessions/{other['id']}/expire", headers=stranger.headers)
    assert (status, body["error"]["code"]) == (404, "not_found")


async def test_idempotency_key_replay_and_conflict_over_http(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    headers = {**merchant.headers, "Idempotency-Key": "order-7"}
    status, first = await stack.request(
        "POST", "/v1/sessions", json={"amount": "12.50", "currency": "EUR"}, headers=headers
    )
    assert status == 201
    status, replay = await stack.request(
        "POST", "/v1/sessions", json={"amount": "12.50", "currency": "EUR"}, headers=headers
    )
    assert status == 201 and replay == first
    status, conflict = await stack.request(
        "POST", "/v1/sessions", json={"amount": "13.00", "currency": "EUR"}, headers=headers
    )
    assert (status, conflict["error"]["code"]) == (409, "idempotency_conflict")
    # Concurrent first requests with a fresh key create one session.
    racing = {**merchant.headers, "Idempotency-Key": "order-8"}
    results = await asyncio.gather(
        *(stack.request("POST", "/v1/sessions", json={"amount": "1.00"}, headers=racing) for _ in range(10))
    )
    ids = {body["id"] for status, body in results if status == 201}
    assert len(ids) == 1
    assert await admin_val(stack, "SELECT count(*) FROM session.sessions") == 2


async def test_money_input_is_exact_and_validated(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    status, body = await stack.request(
        "POST", "/v1/sessions", json={"amount": 99.99, "mode": "test"}, headers=merchant.headers
    )
    assert status == 201 and (body["currency"], body["amount_minor"]) == ("EUR", 9999)
    status, body = await stack.request(
        "POST", "/v1/sessions", data=b'{"amount": 1234.5, "currency": "JPY"}', headers=merchant.headers
    )
    assert (status, body["error"]["code"]) == (400, "amount_too_precise")
    # JSON's exponent notation is a number like any other: 1e2 is 100.00, whichever way it is written.
    for raw in (b'{"amount": 1e2}', b'{"amount": 1E+2}', b'{"amount": 0.1e3}', b'{"amount": 10000e-2}'):
        status, body = await stack.request("POST", "/v1/sessions", data=raw, headers=merchant.headers)
        assert (status, body.get("amount_minor")) == (201, 10000), raw
    status, body = await stack.request(
        "POST", "/v1/sessions", data=b'{"amount": 1e-3}', headers=merchant.headers
    )
    assert (status, body["error"]["code"]) == (400, "amount_too_precise")
    for payload, code in (
        ({"amount": "0"}, "amount_not_positive"),
        ({"amount": "-1.00"}, "amount_not_positive"),
        ({"amount": "1.001"}, "amount_too_precise"),
        ({"amount": "NaN"}, "invalid_amount"),
        ({"amount": "5", "currency": "XXX"}, "unknown_currency"),
        ({"amount": "99999999999"}, "amount_too_large"),
        ({"amount": "5", "expires_in": 10}, "expires_in_out_of_range"),
        ({"amount": "5", "provider": "stripe", "expires_in": 600}, "expires_in_out_of_range"),
    ):
        status, body = await stack.request("POST", "/v1/sessions", json=payload, headers=merchant.headers)
        assert (status, body["error"]["code"]) == (400, code), payload
    status, body = await stack.request(
        "POST", "/v1/sessions", json={"amount": "0.123", "currency": "BHD"}, headers=merchant.headers
    )
    assert status == 201 and body["amount_minor"] == 123


async def test_list_is_newest_first_with_cursor_and_status_filter(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    other = await stack.create_merchant("Other", "other")
    await stack.request("POST", "/v1/sessions", json={"amount": "1.00"}, headers=other.headers)
    made = []
    for i in range(5):
        _, body = await stack.request(
            "POST", "/v1/sessions", json={"amount": f"{i + 1}.00"}, headers=merchant.headers
        )
        made.append(body["id"])
    await apply(stack, made[1], "succeeded", amount=eur(200))
    status, page1 = await stack.request("GET", "/v1/sessions?limit=2", headers=merchant.headers)
    assert status == 200 and [s["id"] for s in page1["data"]] == made[::-1][:2] and page1["has_more"]
    status, page2 = await stack.request(
        "GET", f"/v1/sessions?limit=2&starting_after={page1['data'][-1]['id']}", headers=merchant.headers
    )
    assert [s["id"] for s in page2["data"]] == made[::-1][2:4] and page2["has_more"]
    status, page3 = await stack.request(
        "GET", f"/v1/sessions?limit=2&starting_after={page2['data'][-1]['id']}", headers=merchant.headers
    )
    assert [s["id"] for s in page3["data"]] == made[:1] and not page3["has_more"]
    status, paid = await stack.request("GET", "/v1/sessions?status=paid", headers=merchant.headers)
    assert [s["id"] for s in paid["data"]] == [made[1]]
    status, public = await stack.request("GET", f"/session/{made[1]}/status")
    assert status == 200 and public["status"] == "paid" and public["paid_at"]
    assert set(public) == {"id", "status", "payment_status", "provider", "paid_at"}
