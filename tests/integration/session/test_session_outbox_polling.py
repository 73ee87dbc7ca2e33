"""The outbox dispatcher sleeps when there is nothing to do: an empty queue is never reported as due now."""

from __future__ import annotations

import asyncio

import pytest
from session_itest_support import admin_val, apply, create_session, eur

from session_service.adapters import session_repository as repo
from support.stack import ServiceStack


async def _next_due_in(stack: ServiceStack) -> float | None:
    async with stack.pools["session"].acquire() as conn:
        return await repo.next_due_in(conn)


async def test_next_due_in_is_none_for_an_empty_queue_and_never_negative(stack: ServiceStack) -> None:
    assert await _next_due_in(stack) is None
    # Without the dispatcher the paid session's outbox row stays pending where we put it.
    stack.env["PAYGATE_SESSION_WORKERS"] = "false"
    await stack.stop_service("session")
    await stack.start_service("session")
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant.id, "9.99")
    await apply(stack, session.id, "succeeded", amount=eur(999))
    assert await _next_due_in(stack) == 0.0
    await admin_val(stack, "UPDATE session.outbox SET next_attempt_at = now() + interval '1 hour'")
    due = await _next_due_in(stack)
    assert due is not None and 3500 < due <= 3600
    await admin_val(stack, "UPDATE session.outbox SET next_attempt_at = now() - interval '1 hour'")
    assert await _next_due_in(stack) == 0.0


async def test_an_idle_dispatcher_polls_about_once_a_second(
    stack: ServiceStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    claims = 0
    claim_outbox = repo.claim_outbox

    async def counting_claim(*args: object, **kwargs: object) -> object:
        nonlocal claims
        claims += 1
        return await claim_outbox(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(repo, "claim_outbox", counting_claim)
    await asyncio.sleep(0.5)
    claims = 0
    await asyncio.sleep(3)
    # PAYGATE_OUTBOX_POLL_MS defaults to 1000: three or four polls, where a queue misread as due polled ~300.
    assert claims <= 6, f"{claims} claims in 3 s of an empty queue"
