"""The gateway's one gRPC-to-HTTP table (webhook_gateway.entrypoints.rpc_refusals): every status and paygate
code a service answers gives one HTTP status and one stable code, and an outage is always 503 `unavailable`."""

from __future__ import annotations

import grpc
import pytest

from paygate_runtime.grpc_errors import ERROR_CODE_KEY
from webhook_gateway.entrypoints.http_errors import ApiError, raise_for_rpc_error
from webhook_gateway.entrypoints.rpc_refusals import RPC_REFUSALS, Refusal, refusal_for


def rpc_error(status: grpc.StatusCode, details: str = "", code: str | None = None) -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata((ERROR_CODE_KEY, code)) if code else grpc.aio.Metadata()
    return grpc.aio.AioRpcError(status, grpc.aio.Metadata(), trailing, details)


S = grpc.StatusCode


@pytest.mark.parametrize(
    ("status", "code", "details", "expected"),
    [
        (S.INVALID_ARGUMENT, "invalid_amount", "amount: bad", Refusal(400, "invalid_amount", "amount: bad")),
        (S.INVALID_ARGUMENT, None, "", Refusal(400, "invalid_argument", "invalid_argument")),
        (S.OUT_OF_RANGE, None, "too far", Refusal(400, "out_of_range", "too far")),
        # Another merchant's object and a missing one: one code, whatever the callee called it.
        (S.NOT_FOUND, "session_not_found", "no such session", Refusal(404, "not_found", "no such session")),
        (S.FAILED_PRECONDITION, "session_not_open", "closed", Refusal(409, "session_not_open", "closed")),
        (S.FAILED_PRECONDITION, None, "", Refusal(409, "failed_precondition", "failed_precondition")),
        (S.FAILED_PRECONDITION, "rate_limited", "slow down", Refusal(429, "rate_limited", "slow down")),
        (S.ALREADY_EXISTS, "duplicate", "twice", Refusal(409, "duplicate", "twice")),
        (S.UNAUTHENTICATED, "token_expired", "old", Refusal(401, "token_expired", "old")),
        (S.PERMISSION_DENIED, None, "no", Refusal(403, "permission_denied", "no")),
    ],
)
def test_each_row_gives_one_status_and_code(
    status: grpc.StatusCode, code: str | None, details: str, expected: Refusal
) -> None:
    assert refusal_for(rpc_error(status, details, code)) == expected


@pytest.mark.parametrize(
    "status",
    [S.UNAVAILABLE, S.DEADLINE_EXCEEDED, S.RESOURCE_EXHAUSTED, S.INTERNAL, S.UNKNOWN, S.ABORTED, S.CANCELLED],
)
def test_an_outage_is_503_unavailable_whatever_code_it_carries(status: grpc.StatusCode) -> None:
    refusal = refusal_for(rpc_error(status, "db down: host=10.0.0.3", "upstream_unavailable"))
    # The callee's message is not shown for an outage: it may name internal hosts.
    assert refusal == Refusal(503, "unavailable", "a backend service is unavailable; retry later")
    assert refusal.unavailable


def test_not_found_code_can_name_the_object() -> None:
    refusal = refusal_for(rpc_error(S.NOT_FOUND, "gone"), not_found_code="invoice_not_found")
    assert (refusal.status, refusal.code) == (404, "invoice_not_found")


def test_no_row_maps_to_a_5xx_and_every_row_has_a_status_of_its_own() -> None:
    assert all(400 <= status < 500 for status, _ in RPC_REFUSALS.values())
    # The rows keyed by a paygate code refine a status that has its own row.
    assert all((status, None) in RPC_REFUSALS for status, code in RPC_REFUSALS if code is not None)


def test_the_json_api_raises_the_same_refusal() -> None:
    with pytest.raises(ApiError) as raised:
        raise_for_rpc_error(rpc_error(S.FAILED_PRECONDITION, "closed", "session_not_open"))
    assert (raised.value.status_code, raised.value.code) == (409, "session_not_open")
    with pytest.raises(ApiError) as raised:
        raise_for_rpc_error(rpc_error(S.UNAVAILABLE))
    assert (raised.value.status_code, raised.value.code) == (503, "unavailable")
