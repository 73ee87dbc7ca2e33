"""Reconciliation (contract §11): payments whose webhook never came are read at the provider's API and applied
through the webhook's own path, exactly once; a later real webhook is a recorded duplicate."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from conftest import RECONCILE_AFTER_S

from paygate.session.v1 import session_pb2
from paygate_dev.devtools.onecom_double import OneComDouble
from paygate_dev.devtools.signing import standard_delivery
from support.polling import eventually
from support.stack import ServiceStack
from webhook_gateway.service_layer.reconciliation import Reconciler


async def _create(stack: ServiceStack, headers: dict[str, str], **body: object) -> dict[str, Any]:
    payload = {"amount": "19.99", "currency": "EUR", "provider": "onecom", **body}
    status, created = await stack.request("POST", "/v1/sessions", json=payload, headers=headers)
    assert status == 201 and "provider_checkout_url" in created, created
    return created


async def _events(stack: ServiceStack, headers: dict[str, str], sid: str) -> list[dict[str, Any]]:
    status, listed = await stack.request("GET", "/v1/events?limit=100", headers=headers)
    assert status == 200, listed
    return [event for event in listed["data"] if event["session_id"] == sid]


async def _settled_events(stack: ServiceStack, headers: dict[str, str], sid: str) -> list[dict[str, Any]]:
    """The session's events once each has its verdict (the inbox row is finished just after the apply)."""

    async def settled() -> list[dict[str, Any]] | None:
        events = await _events(stack, headers, sid)
        return events if events and all(e["status"] != "received" for e in events) else None

    return await eventually(settled, timeout=15, what="the events' verdicts")


async def _session(stack: ServiceStack, headers: dict[str, str], sid: str) -> dict[str, Any]:
    status, body = await stack.request("GET", f"/v1/sessions/{sid}", headers=headers)
    assert status == 200, body
    return body


async def _payment_row(stack: ServiceStack, sid: str) -> dict[str, Any]:
    row = await stack.pools["gateway"].fetchrow(
        "SELECT state, outcome, checks FROM provider_payments WHERE session_id = $1::uuid", sid
    )
    return dict(row)


async def test_dropped_webhook_is_paid_by_reconciliation_once_and_a_late_webhook_is_a_duplicate(
    stack: ServiceStack, double: OneComDouble, stack_env: dict[str, str]
) -> None:
    merchant = await stack.create_merchant()
    created = await _create(stack, merchant.headers)
    sid = created["id"]
    [payment] = double.payments.values()
    started = time.monotonic()
    assert await double.act(payment, "pay", drop_webhook=True)
    assert [d.dropped for d in double.deliveries] == [True]

    async def paid() -> dict[str, Any] | None:
        session = await _session(stack, merchant.headers, sid)
        return session if session["status"] == "paid" else None

    session = await eventually(paid, timeout=30, interval=0.2, what="reconciliation to pay the session")
    # Paid within the configured delay (2 s here), give or take the worker's period on a loaded machine.
    assert time.monotonic() - started < RECONCILE_AFTER_S + 15
    [event] = await _settled_events(stack, merchant.headers, sid)
    assert event["event_id"] == f"reconcile_{payment.id}_succeeded"
    assert (event["type"], event["status"], event["outcome"]) == ("payment.succeeded", "applied", "applied")
    assert event["source"] == "reconcile"
    assert event["provider_reference"] == payment.id
    assert [h["to"] for h in session["history"]] == ["paid"]
    assert (await _payment_row(stack, sid))["state"] == "done"

    # One.com's webhook finally arrives (its transaction_id is the payment id): a new inbox event, applied
    # as the recorded no-op `already_paid`, never a second payment.
    body = {
        "type": "payment.succeeded",
        "data": {"session_id": sid, "transaction_id": payment.id, "amount_minor": 1999, "currency": "EUR"},
    }
    raw, headers = standard_delivery(body, stack_env["PAYGATE_ONECOM_WEBHOOK_SECRETS"], int(time.time()))
    status, receipt = await stack.request("POST", "/webhooks/onecom", data=raw, headers=headers)
    assert status == 200 and receipt["duplicate"] is False, receipt

    async def late_recorded() -> list[dict[str, Any]] | None:
        events = await _events(stack, merchant.headers, sid)
        late = [e for e in events if e["event_id"] == receipt["event_id"]]
        return events if late and late[0]["status"] != "received" else None

    events = await eventually(late_recorded, timeout=15, what="the late webhook's apply")
    late = next(e for e in events if e["event_id"] == receipt["event_id"])
    assert (late["status"], late["outcome"], late["source"]) == ("duplicate", "already_paid", "webhook")

    # Exactly once: one invoice, one paid move, and the worker leaves the settled payment alone.
    status, invoices = await stack.request("GET", "/v1/invoices", headers=merchant.headers)
    assert status == 200 and [i["session_id"] for i in invoices["data"]].count(sid) == 1
    session = await _session(stack, merchant.headers, sid)
    assert [h["to"] for h in session["history"]] == ["paid"]
    assert len([e for e in events if e["source"] == "reconcile"]) == 1


async def test_amount_mismatch_found_by_reconciliation_is_quarantined(
    stack: ServiceStack, double: OneComDouble
) -> None:
    merchant = await stack.create_merchant()
    created = await _create(stack, merchant.headers)
    sid = created["id"]
    [payment] = double.payments.values()
    assert await double.act(payment, "short", drop_webhook=True)

    async def quarantined() -> list[dict[str, Any]] | None:
        status, listed = await stack.request("GET", "/v1/quarantine", headers=merchant.headers)
        assert status == 200, listed
        entries = [q for q in listed["data"] if q["session_id"] == sid]
        return entries or None

    [entry] = await eventually(quarantined, timeout=30, interval=0.2, what="the short payment's quarantine")
    assert entry["reason"] == "amount_mismatch", entry
    session = await _session(stack, merchant.headers, sid)
    assert session["status"] == "created"  # 1 cent short never pays the session
    [event] = await _settled_events(stack, merchant.headers, sid)
    assert (event["source"], event["status"], event["outcome"]) == (
        "reconcile",
        "quarantined",
        "amount_mismatch",
    )
    row = await eventually(lambda: _done(stack, sid), timeout=10, what="the payment to be done")
    assert row["outcome"].startswith("reconciled_")


async def _done(stack: ServiceStack, sid: str) -> dict[str, Any] | None:
    row = await _payment_row(stack, sid)
    return row if row["state"] == "done" else None


async def test_a_webhook_that_came_leaves_nothing_to_reconcile(
    stack: ServiceStack, double: OneComDouble
) -> None:
    merchant = await stack.create_merchant()
    created = await _create(stack, merchant.headers)
    sid = created["id"]
    [payment] = double.payments.values()
    assert await double.act(payment, "pay")  # the webhook is sent
    assert [d.status for d in double.deliveries] == [200]
    row = await eventually(lambda: _done(stack, sid), timeout=30, what="the worker to see it settled")
    assert row["outcome"] == "settled"
    reads = [p for m, p, _ in double.requests if m == "GET"]
    assert reads == []  # settled by the webhook: One.com was never asked
    assert [e["source"] for e in await _events(stack, merchant.headers, sid)] == ["webhook"]


async def test_expired_session_payment_is_cancelled_and_late_money_quarantined(
    stack: ServiceStack, double: OneComDouble
) -> None:
    merchant = await stack.create_merchant()
    first = (await _create(stack, merchant.headers))["id"]
    second = (await _create(stack, merchant.headers))["id"]
    open_payment, paid_payment = (p for p in double.payments.values())
    assert open_payment.reference == first and paid_payment.reference == second
    assert await double.act(paid_payment, "pay", drop_webhook=True)
    # The session service expires both behind the gateway's back (as its sweeper does).
    for sid in (first, second):
        await stack.session.ExpireSession(
            session_pb2.ExpireSessionRequest(session_id=sid, merchant_id=merchant.id), timeout=5
        )

    async def cancelled() -> bool:
        return open_payment.status == "canceled"

    await eventually(
        cancelled, timeout=30, interval=0.2, what="the expired session's payment to be cancelled"
    )

    async def late() -> list[dict[str, Any]] | None:
        _, listed = await stack.request("GET", "/v1/quarantine", headers=merchant.headers)
        entries = [q for q in listed["data"] if q["session_id"] == second]
        return entries or None

    [entry] = await eventually(late, timeout=30, interval=0.2, what="the late money's quarantine")
    assert entry["reason"] == "payment_on_closed_session", entry
    assert (await _session(stack, merchant.headers, second))["status"] == "expired"
    assert paid_payment.status == "succeeded"  # paid money is never cancelled


async def test_replicas_reconcile_one_payment_once(stack: ServiceStack, double: OneComDouble) -> None:
    """Three workers (the gateway's own and two more, as other replicas would run) race for the same due
    payment: the lease gives it to one at a time, and the inbox holds one event for it."""
    from webhook_gateway.entrypoints.app_keys import RECONCILER

    merchant = await stack.create_merchant()
    sid = (await _create(stack, merchant.headers))["id"]
    [payment] = double.payments.values()
    assert await double.act(payment, "pay", drop_webhook=True)
    own = stack.gateway.app[RECONCILER]
    others = [
        Reconciler(own.payments, own.providers, own.sessions, own.processor, own.settings) for _ in range(2)
    ]

    async def paid() -> bool:
        await asyncio.gather(*(worker.run_once() for worker in others))
        return (await _session(stack, merchant.headers, sid))["status"] == "paid"

    await eventually(paid, timeout=30, interval=0.05, what="the race to pay the session")
    for _ in range(5):
        await asyncio.gather(*(worker.run_once() for worker in others))
    events = await _settled_events(stack, merchant.headers, sid)
    assert [(e["source"], e["status"]) for e in events] == [("reconcile", "applied")]
    session = await _session(stack, merchant.headers, sid)
    assert [h["to"] for h in session["history"]] == ["paid"]
    reads = [p for m, p, _ in double.requests if m == "GET" and p == f"/v1/payments/{payment.id}"]
    assert 1 <= len(reads) <= 3  # read by whoever held the lease; never twice by one replica's pass
