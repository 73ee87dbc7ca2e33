"""ApplyPaymentEvent over real gRPC and Postgres: idempotency, ordering, money checks, quarantine, audit."""

from __future__ import annotations

import uuid

import asyncpg
import grpc
import pytest
from session_itest_support import OUTCOME, STATUS, admin_fetch, admin_val, apply, create_session, eur

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from paygate_runtime.grpc_errors import error_code
from support.stack import ServiceStack


async def _get(stack: ServiceStack, session_id: str) -> session_pb2.Session:
    return await stack.session.GetSession(session_pb2.GetSessionRequest(session_id=session_id), timeout=5)


async def test_redelivery_returns_first_outcome_and_changes_nothing(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant.id)
    first = await apply(stack, session.id, "succeeded", amount=eur(9999), event_id="evt_dup")
    again = await apply(stack, session.id, "succeeded", amount=eur(9999), event_id="evt_dup")
    assert OUTCOME[first.outcome] == "applied"
    assert OUTCOME[again.outcome] == "duplicate"
    assert OUTCOME[again.first_outcome] == "applied"
    # A redelivery of a quarantined event names the same quarantine entry and creates no second one.
    short = await create_session(stack, merchant.id)
    q1 = await apply(stack, short.id, "succeeded", amount=eur(100), event_id="evt_short")
    q2 = await apply(stack, short.id, "succeeded", amount=eur(100), event_id="evt_short")
    assert OUTCOME[q2.outcome] == "duplicate" and OUTCOME[q2.first_outcome] == "amount_mismatch"
    assert q1.quarantine_id and q2.quarantine_id == q1.quarantine_id
    assert await admin_val(stack, "SELECT count(*) FROM session.quarantine") == 1
    got = await _get(stack, session.id)
    assert [(STATUS[m.from_status], STATUS[m.to_status]) for m in got.history] == [("created", "paid")]
    assert await admin_val(stack, "SELECT count(*) FROM session.outbox WHERE kind = 'fulfil'") == 1


async def test_same_payment_under_another_event_id_is_already_paid(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant.id, provider="stripe", expires_in_seconds=3600)
    await apply(stack, session.id, "succeeded", amount=eur(9999), reference="pi_A", provider="stripe")
    again = await apply(stack, session.id, "succeeded", amount=eur(9999), reference="pi_A", provider="stripe")
    assert OUTCOME[again.outcome] == "already_paid"
    assert await admin_val(stack, "SELECT count(*) FROM session.quarantine") == 0


async def test_out_of_order_events_never_move_a_paid_session(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant.id)
    await apply(stack, session.id, "succeeded", amount=eur(9999))
    late_pending = await apply(stack, session.id, "pending")
    late_failed = await apply(stack, session.id, "failed")
    late_expired = await apply(stack, session.id, "expired")
    assert {OUTCOME[r.outcome] for r in (late_pending, late_failed, late_expired)} == {"ignored_terminal"}
    got = await _get(stack, session.id)
    assert STATUS[got.status] == "paid" and got.payment_status == "paid"
    assert len(got.history) == 1
    # Recorded as processed (a redelivery is a duplicate of `ignored_terminal`), never re-decided.
    assert await admin_val(stack, "SELECT count(*) FROM session.processed_events") == 4


async def test_pending_then_paid_and_attempt_failed_is_only_recorded(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant.id)
    declined = await apply(stack, session.id, "attempt_failed")
    assert OUTCOME[declined.outcome] == "applied" and STATUS[declined.session.status] == "created"
    pending = await apply(stack, session.id, "pending")
    assert STATUS[pending.session.status] == "pending" and pending.session.payment_status == "processing"
    # A pending session never expires, neither by a provider event nor by the sweeper's rule.
    expired = await apply(stack, session.id, "expired")
    assert OUTCOME[expired.outcome] == "ignored_terminal"
    paid = await apply(stack, session.id, "succeeded", amount=eur(9999))
    assert STATUS[paid.session.status] == "paid"
    got = await _get(stack, session.id)
    moves = [(STATUS[m.from_status], STATUS[m.to_status], m.note) for m in got.history]
    assert moves == [
        ("created", "created", "attempt_failed"),
        ("created", "pending", "pending"),
        ("pending", "paid", "paid"),
    ]
    assert all(m.source_event_id.startswith("onecom:evt_") for m in got.history)


async def test_short_payment_and_wrong_currency_are_quarantined(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant.id)
    short = await apply(stack, session.id, "succeeded", amount=eur(9998), reference="pi_short")
    wrong = await apply(stack, session.id, "succeeded", amount=eur(9999, "USD"), reference="pi_usd")
    assert OUTCOME[short.outcome] == "amount_mismatch" and OUTCOME[wrong.outcome] == "amount_mismatch"
    assert STATUS[wrong.session.status] == "created"
    listed = await stack.session.ListQuarantine(
        session_pb2.ListQuarantineRequest(merchant_id=merchant.id), timeout=5
    )
    by_ref = {e.provider_reference: e for e in listed.entries}
    assert by_ref["pi_short"].reason == "amount_mismatch" and by_ref["pi_short"].amount.amount_minor == "9998"
    assert by_ref["pi_short"].expected.amount_minor == "9999" and by_ref["pi_usd"].amount.currency == "USD"
    assert all(e.status == "open" for e in listed.entries)
    # The right payment afterwards still pays the session.
    ok = await apply(stack, session.id, "succeeded", amount=eur(9999), reference="pi_ok")
    assert STATUS[ok.session.status] == "paid"


async def test_overpayment_pays_and_records_the_surplus(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant.id, amount="10.00")
    reply = await apply(stack, session.id, "succeeded", amount=eur(1250), reference="pi_over")
    assert OUTCOME[reply.outcome] == "overpaid" and STATUS[reply.session.status] == "paid"
    assert reply.session.amount_received.amount_minor == "1250"
    [entry] = (
        await stack.session.ListQuarantine(
            session_pb2.ListQuarantineRequest(merchant_id=merchant.id), timeout=5
        )
    ).entries
    assert entry.id == reply.quarantine_id and entry.reason == "overpaid"
    assert (entry.surplus.amount_minor, entry.surplus.exponent) == ("250", 2)


async def test_money_for_a_failed_session_is_a_double_charge_to_refund(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant.id)
    failed = await apply(stack, session.id, "failed")
    assert STATUS[failed.session.status] == "failed" and failed.session.payment_status == "failed"
    money = await apply(stack, session.id, "succeeded", amount=eur(9999), reference="pi_late")
    assert OUTCOME[money.outcome] == "payment_on_closed_session"
    assert STATUS[(await _get(stack, session.id)).status] == "failed"
    rows = await admin_fetch(stack, "SELECT reason, note FROM session.quarantine")
    assert [(r["reason"], r["note"]) for r in rows] == [
        ("payment_on_closed_session", "payment_on_failed_session")
    ]


async def test_mode_mismatch_and_refund_found_by_reference(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant.id, provider="stripe", expires_in_seconds=3600)
    live = await apply(
        stack,
        session.id,
        "succeeded",
        amount=eur(9999),
        reference="pi_live",
        provider="stripe",
        mode=common_pb2.MODE_LIVE,
    )
    assert OUTCOME[live.outcome] == "mode_mismatch" and STATUS[live.session.status] == "created"
    await apply(stack, session.id, "succeeded", amount=eur(9999), reference="pi_real", provider="stripe")
    # charge.refunded names only the PaymentIntent: the session is found by its paid reference.
    refund = await apply(stack, "", "refunded", amount=eur(9999), reference="pi_real", provider="stripe")
    assert OUTCOME[refund.outcome] == "recorded_for_review" and refund.session.id == session.id
    assert STATUS[refund.session.status] == "paid"
    reasons = {r["reason"] for r in await admin_fetch(stack, "SELECT reason FROM session.quarantine")}
    assert reasons == {"mode_mismatch", "refunded"}


async def test_unknown_session_is_not_found_and_nothing_is_recorded(stack: ServiceStack) -> None:
    for session_id in ("6f1c7c59-5a4b-4a43-9d8e-3c1c8f0b5e11", "not-a-uuid"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await apply(stack, session_id, "succeeded", amount=eur(100), event_id="evt_orphan")
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert error_code(caught.value) == "session_not_found"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await apply(stack, "", "refunded", reference="pi_nobody", event_id="evt_refund_orphan")
    assert error_code(caught.value) == "session_not_found"
    assert await admin_val(stack, "SELECT count(*) FROM session.processed_events") == 0
    # Once the session exists, the gateway's retry of the same event id applies normally.
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant.id)
    reply = await apply(stack, session.id, "succeeded", amount=eur(9999), event_id="evt_orphan")
    assert OUTCOME[reply.outcome] == "applied"


async def test_bad_events_are_refused_with_codes(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant.id)
    cases = [
        ({"kind": "succeeded", "reference": "pi"}, "missing_amount"),
        ({"kind": "succeeded", "amount": eur(9999), "reference": ""}, "missing_provider_reference"),
        ({"kind": "succeeded", "amount": eur(9999), "provider": "paypal"}, "invalid_provider"),
        ({"kind": "succeeded", "amount": eur(9999), "event_id": "x" * 300}, "invalid_provider_event_id"),
    ]
    for kwargs, code in cases:
        kind = kwargs.pop("kind")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await apply(stack, session.id, kind, **kwargs)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_code(caught.value) == code
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.session.ApplyPaymentEvent(
            session_pb2.ApplyPaymentEventRequest(
                session_id=session.id,
                provider="onecom",
                provider_event_id="e",
                kind=session_pb2.EVENT_KIND_SUCCEEDED,
                provider_reference="r",
                amount=common_pb2.Money(amount_minor="-5", currency="EUR", exponent=2),
            ),
            timeout=5,
        )
    assert error_code(caught.value) == "invalid_amount_minor"
    assert await admin_val(stack, "SELECT count(*) FROM session.processed_events") == 0


async def test_every_move_is_audited_and_the_audit_is_append_only(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant.id)
    await apply(stack, session.id, "pending")
    await apply(stack, session.id, "succeeded", amount=eur(9999))
    actions = [
        r["action"]
        for r in await admin_fetch(
            stack,
            "SELECT action FROM session.audit_log WHERE session_id = $1 ORDER BY id",
            uuid.UUID(session.id),
        )
    ]
    assert actions[:3] == ["session_created", "session_pending", "session_paid"]
    runtime = await asyncpg.connect(
        stack.db.runtime_dsn("session"), server_settings={"search_path": "session"}
    )
    try:
        for sql in (
            "UPDATE audit_log SET action = 'x'",
            "DELETE FROM audit_log",
            "DELETE FROM session_history",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await runtime.execute(sql)
    finally:
        await runtime.close()
