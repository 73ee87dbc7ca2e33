"""Helpers of the batched-fulfilment tests (issue 16): real Postgres, real gRPC between real services."""

from __future__ import annotations

from typing import Any

import grpc

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from support.stack import ServiceStack

TEST = common_pb2.MODE_TEST
_SERVICES = {
    "billing": "paygate.billing.v1.BillingService",
    "keys": "paygate.keys.v1.KeysService",
    "session": "paygate.session.v1.SessionService",
}


def invoice_item(merchant_id: str, session_id: str, minor: int = 9999, currency: str = "EUR") -> Any:
    amount = common_pb2.Money(amount_minor=str(minor), currency=currency, exponent=2)
    return billing_pb2.IssueInvoiceRequest(
        merchant_id=merchant_id,
        mode=TEST,
        session_id=session_id,
        amount=amount,
        buyer=billing_pb2.Party(email="buyer@example.com"),
    )


def handled(stack: ServiceStack, service: str, method: str, code: str = "OK") -> int:
    """How many calls of `method` the running `service` answered with `code`, from its own Prometheus
    registry (`paygate_grpc_server_handled_total`, what its /metrics serves)."""
    metrics = stack.servers[service].spec.metrics
    assert metrics is not None
    value = metrics.registry.get_sample_value(
        "paygate_grpc_server_handled_total",
        {"service": _SERVICES[service], "method": method, "code": code},
    )
    return int(value or 0)


def status_name(status: int) -> str:
    return next(s.name for s in grpc.StatusCode if s.value[0] == status)


async def admin_fetch(stack: ServiceStack, sql: str, *args: Any) -> list[Any]:
    conn = await stack.db.admin()
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def admin_val(stack: ServiceStack, sql: str, *args: Any) -> Any:
    conn = await stack.db.admin()
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()
