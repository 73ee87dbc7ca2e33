"""One real stack (keys, billing, session, gateway over real gRPC and HTTP) shared by a whole test module:
these tests only read or add objects of their own merchants, so starting it once per module is enough."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from support.database import TestDatabase
from support.stack import ServiceStack, default_stack_env, running_stack


@pytest.fixture(scope="module")
async def shared_stack(database: TestDatabase) -> AsyncIterator[ServiceStack]:
    await database.reset()
    async with running_stack(database, default_stack_env()) as services:
        yield services
