"""One provider payment's money is quarantined once, over real gRPC and Postgres.

The gateway reports one payment under several event ids: One.com's webhook (`msg_...`) and reconciliation's
read of One.com's API (`reconcile_pay_..._succeeded`), or Stripe's `checkout.session.completed` and
`payment_intent.succeeded`. Each is a new event for the session service (its own processed-event row), but a
payment whose money is already in quarantine is the recorded no-op `already_quarantined`: one entry, one
`quarantine.created` merchant event, whatever the order, the session's state by then, or the race.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from session_itest_support import OUTCOME, admin_fetch, admin_val, apply, create_session, eur

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from paygate_runtime.money import Money
from session_service.adapters import move_groups, session_repository
from session_service.domain.payment_events import ApplyOutcome, EventKind
from session_service.service_layer.event_groups import GroupedEventApplier
from session_service.service_layer.payment_events import Applied, EventCommand, apply_payment_event
from support.stack import ServiceStack


async def _entries(stack: ServiceStack, session_id: str) -> list[dict[str, object]]:
    rows = await admin_fetch(
        stack,
        """SELECT id, reason, note, provider, provider_event_id, provider_reference, status, amount_minor
             FROM session.quarantine WHERE session_id = $1 ORDER BY created_at""",
        uuid.UUID(session_id),
    )
    return [dict(row) for row in rows]


async def _quarantine_events(stack: ServiceStack, merchant_id: str) -> int:
    return int(
        await admin_val(
            stack,
            "SELECT count(*) FROM session.merchant_events WHERE merchant_id = $1 AND type = 'quarantine.created'",
            uuid.UUID(merchant_id),
        )
    )


async def test_webhook_then_reconcile_of_a_short_payment_is_one_entry(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant.id, amount="5.00", provider="onecom")
    webhook = await apply(
        stack, session.id, "succeeded", amount=eur(499), reference="pay_A", event_id="msg_1"
    )
    assert OUTCOME[webhook.outcome] == "amount_mismatch" and webhook.quarantine_id
    reconcile = await apply(
        stack,
        session.id,
        "succeeded",
        amount=eur(499),
        reference="pay_A",
        event_id="reconcile_pay_A_succeeded",
    )
    assert OUTCOME[reconcile.outcome] == "already_quarantined"
    # The no-op names the entry that holds the money, and a redelivery of it answers the same.
    assert reconcile.quarantine_id == webhook.quarantine_id
    again = await apply(
        stack,
        session.id,
        "succeeded",
        amount=eur(499),
        reference="pay_A",
        event_id="reconcile_pay_A_succeeded",
    )
    assert OUTCOME[again.outcome] == "duplicate" and OUTCOME[again.first_outcome] == "already_quarantined"
    assert again.quarantine_id == webhook.quarantine_id
    [entry] = await _entries(stack, session.id)
    assert (entry["reason"], entry["provider_reference"], entry["status"]) == (
        "amount_mismatch",
        "pay_A",
        "open",
    )
    assert str(entry["id"]) == webhook.quarantine_id
    assert await _quarantine_events(stack, merchant.id) == 1
    outcomes = await admin_fetch(
        stack,
        "SELECT provider_event_id, outcome, quarantine_id FROM session.processed_events ORDER BY processed_at",
    )
    assert [(r["provider_event_id"], r["outcome"]) for r in outcomes] == [
        ("msg_1", "amount_mismatch"),
        ("reconcile_pay_A_succeeded", "already_quarantined"),
    ]
    assert {str(r["quarantine_id"]) for r in outcomes} == {webhook.quarantine_id}


async def test_reconcile_then_webhook_and_two_reconciles_are_one_entry(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant.id, amount="5.00", provider="onecom")
    events = ["reconcile_pay_B_succeeded", "msg_late", "reconcile_pay_B_succeeded_replica", "msg_other"]
    replies = [
        await apply(stack, session.id, "succeeded", amount=eur(499), reference="pay_B", event_id=event_id)
        for event_id in events
    ]
    assert [OUTCOME[r.outcome] for r in replies] == ["amount_mismatch"] + ["already_quarantined"] * 3
    assert len(await _entries(stack, session.id)) == 1
    assert await _quarantine_events(stack, merchant.id) == 1


async def test_wrong_currency_and_late_money_are_one_entry_each(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    wrong = await create_session(stack, merchant.id, amount="5.00", provider="onecom")
    usd = [
        await apply(stack, wrong.id, "succeeded", amount=eur(500, "USD"), reference="pay_usd")
        for _ in range(2)
    ]
    assert [OUTCOME[r.outcome] for r in usd] == ["amount_mismatch", "already_quarantined"]
    assert [e["note"] for e in await _entries(stack, wrong.id)] == ["currency_mismatch"]

    late = await create_session(stack, merchant.id, amount="5.00", provider="onecom")
    await stack.session.ExpireSession(
        session_pb2.ExpireSessionRequest(session_id=late.id, merchant_id=merchant.id), timeout=5
    )
    money = [
        await apply(stack, late.id, "succeeded", amount=eur(500), reference="pay_late") for _ in range(2)
    ]
    assert [OUTCOME[r.outcome] for r in money] == ["payment_on_closed_session", "already_quarantined"]
    assert [e["reason"] for e in await _entries(stack, late.id)] == ["payment_on_closed_session"]
    assert await _quarantine_events(stack, merchant.id) == 2


async def test_short_money_reported_again_after_the_session_expired_is_not_a_second_entry(
    stack: ServiceStack,
) -> None:
    """Quarantined as amount_mismatch while the session was open; the session then expires; the same payment
    is reported again (reconciliation's late read, or the webhook's late delivery). It is the same money: a
    second entry as payment_on_closed_session would be refunded twice."""
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant.id, amount="5.00", provider="onecom")
    first = await apply(stack, session.id, "succeeded", amount=eur(499), reference="pay_C")
    assert OUTCOME[first.outcome] == "amount_mismatch"
    await stack.session.ExpireSession(
        session_pb2.ExpireSessionRequest(session_id=session.id, merchant_id=merchant.id), timeout=5
    )
    later = await apply(stack, session.id, "succeeded", amount=eur(499), reference="pay_C")
    assert OUTCOME[later.outcome] == "already_quarantined"
    assert [e["reason"] for e in await _entries(stack, session.id)] == ["amount_mismatch"]
    # Another payment for the expired session is its own finding.
    other = await apply(stack, session.id, "succeeded", amount=eur(500), reference="pay_D")
    assert OUTCOME[other.outcome] == "payment_on_closed_session"
    assert len(await _entries(stack, session.id)) == 2


async def test_stripe_two_events_of_one_mismatched_payment_are_one_entry(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(
        stack, merchant.id, amount="12.34", provider="stripe", expires_in_seconds=3600
    )
    completed = await apply(
        stack,
        session.id,
        "succeeded",
        amount=eur(1233),
        reference="pi_X",
        provider="stripe",
        event_id="evt_cs",
    )
    succeeded = await apply(
        stack,
        session.id,
        "succeeded",
        amount=eur(1233),
        reference="pi_X",
        provider="stripe",
        event_id="evt_pi",
    )
    assert [OUTCOME[completed.outcome], OUTCOME[succeeded.outcome]] == [
        "amount_mismatch",
        "already_quarantined",
    ]
    live = [
        await apply(
            stack,
            session.id,
            "succeeded",
            amount=eur(1234),
            reference="pi_live",
            provider="stripe",
            mode=common_pb2.MODE_LIVE,
        )
        for _ in range(2)
    ]
    assert [OUTCOME[r.outcome] for r in live] == ["mode_mismatch", "already_quarantined"]
    assert sorted(e["reason"] for e in await _entries(stack, session.id)) == [
        "amount_mismatch",
        "mode_mismatch",
    ]
    # The right payment still pays the session.
    paid = await apply(stack, session.id, "succeeded", amount=eur(1234), reference="pi_ok", provider="stripe")
    assert OUTCOME[paid.outcome] == "applied"


async def test_many_reports_of_one_payment_at_once_open_one_entry(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    sessions = [await create_session(stack, merchant.id, amount="5.00", provider="onecom") for _ in range(3)]

    async def report(session_id: str, n: int) -> session_pb2.ApplyPaymentEventResponse:
        return await apply(
            stack,
            session_id,
            "succeeded",
            amount=eur(499),
            reference=f"pay_{session_id}",
            event_id=f"e{n}_{session_id}",
        )

    replies = await asyncio.gather(*(report(s.id, n) for s in sessions for n in range(6)))
    for s in sessions:
        mine = [r for r in replies if r.session.id == s.id]
        assert sorted(OUTCOME[r.outcome] for r in mine) == ["already_quarantined"] * 5 + ["amount_mismatch"]
        [entry] = await _entries(stack, s.id)
        assert {r.quarantine_id for r in mine} == {str(entry["id"])}
    assert await _quarantine_events(stack, merchant.id) == 3


def _short(session_id: str, event_id: str) -> EventCommand:
    return EventCommand(
        session_id=session_id,
        provider="onecom",
        provider_event_id=event_id,
        kind=EventKind.SUCCEEDED,
        amount=Money(499, "EUR", 2),
        provider_reference="pay_race",
        occurred_at=datetime.now(UTC),
        mode=None,
    )


async def test_a_report_that_races_the_first_one_is_decided_again_on_its_entry(
    stack: ServiceStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhook and reconciliation read the session before either wrote (a quarantine moves no session
    column, so the conditional write alone cannot tell): the database's one-entry-per-payment index refuses
    the second write, and its event is decided again as `already_quarantined`."""
    merchant = await stack.create_merchant()
    pool = stack.pools["session"]
    session = await create_session(stack, merchant.id, amount="5.00", provider="onecom")
    read_for_event = session_repository.read_for_event
    raced: list[Applied] = []
    racing = [True]

    async def read_then_race(*args: Any, **kwargs: Any) -> Any:
        row = await read_for_event(*args, **kwargs)
        if racing.pop() if racing else False:
            # The webhook commits its entry after this read and before this write.
            raced.append(await apply_payment_event(pool, _short(session.id, "msg_webhook")))
        return row

    monkeypatch.setattr(session_repository, "read_for_event", read_then_race)
    late = await apply_payment_event(pool, _short(session.id, "reconcile_pay_race_succeeded"))
    assert raced[0].outcome is ApplyOutcome.AMOUNT_MISMATCH
    assert late.outcome is ApplyOutcome.ALREADY_QUARANTINED
    assert late.quarantine_id == raced[0].quarantine_id
    assert [str(e["id"]) for e in await _entries(stack, session.id)] == [str(raced[0].quarantine_id)]


async def test_a_group_that_races_a_report_of_its_payment_applies_alone(
    stack: ServiceStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    merchant = await stack.create_merchant()
    pool = stack.pools["session"]
    racing = await create_session(stack, merchant.id, amount="5.00", provider="onecom")
    other = await create_session(stack, merchant.id, amount="5.00", provider="onecom")
    read_for_events = move_groups.read_for_events
    raced: list[Applied] = []

    async def read_then_race(*args: Any, **kwargs: Any) -> Any:
        rows = await read_for_events(*args, **kwargs)
        if not raced:
            # Another replica quarantines the payment after the group's read and before its write.
            raced.append(await apply_payment_event(pool, _short(racing.id, "msg_webhook")))
        return rows

    monkeypatch.setattr(move_groups, "read_for_events", read_then_race)
    applier = GroupedEventApplier(pool)
    results = await asyncio.gather(
        applier.apply(_short(racing.id, "reconcile_pay_race_succeeded")),
        applier.apply(_short(other.id, "msg_other")),
    )
    assert raced[0].outcome is ApplyOutcome.AMOUNT_MISMATCH
    assert [r.outcome for r in results] == [ApplyOutcome.ALREADY_QUARANTINED, ApplyOutcome.AMOUNT_MISMATCH]
    assert applier.groups == 1
    assert len(await _entries(stack, racing.id)) == 1
    assert len(await _entries(stack, other.id)) == 1
