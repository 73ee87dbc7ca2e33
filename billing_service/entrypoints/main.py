"""Billing service process: configuration and assembly of its gRPC server."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import asyncpg

from billing_service.domain.invoices import Invoice
from billing_service.entrypoints.grpc_servicer import BillingServicer
from billing_service.entrypoints.proto_mapping import invoice_to_proto
from billing_service.service_layer.billing import BillingService
from billing_service.service_layer.merchant_event_forwarder import merchant_event_forwarder
from paygate.billing.v1 import billing_pb2_grpc
from paygate_runtime.api_objects import invoice_json
from paygate_runtime.config import Env
from paygate_runtime.grpc_client import open_channel
from paygate_runtime.grpc_server import GrpcServiceSpec
from paygate_runtime.metrics import ServiceMetrics
from paygate_runtime.settings import CommonSettings


@dataclass(frozen=True)
class BillingConfig:
    """Billing needs nothing beyond the common settings; every per-merchant choice lives in its profile."""


def load_config(env: Env) -> BillingConfig:
    return BillingConfig()


def document_object(invoice: Invoice) -> dict[str, Any]:
    """A document as GET /v1/invoices/{id} returns it: the gateway's renderer over GetInvoice's proto."""
    return invoice_json(invoice_to_proto(invoice))


async def assemble(config: BillingConfig, common: CommonSettings, pool: asyncpg.Pool) -> GrpcServiceSpec:
    metrics = ServiceMetrics("billing")
    metrics.watch_pool(pool)
    # credit_note.issued goes to the session service, which owns merchant events (contract §7).
    session_channel = open_channel(
        common.session_addr, tls=common.tls, default_deadline=common.rpc_deadline_s
    )
    forwarder = merchant_event_forwarder(pool, common.database_url, session_channel, document_object)

    async def close_session_channel() -> None:
        with contextlib.suppress(Exception):
            await session_channel.close(grace=1.0)

    return GrpcServiceSpec(
        name="billing",
        servicers=[
            (
                billing_pb2_grpc.add_BillingServiceServicer_to_server,
                BillingServicer(BillingService(pool)),
                "paygate.billing.v1.BillingService",
            )
        ],
        background=[forwarder.run],
        on_stop=[close_session_channel],
        metrics=metrics,
    )
