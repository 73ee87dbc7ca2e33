"""Schema isolation by role, migrations, gRPC health and reflection, and the request-id/error mapping."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from paygate.keys.v1 import keys_pb2
from paygate.session.v1 import session_pb2
from paygate_runtime.grpc_errors import error_code
from paygate_runtime.migrations import migrate
from support.database import TestDatabase
from support.stack import ServiceStack


async def test_billing_role_cannot_read_session_schema(clean_db: TestDatabase) -> None:
    conn = await asyncpg.connect(clean_db.runtime_dsn("billing"))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM session.sessions")
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "service,table", [("session", "sessions"), ("keys", "merchants"), ("billing", "billing_profiles")]
)
async def test_runtime_role_cannot_alter_its_own_tables(
    clean_db: TestDatabase, service: str, table: str
) -> None:
    conn = await asyncpg.connect(clean_db.runtime_dsn(service))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f"ALTER TABLE {service}.{table} ADD COLUMN sneaky int")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f"CREATE TABLE {service}.sneaky (id int)")
    finally:
        await conn.close()


async def test_migrations_are_safe_twice_and_concurrently(clean_db: TestDatabase) -> None:
    results = await asyncio.gather(*(migrate(clean_db.owner_dsn("session"), "session") for _ in range(3)))
    assert results == [[], [], []]  # already applied by the session fixture; nothing runs again
    conn = await clean_db.admin()
    try:
        count = await conn.fetchval("SELECT count(*) FROM session.schema_migrations")
        assert count >= 1
    finally:
        await conn.close()


async def test_health_serving_and_reflection_lists_services(stack: ServiceStack) -> None:
    expected = {
        "session": "paygate.session.v1.SessionService",
        "billing": "paygate.billing.v1.BillingService",
        "keys": "paygate.keys.v1.KeysService",
    }
    for service, full_name in expected.items():
        channel = stack.channel(service)
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", full_name):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=2)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = set()
        async for response in responses:
            names |= {s.name for s in response.list_services_response.service}
        assert full_name in names and "grpc.health.v1.Health" in names


async def test_missing_required_field_is_invalid_argument_with_code(stack: ServiceStack) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.session.CreateSession(session_pb2.CreateSessionRequest(amount="1.00"), timeout=2)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_code(caught.value) == "missing_merchant_id"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.keys.AuthenticateMerchant(keys_pb2.AuthenticateMerchantRequest(), timeout=2)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
