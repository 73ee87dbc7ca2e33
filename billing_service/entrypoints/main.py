"""Billing service process: configuration and assembly of its gRPC server."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from billing_service.entrypoints.grpc_servicer import BillingServicer
from billing_service.service_layer.billing import BillingService
from paygate.billing.v1 import billing_pb2_grpc
from paygate_runtime.config import Env
from paygate_runtime.grpc_server import GrpcServiceSpec
from paygate_runtime.metrics import ServiceMetrics
from paygate_runtime.settings import CommonSettings


@dataclass(frozen=True)
class BillingConfig:
    """Billing needs nothing beyond the common settings; every per-merchant choice lives in its profile."""


def load_config(env: Env) -> BillingConfig:
    return BillingConfig()


async def assemble(config: BillingConfig, common: CommonSettings, pool: asyncpg.Pool) -> GrpcServiceSpec:
    metrics = ServiceMetrics("billing")
    metrics.watch_pool(pool)
    return GrpcServiceSpec(
        name="billing",
        servicers=[
            (
                billing_pb2_grpc.add_BillingServiceServicer_to_server,
                BillingServicer(BillingService(pool)),
                "paygate.billing.v1.BillingService",
            )
        ],
        metrics=metrics,
    )
