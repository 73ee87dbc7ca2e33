"""Session service process: configuration and assembly of its gRPC server."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from paygate.session.v1 import session_pb2_grpc
from paygate_runtime.config import Env
from paygate_runtime.grpc_server import GrpcServiceSpec
from paygate_runtime.settings import CommonSettings
from session_service.entrypoints.grpc_servicer import SessionServicer


@dataclass(frozen=True)
class SessionConfig:
    max_amount_minor: int


def load_config(env: Env) -> SessionConfig:
    return SessionConfig(max_amount_minor=env.int("PAYGATE_MAX_AMOUNT_MINOR", 10**30, minimum=1))


async def assemble(config: SessionConfig, common: CommonSettings, pool: asyncpg.Pool) -> GrpcServiceSpec:
    servicer = SessionServicer(pool, config)
    return GrpcServiceSpec(
        name="session",
        servicers=[
            (
                session_pb2_grpc.add_SessionServiceServicer_to_server,
                servicer,
                "paygate.session.v1.SessionService",
            )
        ],
    )
