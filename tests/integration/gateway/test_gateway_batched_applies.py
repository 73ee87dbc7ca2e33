"""The relay applies the events it claimed together in batched calls, through the real gateway and the real
session service, and each event keeps the single call's meaning (verdicts, unknown sessions, retries).

Why: one ApplyPaymentEvent call per event cost the gateway about as much CPU as the rest of the apply while a
burst was being fulfilled (issue 16's profile: 29 % of the gateway's samples in grpc.aio's call path).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import pytest
from gateway_webhook_support import (
    FAST_RELAY_ENV,
    create_session,
    inbox,
    send_stripe,
    stripe_event,
    wait_for_session_status,
)

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2, session_pb2_grpc
from paygate_runtime.grpc_errors import ERROR_CODE_KEY, error_code, item_rpc_error
from support.polling import eventually
from support.stack import ServiceStack
from webhook_gateway.adapters.batched_applies import BatchedApplier

HANDLED = "paygate_grpc_server_handled_total"


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    # Busy above 0 replies in flight: every webhook counts as a burst, so the relay applies them all.
    return {**stack_env, **FAST_RELAY_ENV, "PAYGATE_WEBHOOK_BUSY_IN_FLIGHT": "0"}


def _calls(stack: ServiceStack, method: str) -> float:
    """How many calls of `method` the session service answered, from its own RPC metrics."""
    registry = stack.servers["session"].spec.metrics.registry
    total = 0.0
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == HANDLED and sample.labels.get("method") == method:
                total += sample.value
    return total


async def test_a_burst_is_applied_in_far_fewer_calls_than_events(stack: ServiceStack) -> None:
    """Failed before the batch existed: 24 events, 24 ApplyPaymentEvent calls."""
    merchant = await stack.create_merchant()
    sessions = [await create_session(stack, merchant) for _ in range(24)]
    before = _calls(stack, "ApplyPaymentEvent") + _calls(stack, "ApplyPaymentEvents")
    replies = await asyncio.gather(
        *(send_stripe(stack, stripe_event("payment_intent.succeeded", s)) for s in sessions)
    )
    assert all(status == 200 for status, _ in replies)
    for session in sessions:
        await wait_for_session_status(stack, merchant, session["id"], "paid", timeout=20)
    rows = await inbox(stack)
    assert len(rows) == 24 and {(row["status"], row["outcome"]) for row in rows} == {("applied", "applied")}

    calls = _calls(stack, "ApplyPaymentEvent") + _calls(stack, "ApplyPaymentEvents") - before
    assert _calls(stack, "ApplyPaymentEvents") >= 1
    assert calls <= 6, f"{calls:.0f} calls for 24 events"


class _ScriptedSession(session_pb2_grpc.SessionServiceServicer):
    """A session service that answers each event by its id: `unknown` NOT_FOUND, `busy` UNAVAILABLE, `bad`
    INVALID_ARGUMENT, anything else applied; with or without the batched call (an older service)."""

    def __init__(self, *, batched: bool) -> None:
        self.batched = batched
        self.batches: list[int] = []
        self.singles = 0

    @staticmethod
    def answer(request: session_pb2.ApplyPaymentEventRequest) -> session_pb2.ApplyPaymentEventsResult:
        for marker, status, code in (
            ("unknown", grpc.StatusCode.NOT_FOUND, "session_not_found"),
            ("busy", grpc.StatusCode.UNAVAILABLE, "shutting_down"),
            ("bad", grpc.StatusCode.INVALID_ARGUMENT, "invalid_amount"),
        ):
            if marker in request.provider_event_id:
                error = common_pb2.ItemError(status=status.value[0], code=code, message=code)
                return session_pb2.ApplyPaymentEventsResult(error=error)
        applied = session_pb2.ApplyPaymentEventResponse(outcome=session_pb2.APPLY_OUTCOME_APPLIED)
        return session_pb2.ApplyPaymentEventsResult(applied=applied)

    async def ApplyPaymentEvent(self, request: Any, context: Any) -> Any:
        self.singles += 1
        result = self.answer(request)
        if result.HasField("error"):
            error = item_rpc_error(result.error)  # the status and code this item stands for
            await context.abort(
                error.code(), error.details(), trailing_metadata=((ERROR_CODE_KEY, result.error.code),)
            )
        return result.applied

    async def ApplyPaymentEvents(self, request: Any, context: Any) -> Any:
        if not self.batched:
            return await super().ApplyPaymentEvents(request, context)  # UNIMPLEMENTED, as an older service
        self.batches.append(len(request.items))
        return session_pb2.ApplyPaymentEventsResponse(results=[self.answer(item) for item in request.items])


async def _applied_side_by_side(batched: bool) -> tuple[_ScriptedSession, dict[str, Any]]:
    script = _ScriptedSession(batched=batched)
    server = grpc.aio.server()
    session_pb2_grpc.add_SessionServiceServicer_to_server(script, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            applier = BatchedApplier(session_pb2_grpc.SessionServiceStub(channel), deadline_s=5)
            ids = ["evt_ok_1", "evt_unknown", "evt_ok_2", "evt_busy", "evt_bad", "evt_ok_3"]

            async def one(event_id: str) -> Any:
                request = session_pb2.ApplyPaymentEventRequest(
                    session_id=str(uuid.uuid4()), provider="stripe", provider_event_id=event_id
                )
                try:
                    return await applier.apply(request)
                except grpc.aio.AioRpcError as error:
                    return error

            # A lone event first (sent alone, with the single call), then six side by side.
            await one("evt_alone")
            outcomes = await asyncio.gather(*(one(event_id) for event_id in ids))
            return script, dict(zip(ids, outcomes, strict=True))
    finally:
        await server.stop(None)


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "older-session-service"])
async def test_each_event_of_a_batch_fails_or_succeeds_as_its_single_call_would(batched: bool) -> None:
    script, outcomes = await _applied_side_by_side(batched)
    for event_id in ("evt_ok_1", "evt_ok_2", "evt_ok_3"):
        assert outcomes[event_id].outcome == session_pb2.APPLY_OUTCOME_APPLIED
    # The processor classifies these exactly as the single call's errors: unknown session, transient, failed.
    expected = {
        "evt_unknown": (grpc.StatusCode.NOT_FOUND, "session_not_found"),
        "evt_busy": (grpc.StatusCode.UNAVAILABLE, "shutting_down"),
        "evt_bad": (grpc.StatusCode.INVALID_ARGUMENT, "invalid_amount"),
    }
    for event_id, (status, code) in expected.items():
        error = outcomes[event_id]
        assert isinstance(error, grpc.aio.AioRpcError)
        assert (error.code(), error_code(error)) == (status, code)
    if batched:
        # The lone event alone; the six together, in at most two calls (one may leave before the rest).
        assert script.singles == 1
        assert sum(script.batches) + script.singles - 1 == 6 and len(script.batches) <= 2
    else:
        # The older service refused the batch; every event was then asked alone.
        assert script.singles == 7 and script.batches == []


async def test_the_inbox_keeps_each_events_own_verdict_when_applied_in_a_batch(stack: ServiceStack) -> None:
    """An event for a session the session service does not know waits (NOT_FOUND is retried until the
    unknown-session window ends), while the events beside it in the same batch are applied."""
    merchant = await stack.create_merchant()
    sessions = [await create_session(stack, merchant) for _ in range(4)]
    stray = {"id": str(uuid.uuid4()), "amount_minor": 2500, "currency": "EUR"}
    events = [stripe_event("payment_intent.succeeded", s) for s in (*sessions, stray)]
    replies = await asyncio.gather(*(send_stripe(stack, event) for event in events))
    assert all(status == 200 for status, _ in replies)
    for session in sessions:
        await wait_for_session_status(stack, merchant, session["id"], "paid", timeout=20)

    async def stray_retried() -> dict[str, Any] | None:
        rows = {str(row["session_id"]): row for row in await inbox(stack)}
        row = rows.get(stray["id"])
        return row if row is not None and row["attempts"] >= 1 and row["last_error"] else None

    row = await eventually(stray_retried, timeout=20, what="the stray event retried")
    assert row["status"] == "received" and "session_not_found" in row["last_error"]
