"""Group commit of ApplyPaymentEvent against real Postgres: a burst is read and written as one group and
every event still gets exactly the answer and the rows it would get alone; what a group cannot settle
(an event recorded meanwhile elsewhere, a session locked elsewhere) is applied one at a time."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from session_itest_support import admin_val, create_session

from paygate_runtime.errors import NotFound
from paygate_runtime.money import Money
from session_service.adapters import move_groups
from session_service.domain.payment_events import ApplyOutcome, EventKind
from session_service.service_layer.event_groups import GroupedEventApplier
from session_service.service_layer.payment_events import Applied, EventCommand, apply_payment_event
from support.stack import ServiceStack


def _command(
    session_id: str,
    kind: EventKind,
    event_id: str,
    *,
    minor: int | None = 999,
    reference: str = "pi_1",
) -> EventCommand:
    return EventCommand(
        session_id=session_id,
        provider="onecom",
        provider_event_id=event_id,
        kind=kind,
        amount=Money(minor, "EUR", 2) if minor is not None else None,
        provider_reference=reference,
        occurred_at=datetime.now(UTC),
        mode=None,
    )


async def _sessions(stack: ServiceStack, count: int) -> list[str]:
    merchant = await stack.create_merchant()
    return [(await create_session(stack, merchant.id, "9.99")).id for _ in range(count)]


async def _count(stack: ServiceStack, table: str, session_id: str, where: str = "true") -> int:
    return await admin_val(
        stack,
        f"SELECT count(*) FROM session.{table} WHERE session_id = $1 AND {where}",
        uuid.UUID(session_id),
    )


async def test_a_burst_is_one_group_and_every_event_gets_its_own_answer(stack: ServiceStack) -> None:
    a, b, c = await _sessions(stack, 3)
    unknown = str(uuid.uuid4())
    applier = GroupedEventApplier(stack.pools["session"])
    results: list[Any] = await asyncio.gather(
        applier.apply(_command(a, EventKind.SUCCEEDED, "e1")),
        applier.apply(_command(b, EventKind.SUCCEEDED, "e2", minor=500)),
        applier.apply(_command(c, EventKind.PENDING, "e3", minor=None)),
        applier.apply(_command(unknown, EventKind.SUCCEEDED, "e4")),
        # The same payment under another event id, and a redelivery of e1: both for session a, so both
        # wait for later groups and see e1's result.
        applier.apply(_command(a, EventKind.SUCCEEDED, "e5")),
        applier.apply(_command(a, EventKind.SUCCEEDED, "e1")),
        return_exceptions=True,
    )
    outcomes = [r if isinstance(r, BaseException) else (r.outcome, r.first_outcome) for r in results]
    assert outcomes[:3] == [
        (ApplyOutcome.APPLIED, None),
        (ApplyOutcome.AMOUNT_MISMATCH, None),
        (ApplyOutcome.APPLIED, None),
    ]
    assert isinstance(outcomes[3], NotFound)
    assert outcomes[4:] == [(ApplyOutcome.ALREADY_PAID, None), (ApplyOutcome.DUPLICATE, ApplyOutcome.APPLIED)]
    # Four sessions in the first group, then a's second and third events one group each.
    assert (applier.groups, applier.grouped_events) == (3, 6)
    first: Applied = results[0]
    assert first.session["status"] == "paid" and first.session["fulfilment_status"] == "pending"
    assert results[2].session["status"] == "pending"

    assert await _count(stack, "session_history", a, "to_status = 'paid'") == 1
    assert await _count(stack, "outbox", a, "kind = 'fulfil'") == 1
    assert await _count(stack, "quarantine", b, "reason = 'amount_mismatch'") == 1
    assert (
        await admin_val(stack, "SELECT status FROM session.sessions WHERE id = $1", uuid.UUID(b)) == "created"
    )
    assert (
        await admin_val(stack, "SELECT status FROM session.sessions WHERE id = $1", uuid.UUID(c)) == "pending"
    )
    recorded = await admin_val(
        stack, "SELECT array_agg(provider_event_id ORDER BY provider_event_id) FROM session.processed_events"
    )
    assert recorded == ["e1", "e2", "e3", "e5"]
    assert await _count(stack, "audit_log", a, "action = 'session_paid'") == 1


async def test_groups_hold_at_most_max_group_events(stack: ServiceStack) -> None:
    ids = await _sessions(stack, 10)
    applier = GroupedEventApplier(stack.pools["session"], max_group=4)
    results = await asyncio.gather(
        *(applier.apply(_command(sid, EventKind.SUCCEEDED, f"m{i}")) for i, sid in enumerate(ids))
    )
    assert {r.outcome for r in results} == {ApplyOutcome.APPLIED}
    assert (applier.groups, applier.grouped_events) == (3, 10)
    assert await admin_val(stack, "SELECT count(*) FROM session.sessions WHERE status = 'paid'") == 10


async def test_an_event_recorded_meanwhile_sends_the_group_one_at_a_time(
    stack: ServiceStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another replica records one of the group's events between the group's read and its write: the
    write fails whole on the processed-events key, and every event is then applied alone, exactly once."""
    a, b, c = await _sessions(stack, 3)
    pool = stack.pools["session"]
    raced = _command(b, EventKind.ATTEMPT_FAILED, "declined-1", minor=None)
    read_for_events = move_groups.read_for_events

    async def read_then_race(*args: Any, **kwargs: Any) -> Any:
        rows = await read_for_events(*args, **kwargs)
        # attempt_failed leaves the session's state as it was, so only the event key can collide.
        assert (await apply_payment_event(pool, raced)).outcome is ApplyOutcome.APPLIED
        return rows

    monkeypatch.setattr(move_groups, "read_for_events", read_then_race)
    applier = GroupedEventApplier(pool)
    results = await asyncio.gather(
        applier.apply(_command(a, EventKind.SUCCEEDED, "s-a")),
        applier.apply(raced),
        applier.apply(_command(c, EventKind.SUCCEEDED, "s-c")),
    )
    assert [(r.outcome, r.first_outcome) for r in results] == [
        (ApplyOutcome.APPLIED, None),
        (ApplyOutcome.DUPLICATE, ApplyOutcome.APPLIED),
        (ApplyOutcome.APPLIED, None),
    ]
    assert applier.groups == 1
    for sid in (a, c):
        assert await _count(stack, "session_history", sid, "to_status = 'paid'") == 1
        assert await _count(stack, "outbox", sid) == 1
    assert await _count(stack, "session_history", b) == 1
    assert await admin_val(stack, "SELECT count(*) FROM session.processed_events") == 3


async def test_a_session_locked_elsewhere_does_not_hold_up_its_group(stack: ServiceStack) -> None:
    a, b = await _sessions(stack, 2)
    applier = GroupedEventApplier(stack.pools["session"])
    holder = await stack.db.admin()
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("SELECT 1 FROM session.sessions WHERE id = $1 FOR UPDATE", uuid.UUID(a))
        paying_a = asyncio.create_task(applier.apply(_command(a, EventKind.SUCCEEDED, "l-a")))
        paying_b = asyncio.create_task(applier.apply(_command(b, EventKind.SUCCEEDED, "l-b")))
        # b is answered while a's row is still locked: the group skipped a and moved on.
        assert (await asyncio.wait_for(paying_b, timeout=5)).outcome is ApplyOutcome.APPLIED
        await asyncio.sleep(0.3)
        assert not paying_a.done()
        await transaction.rollback()
        assert (await asyncio.wait_for(paying_a, timeout=5)).outcome is ApplyOutcome.APPLIED
    finally:
        await holder.close()
    assert await _count(stack, "session_history", a, "to_status = 'paid'") == 1
    assert await _count(stack, "session_history", b, "to_status = 'paid'") == 1


async def test_a_caller_that_gave_up_before_its_group_ran_wrote_nothing(stack: ServiceStack) -> None:
    (a,) = await _sessions(stack, 1)
    applier = GroupedEventApplier(stack.pools["session"])
    call = asyncio.create_task(applier.apply(_command(a, EventKind.SUCCEEDED, "gone")))
    await asyncio.sleep(0)  # the call has queued its event; the group has not started yet
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    while applier._drain_task is not None:
        await asyncio.sleep(0.01)
    assert await admin_val(stack, "SELECT count(*) FROM session.processed_events") == 0
    assert (
        await admin_val(stack, "SELECT status FROM session.sessions WHERE id = $1", uuid.UUID(a)) == "created"
    )
    # Its redelivery is applied as new.
    assert (await applier.apply(_command(a, EventKind.SUCCEEDED, "gone"))).outcome is ApplyOutcome.APPLIED
