"""Keys service process: configuration and assembly of its gRPC server."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from keys_service.entrypoints.grpc_servicer import KeysServicer
from paygate.keys.v1 import keys_pb2_grpc
from paygate_runtime.config import Env
from paygate_runtime.grpc_server import GrpcServiceSpec
from paygate_runtime.settings import CommonSettings


@dataclass(frozen=True)
class KeysConfig:
    public_url: str


def load_config(env: Env) -> KeysConfig:
    return KeysConfig(public_url=env.str("PAYGATE_PUBLIC_URL", "http://127.0.0.1:8080").rstrip("/"))


async def assemble(config: KeysConfig, common: CommonSettings, pool: asyncpg.Pool) -> GrpcServiceSpec:
    servicer = KeysServicer(pool, config)
    return GrpcServiceSpec(
        name="keys",
        servicers=[
            (keys_pb2_grpc.add_KeysServiceServicer_to_server, servicer, "paygate.keys.v1.KeysService")
        ],
    )
