"""Refund and dispute events that cannot be applied as they come (contract §4, §8), through signed Stripe
webhooks against the real stack: a refund in another currency is quarantined once per provider refund, a
closed dispute never reopens, a refund that fails after it succeeded stops counting and is shown to the
merchant in one entry (an older `charge.refunded` never credits it again, a credit note billing issues after
the failure is named in that entry), and dispute events carry the disputed money."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest

from paygate_runtime.money import Money
from session_service.adapters import refund_repository as refunds_repo
from session_service.domain.modes import Mode
from session_service.domain.payment_events import ApplyOutcome, EventKind
from session_service.service_layer import refunds
from session_service.service_layer.payment_events import EventCommand
from session_service.service_layer.refund_effects import RefundEffects
from support.refund_flows import (
    applied,
    charge_refunded,
    credit_notes,
    dispute_event,
    merchant_event_types,
    paid_session,
    refund_object,
    send_onecom,
    send_stripe,
    session_json,
    stripe_envelope,
    verify_code,
    wait_credit_notes,
)
from support.stack import Merchant, ServiceStack


async def _quarantine(stack: ServiceStack, merchant: Merchant, sid: str) -> list[dict[str, Any]]:
    status, listed = await stack.request("GET", "/v1/quarantine", headers=merchant.headers)
    assert status == 200, listed
    return [e for e in listed["data"] if e["session_id"] == sid]


async def _session_column(stack: ServiceStack, sid: str, column: str) -> Any:
    conn = await stack.db.admin()
    try:
        return await conn.fetchval(f"SELECT {column} FROM session.sessions WHERE id = $1", uuid.UUID(sid))
    finally:
        await conn.close()


async def _dispute_objects(stack: ServiceStack, merchant: Merchant) -> list[tuple[str, dict[str, Any]]]:
    conn = await stack.db.admin()
    try:
        rows = await conn.fetch(
            """SELECT type, snapshot FROM session.merchant_events
                WHERE merchant_id = $1 AND type LIKE 'dispute.%' ORDER BY seq""",
            uuid.UUID(merchant.id),
        )
    finally:
        await conn.close()
    return [
        (r["type"], json.loads(r["snapshot"]) if isinstance(r["snapshot"], str) else r["snapshot"])
        for r in rows
    ]


async def test_refund_in_another_currency_is_quarantined_once_per_refund(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, "100.00")  # EUR
    usd = refund_object("re_usd_1", 1000, paid.payment_intent, paid.charge)
    usd["currency"] = "usd"
    created = stripe_envelope("refund.created", usd)
    first = await send_stripe(stack, created)
    assert await applied(stack, "stripe", first["event_id"]) == "quarantined"
    assert (await send_stripe(stack, created))["duplicate"] is True
    # The same refund again under another event (Stripe's charge.refunded, in usd): one entry still.
    charge = charge_refunded(paid.payment_intent, paid.charge, 10000, [usd], 1000)
    charge["data"]["object"]["currency"] = "usd"
    second = await send_stripe(stack, charge)
    assert await applied(stack, "stripe", second["event_id"]) == "duplicate"

    [entry] = await _quarantine(stack, merchant, paid.id)
    assert entry["reason"] == "refund_currency_mismatch" and entry["status"] == "open", entry
    assert entry["amount"] == {"amount": "10.00", "amount_minor": 1000, "currency": "USD"}, entry
    assert entry["provider_reference"] == paid.payment_intent
    assert entry["provider_event_id"] == first["event_id"]
    status, failed = await stack.request("GET", "/v1/events?status=failed", headers=merchant.headers)
    assert status == 200 and failed["data"] == [], failed
    session = await session_json(stack, merchant, paid.id)
    assert session["amount_refunded"] == "0.00" and session["refunds"] == [] and session["status"] == "paid"
    assert (await merchant_event_types(stack, merchant)).count("quarantine.created") == 1


async def test_a_closed_dispute_never_reopens(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    won = await paid_session(stack, merchant, "20.00")
    for event_type, status_ in (
        ("charge.dispute.closed", "won"),
        ("charge.dispute.created", "needs_response"),
    ):
        event = dispute_event(event_type, "dp_ooo_won", won.payment_intent, won.charge, 2000, status_)
        assert await applied(stack, "stripe", (await send_stripe(stack, event))["event_id"]) == "applied"
    session = await session_json(stack, merchant, won.id)
    assert session["dispute_status"] == "won", session["dispute_status"]
    assert await _session_column(stack, won.id, "key_access") == "active"
    assert await verify_code(stack, merchant, won.key) == "VALID"

    lost = await paid_session(stack, merchant, "30.00")
    for event_type, status_ in (
        ("charge.dispute.closed", "lost"),
        ("charge.dispute.created", "needs_response"),
    ):
        event = dispute_event(event_type, "dp_ooo_lost", lost.payment_intent, lost.charge, 3000, status_)
        assert await applied(stack, "stripe", (await send_stripe(stack, event))["event_id"]) == "applied"
    session = await session_json(stack, merchant, lost.id)
    assert session["status"] == "refunded" and session["dispute_status"] == "lost", session["dispute_status"]
    assert await _session_column(stack, lost.id, "key_access") == "revoked"
    types = [t for t in await merchant_event_types(stack, merchant) if t.startswith("dispute.")]
    # Only the real changes: each dispute closed once, the late `created` is a recorded no-op.
    assert types == ["dispute.closed", "dispute.closed"], types


async def _paid_and_refunded(
    stack: ServiceStack, merchant: Merchant, refund_id: str, *, billing_down: bool = False
) -> tuple[Any, dict]:
    """A paid session of 50.00 and Stripe's `charge.refunded` for a refund of 20.00 that succeeded, applied;
    the session and the refund object. With `billing_down`, billing is stopped before the refund, so the
    stack's own worker issues no credit note for it."""
    paid = await paid_session(stack, merchant, "50.00")
    if billing_down:
        await stack.stop_service("billing", grace=0)
    refund = refund_object(refund_id, 2000, paid.payment_intent, paid.charge, "succeeded")
    event = charge_refunded(paid.payment_intent, paid.charge, 5000, [refund], 2000)
    assert await applied(stack, "stripe", (await send_stripe(stack, event))["event_id"]) == "applied"
    return paid, refund


async def test_a_refund_that_fails_after_it_succeeded_stops_counting(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    paid, _ = await _paid_and_refunded(stack, merchant, "re_then_failed")
    await wait_credit_notes(stack, merchant, paid.id, 2000, 1)
    [note] = await credit_notes(stack, merchant, paid.id)

    failed = refund_object("re_then_failed", 2000, paid.payment_intent, paid.charge, "failed")
    first = await send_stripe(stack, stripe_envelope("refund.updated", failed))
    assert await applied(stack, "stripe", first["event_id"]) == "applied"
    again = await send_stripe(stack, stripe_envelope("charge.refund.updated", failed))
    assert await applied(stack, "stripe", again["event_id"]) == "applied"

    session = await session_json(stack, merchant, paid.id)
    [only] = session["refunds"]
    assert only["status"] == "failed" and only["credited_minor"] == 0, only
    assert session["amount_refunded"] == "0.00" and session["status"] == "paid", session["amount_refunded"]
    # The credit note is a legal document: it stands, and the merchant is told about it.
    assert [n.number for n in await credit_notes(stack, merchant, paid.id)] == [note.number]
    [entry] = await _quarantine(stack, merchant, paid.id)
    assert entry["reason"] == "refund_failed" and entry["status"] == "open", entry
    assert note.number in entry["note"] and "re_then_failed" in entry["note"], entry["note"]
    assert entry["amount"] == {"amount": "20.00", "amount_minor": 2000, "currency": "EUR"}


async def test_an_older_charge_refunded_never_credits_a_refund_that_failed(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    paid, re_ok = await _paid_and_refunded(stack, merchant, "re_stale_total")
    await wait_credit_notes(stack, merchant, paid.id, 2000, 1)
    failed = refund_object("re_stale_total", 2000, paid.payment_intent, paid.charge, "failed")
    sent = await send_stripe(stack, stripe_envelope("charge.refund.updated", failed))
    assert await applied(stack, "stripe", sent["event_id"]) == "applied"

    # Stripe's older `charge.refunded` events (other ids, created before the failure) arrive late: one still
    # listing the refund as succeeded, one with the total only. Neither credits the failed money again.
    for listed in ([re_ok], []):
        older = charge_refunded(paid.payment_intent, paid.charge, 5000, listed, 2000)
        older["created"] -= 60
        late = await send_stripe(stack, older)
        assert await applied(stack, "stripe", late["event_id"]) in ("applied", "duplicate")
        session = await session_json(stack, merchant, paid.id)
        assert session["amount_refunded"] == "0.00", session["refunds"]
        assert [(r["status"], r["credited_minor"]) for r in session["refunds"]] == [("failed", 0)]
    # No second credit note, and the merchant's one `refund_failed` entry is all the quarantine holds.
    await wait_credit_notes(stack, merchant, paid.id, 2000, 1)
    assert [e["reason"] for e in await _quarantine(stack, merchant, paid.id)] == ["refund_failed"]


async def test_a_credit_note_issued_after_its_refund_failed_keeps_one_refund_failed_entry(
    stack: ServiceStack,
) -> None:
    """The worker read the refund while it had succeeded and asked billing for its credit note; the refund
    failed (and its `refund_failed` entry opened, naming no credit note) before billing answered. The credit
    note stands: the merchant's one entry for the refund names it, and no second entry is opened."""
    merchant = await stack.create_merchant()

    async def entry_names_no_credit_note(paid: Any) -> None:
        [opened] = await _quarantine(stack, merchant, paid.id)
        assert opened["reason"] == "refund_failed" and "credit note" not in opened["note"], opened

    paid = await _credit_note_issued_after_failure(
        stack, merchant, "re_note_late", entry_names_no_credit_note
    )
    [note] = await credit_notes(stack, merchant, paid.id)
    entries = await _quarantine(stack, merchant, paid.id)
    assert [e["reason"] for e in entries] == ["refund_failed"], entries
    [entry] = entries
    assert note.number in entry["note"] and "re_note_late" in entry["note"], entry["note"]
    assert entry["status"] == "open" and entry["amount"]["amount_minor"] == 2000, entry
    assert (await merchant_event_types(stack, merchant)).count("quarantine.created") == 1


async def test_a_credit_note_recorded_while_the_failure_is_applied_is_named_in_its_entry(
    stack: ServiceStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other order of the race above: the failure's transaction has read the session's refunds (no credit
    note yet) when the worker records the refund's credit note and commits; the failure then writes the refund
    and opens its `refund_failed` entry. The entry must name the credit note, read after the refund row is
    written (before, it used the read that predates the credit note, and nothing named it afterwards)."""
    merchant = await stack.create_merchant()
    paid, _ = await _paid_and_refunded(stack, merchant, "re_note_race", billing_down=True)

    pool = stack.pools["session"]
    read_refunds = refunds_repo.session_refunds

    async def read_then_the_worker_commits(conn: Any, session_id: uuid.UUID) -> Any:
        rows = await read_refunds(conn, session_id)
        [row] = [r for r in rows if r["provider_refund_id"] == "re_note_race"]
        async with pool.acquire() as other:
            assert await refunds_repo.record_credit_note(other, row, "cn_race", "CN-RACE-1", 2000)
        return rows

    monkeypatch.setattr(refunds_repo, "session_refunds", read_then_the_worker_commits)
    detail = refunds.RefundEventDetail(
        refunds=(refunds.ProviderRefundReport("re_note_race", Money(2000, "EUR", 2), "failed"),),
        charge_id=paid.charge,
        reported_at=datetime.now(UTC),
    )
    command = EventCommand(
        session_id=paid.id,
        provider="stripe",
        provider_event_id=f"evt_race_{uuid.uuid4().hex[:12]}",
        kind=EventKind.REFUNDED,
        amount=None,
        provider_reference=paid.payment_intent,
        occurred_at=datetime.now(UTC),
        mode=Mode.TEST,
        provider_event_type="charge.refund.updated",
    )
    outcome = await refunds.apply_refund_event(pool, command, detail)
    assert outcome.outcome is ApplyOutcome.APPLIED
    monkeypatch.undo()

    [entry] = await _quarantine(stack, merchant, paid.id)
    assert entry["reason"] == "refund_failed" and "CN-RACE-1" in entry["note"], entry["note"]
    await stack.start_service("billing")


async def test_a_onecom_refund_that_names_no_refund_is_quarantined_not_dropped(stack: ServiceStack) -> None:
    """One.com's `payment.refunded` without its `refund_id` cannot be credited (nothing says which refund it
    is, so a redelivery could not be told from a second refund), but the money did go back: the merchant must
    see it. (A walk found it answered 200 and stored as `ignored` / `malformed_payload`, seen by no merchant.)"""
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, "10.00", provider="onecom")
    body = {
        "type": "payment.refunded",
        "data": {
            "session_id": paid.id,
            "transaction_id": paid.payment_intent,
            "amount_minor": 100,
            "currency": "EUR",
        },
    }
    sent = await send_onecom(stack, body)
    assert await applied(stack, "onecom", sent["event_id"]) == "quarantined"
    [entry] = await _quarantine(stack, merchant, paid.id)
    assert entry["status"] == "open" and entry["amount"]["amount_minor"] == 100, entry
    assert entry["reason"] == "refunded" and entry["provider"] == "onecom", entry
    session = await session_json(stack, merchant, paid.id)
    assert session["amount_refunded"] == "0.00" and session["status"] == "paid"


async def test_dispute_events_carry_the_disputed_money(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, "20.00")
    for event_type, status_ in (
        ("charge.dispute.created", "needs_response"),
        ("charge.dispute.closed", "won"),
    ):
        event = dispute_event(event_type, "dp_money", paid.payment_intent, paid.charge, 1500, status_)
        assert await applied(stack, "stripe", (await send_stripe(stack, event))["event_id"]) == "applied"
    objects = await _dispute_objects(stack, merchant)
    assert [t for t, _ in objects] == ["dispute.created", "dispute.closed"]
    for _, obj in objects:
        assert obj["id"] == "dp_money" and obj["object"] == "dispute" and obj["session_id"] == paid.id
        assert (obj["amount"], obj["amount_minor"], obj["currency"]) == ("15.00", 1500, "EUR"), obj
    assert [obj["status"] for _, obj in objects] == ["open", "won"]


async def test_a_refund_failed_entry_is_found_by_its_refund_not_by_its_wording(stack: ServiceStack) -> None:
    """The `refund_failed` entry names its refund (session migration 0200), and the credit note recorded after
    the failure is named in that entry whatever its note says: one written by an older release, in other words,
    is still found, and no second entry tells of the same failure."""
    merchant = await stack.create_merchant()

    async def reworded(paid: Any) -> None:
        conn = await stack.db.admin()
        try:
            linked = await conn.fetchval(
                """UPDATE session.quarantine q SET note = 'the refund re_reworded did not go through'
                     FROM session.refunds r
                    WHERE q.session_id = $1 AND q.reason = 'refund_failed' AND r.id = q.refund_id
                      AND r.provider_refund_id = 're_reworded'
                   RETURNING q.id""",
                uuid.UUID(paid.id),
            )
        finally:
            await conn.close()
        assert linked is not None, "the refund_failed entry names no refund"

    paid = await _credit_note_issued_after_failure(stack, merchant, "re_reworded", reworded)
    [note] = await credit_notes(stack, merchant, paid.id)
    [entry] = await _quarantine(stack, merchant, paid.id)
    assert entry["reason"] == "refund_failed" and note.number in entry["note"], entry


async def _credit_note_issued_after_failure(
    stack: ServiceStack, merchant: Merchant, refund_id: str, meanwhile: Callable[[Any], Awaitable[None]]
) -> Any:
    """A refund of 20.00 succeeds while billing is down, so the stack's own worker cannot issue its credit note;
    a worker then reads it as succeeded and asks billing, and the refund fails (its `refund_failed` entry
    opens) before billing answers. `meanwhile(paid)` runs between the failure and billing's answer. Returns
    the paid session, its credit note issued."""
    paid, _ = await _paid_and_refunded(stack, merchant, refund_id, billing_down=True)

    class BillingAnswersAfterTheFailure:
        async def IssueCreditNote(self, request: Any, timeout: float) -> Any:
            failed = refund_object(refund_id, 2000, paid.payment_intent, paid.charge, "failed")
            sent = await send_stripe(stack, stripe_envelope("charge.refund.updated", failed))
            assert await applied(stack, "stripe", sent["event_id"]) == "applied"
            await meanwhile(paid)
            await stack.start_service("billing")
            return await stack.billing.IssueCreditNote(request, timeout=timeout)

    downstream = SimpleNamespace(billing=BillingAnswersAfterTheFailure(), keys=None, deadline_s=5.0)
    worker = RefundEffects(stack.pools["session"], cast(Any, downstream))
    async with stack.pools["session"].acquire() as conn:
        [due] = [r for r in await refunds_repo.credit_notes_due(conn, 50) if str(r["sid"]) == paid.id]
    assert await worker._credit_note(due) == 1
    return paid
