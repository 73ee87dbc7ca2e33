"""A stack whose gateway talks to the One.com test double, with reconciliation on a short fuse.

The gateway's port is chosen before it starts, so that its public URL (the One.com payment's `return_url`
and `webhook_url`) points at the gateway itself and the double's webhooks reach it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from paygate_dev.devtools.onecom_double import OneComDouble
from support.database import TestDatabase
from support.onecom import new_onecom_key, running_onecom_double
from support.stack import ServiceStack, free_port, running_stack

RECONCILE_AFTER_S = 2


@pytest.fixture
def gateway_port() -> int:
    return free_port()


@pytest.fixture
def onecom_key() -> str:
    return new_onecom_key()


@pytest.fixture
async def double(stack_env_base: dict[str, str], onecom_key: str) -> AsyncIterator[OneComDouble]:
    async with running_onecom_double(onecom_key, stack_env_base["PAYGATE_ONECOM_WEBHOOK_SECRETS"]) as fake:
        yield fake


@pytest.fixture
def stack_env_base(stack_env: dict[str, str], gateway_port: int) -> dict[str, str]:
    return {**stack_env, "PAYGATE_PUBLIC_URL": f"http://127.0.0.1:{gateway_port}"}


@pytest.fixture
def onecom_env(stack_env_base: dict[str, str], double: OneComDouble, onecom_key: str) -> dict[str, str]:
    return {
        **stack_env_base,
        "PAYGATE_ONECOM_API_BASE": double.base_url,
        "PAYGATE_ONECOM_API_KEY": onecom_key,
        "PAYGATE_ONECOM_TIMEOUT_MS": "3000",
        "PAYGATE_ONECOM_BREAKER_THRESHOLD": "3",
        "PAYGATE_ONECOM_BREAKER_COOLDOWN_MS": "1500",
        "PAYGATE_RECONCILE_AFTER_S": str(RECONCILE_AFTER_S),
        "PAYGATE_RECONCILE_INTERVAL_MS": "200",
        "PAYGATE_RECONCILE_MAX_INTERVAL_S": "4",
        "PAYGATE_WEBHOOK_RELAY_INTERVAL_MS": "200",
    }


@pytest.fixture
async def stack(
    clean_db: TestDatabase, onecom_env: dict[str, str], gateway_port: int
) -> AsyncIterator[ServiceStack]:
    async with running_stack(clean_db, onecom_env, gateway_port=gateway_port) as services:
        yield services
