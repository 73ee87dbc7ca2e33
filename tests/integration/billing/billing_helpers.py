"""Helpers shared by the billing integration tests (real Postgres, real gRPC)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import asyncpg
import grpc

from paygate.billing.v1 import billing_pb2, billing_pb2_grpc
from paygate.common.v1 import common_pb2
from paygate_runtime.db import create_pool
from paygate_runtime.grpc_errors import error_code

if TYPE_CHECKING:
    from support.stack import ServiceStack

TEST = common_pb2.MODE_TEST
LIVE = common_pb2.MODE_LIVE


def acme_profile(merchant_id: str, prefix: str, *, support_email: str = "") -> billing_pb2.BillingProfile:
    """A complete German seller profile (19 % VAT) numbering with `prefix`."""
    return billing_pb2.BillingProfile(
        merchant_id=merchant_id,
        seller=billing_pb2.Party(
            name="Acme GmbH",
            address=common_pb2.Address(lines=["Hauptstr. 1", "10115 Berlin"], country="DE"),
            tax_id="DE123456789",
        ),
        invoice_prefix=prefix,
        tax_rate_bps=1900,
        support_email=support_email,
    )


@asynccontextmanager
async def runtime_connection(stack: ServiceStack) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection as the billing service's own role: what a bug in the service could do."""
    conn = await asyncpg.connect(stack.db.runtime_dsn("billing"), server_settings={"search_path": "billing"})
    try:
        yield conn
    finally:
        await conn.close()


@asynccontextmanager
async def runtime_pool(stack: ServiceStack) -> AsyncIterator[asyncpg.Pool]:
    """A pool as the billing service's own role, for tests that run the service layer in-process."""
    pool = await create_pool(stack.db.runtime_dsn("billing"), "billing", min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


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
