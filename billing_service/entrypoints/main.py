"""Billing service process: configuration and assembly of its gRPC server."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from paygate.billing.v1 import billing_pb2_grpc
from paygate_runtime.config import Env
from paygate_runtime.grpc_server import GrpcServiceSpec
from paygate_runtime.settings import CommonSettings


@dataclass(frozen=True)
class BillingConfig:
    pass


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool


def load_config(env: Env) -> BillingConfig:
    return BillingConfig()


async def assemble(config: BillingConfig, common: CommonSettings, pool: asyncpg.Pool) -> GrpcServiceSpec:
    return GrpcServiceSpec(
        name="billing",
        servicers=[
            (
                billing_pb2_grpc.add_BillingServiceServicer_to_server,
                BillingServicer(pool),
                "paygate.billing.v1.BillingService",
            )
        ],
    )
