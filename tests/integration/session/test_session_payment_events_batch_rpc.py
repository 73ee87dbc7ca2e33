"""ApplyPaymentEvents over real gRPC and Postgres: each item as ApplyPaymentEvent would answer it, on its own.

The gateway sends the events its relay claimed together in one call (webhook_gateway.adapters.batched_applies);
what must not change is the meaning of each: same outcomes, same idempotency, one state move and one
fulfilment per paid session, and one item's refusal never touching the others.
"""

from __future__ import annotations

import uuid

import grpc
import pytest
from session_itest_support import KIND, OUTCOME, STATUS, admin_val, create_session, eur

from paygate.session.v1 import session_pb2
from paygate_runtime.grpc_errors import error_code
from session_service.entrypoints.grpc_servicer import MAX_APPLY_BATCH
from support.stack import ServiceStack


def _event(
    session_id: str, kind: str = "succeeded", minor: int | None = 9999, **fields: str
) -> session_pb2.ApplyPaymentEventRequest:
    request = session_pb2.ApplyPaymentEventRequest(
        session_id=session_id,
        provider="onecom",
        provider_event_id=fields.pop("event_id", f"evt_{uuid.uuid4().hex}"),
        kind=KIND[kind],
        provider_reference=fields.pop("reference", f"pi_{uuid.uuid4().hex[:8]}"),
    )
    if minor is not None:
        request.amount.CopyFrom(eur(minor))
    return request


async def _batch(
    stack: ServiceStack, items: list[session_pb2.ApplyPaymentEventRequest]
) -> list[session_pb2.ApplyPaymentEventsResult]:
    reply = await stack.session.ApplyPaymentEvents(
        session_pb2.ApplyPaymentEventsRequest(items=items), timeout=10
    )
    return list(reply.results)


async def test_each_item_is_applied_and_answered_as_the_single_call_would(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    paid = [await create_session(stack, merchant.id) for _ in range(5)]
    short = await create_session(stack, merchant.id)
    items = [_event(s.id, event_id=f"evt_batch_{n}") for n, s in enumerate(paid)]
    items.append(_event(short.id, minor=100, event_id="evt_batch_short"))

    results = await _batch(stack, items)

    assert [r.WhichOneof("outcome") for r in results] == ["applied"] * 6
    assert [OUTCOME[r.applied.outcome] for r in results] == ["applied"] * 5 + ["amount_mismatch"]
    # In the request's order, each with its own session.
    assert [r.applied.session.id for r in results] == [item.session_id for item in items]
    assert all(STATUS[r.applied.session.status] == "paid" for r in results[:5])
    assert results[5].applied.quarantine_id
    assert await admin_val(stack, "SELECT count(*) FROM session.outbox WHERE kind = 'fulfil'") == 5

    # The same batch again: every item a duplicate with its first outcome, nothing written twice.
    again = await _batch(stack, items)
    assert [OUTCOME[r.applied.outcome] for r in again] == ["duplicate"] * 6
    assert [OUTCOME[r.applied.first_outcome] for r in again] == ["applied"] * 5 + ["amount_mismatch"]
    assert again[5].applied.quarantine_id == results[5].applied.quarantine_id
    assert await admin_val(stack, "SELECT count(*) FROM session.outbox WHERE kind = 'fulfil'") == 5
    assert await admin_val(stack, "SELECT count(*) FROM session.quarantine") == 1


async def test_one_session_twice_in_a_batch_moves_once(stack: ServiceStack) -> None:
    """Two payments of one session in one call (a double charge): one pays, the other is quarantined, as two
    single calls in a row would decide; the order inside the call is the order of the items."""
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant.id)
    first, second = _event(session.id, reference="pi_first"), _event(session.id, reference="pi_second")

    results = await _batch(stack, [first, second])

    assert [OUTCOME[r.applied.outcome] for r in results] == ["applied", "payment_on_closed_session"]
    got = await stack.session.GetSession(session_pb2.GetSessionRequest(session_id=session.id), timeout=5)
    assert [(STATUS[m.from_status], STATUS[m.to_status]) for m in got.history] == [("created", "paid")]
    assert await admin_val(stack, "SELECT count(*) FROM session.outbox WHERE kind = 'fulfil'") == 1


async def test_a_refused_item_fails_alone_with_the_single_calls_status_and_code(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    good = await create_session(stack, merchant.id)
    unknown = _event(str(uuid.uuid4()))
    not_an_id = _event("not-a-uuid")
    no_event_id = _event(good.id, event_id="")
    ok = _event(good.id)

    results = await _batch(stack, [unknown, not_an_id, no_event_id, ok])

    assert [r.WhichOneof("outcome") for r in results] == ["error", "error", "error", "applied"]
    # What the single call answers for the same requests.
    for item, result in zip([unknown, not_an_id, no_event_id], results, strict=False):
        with pytest.raises(grpc.aio.AioRpcError) as single:
            await stack.session.ApplyPaymentEvent(item, timeout=5)
        assert result.error.status == single.value.code().value[0]
        assert result.error.code == error_code(single.value)
    assert results[0].error.status == grpc.StatusCode.NOT_FOUND.value[0]
    assert results[2].error.status == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert OUTCOME[results[3].applied.outcome] == "applied"


async def test_an_empty_batch_answers_nothing_and_an_oversized_one_is_refused(stack: ServiceStack) -> None:
    assert await _batch(stack, []) == []
    items = [_event(str(uuid.uuid4())) for _ in range(MAX_APPLY_BATCH + 1)]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _batch(stack, items)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_code(refused.value) == "too_many_items"
