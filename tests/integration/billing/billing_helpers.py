"""Helpers shared by the billing integration tests (real Postgres, real gRPC)."""

from __future__ import annotations

import uuid

import grpc

from paygate.billing.v1 import billing_pb2, billing_pb2_grpc
from paygate.common.v1 import common_pb2
from paygate_runtime.grpc_errors import error_code

TEST = common_pb2.MODE_TEST
LIVE = common_pb2.MODE_LIVE


def money(minor: int | str, currency: str = "EUR", exponent: int = 2) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=str(minor), currency=currency, exponent=exponent)


def issue_request(
    merchant_id: str,
    session_id: str | None = None,
    *,
    minor: int | str = 9999,
    currency: str = "EUR",
    exponent: int = 2,
    mode: int = TEST,
    **extra: object,
) -> billing_pb2.IssueInvoiceRequest:
    return billing_pb2.IssueInvoiceRequest(
        merchant_id=merchant_id,
        mode=mode,
        session_id=session_id if session_id is not None else str(uuid.uuid4()),
        amount=money(minor, currency, exponent),
        **{"buyer": billing_pb2.Party(email="buyer@example.com"), **extra},
    )


async def issue(
    billing: billing_pb2_grpc.BillingServiceStub,
    merchant_id: str,
    session_id: str | None = None,
    **kw: object,
) -> billing_pb2.Invoice:
    return await billing.IssueInvoice(issue_request(merchant_id, session_id, **kw), timeout=10)


async def rpc_failure(call: object) -> tuple[grpc.StatusCode, str | None]:
    """Await a call expected to fail; return its status and paygate error code."""
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        return error.code(), error_code(error)
    raise AssertionError("the call succeeded but was expected to fail")
