"""Shared fixtures: one throwaway PostgreSQL per test session, clean schemas per test, in-process stacks."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import settings as hypothesis_settings

from support.database import TestDatabase, start_test_database
from support.merchant_webhooks import Receiver
from support.stack import ServiceStack, default_stack_env, running_stack
from support.watchdog import HangGuard

# Property tests check behaviour, not speed: on a loaded 2-core CI machine the default 200 ms deadline per
# example would fail a correct test now and then.
hypothesis_settings.register_profile("paygate", deadline=None)
hypothesis_settings.load_profile("paygate")

_hang_guard = HangGuard(float(os.environ.get("PAYGATE_TEST_HANG_S", "180")))


def pytest_configure(config: pytest.Config) -> None:
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        _hang_guard.release_output = lambda: capture.suspend_global_capture(in_=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    _hang_guard.enter(item.nodeid)
    try:
        yield
    finally:
        _hang_guard.leave()


@pytest.fixture(autouse=True)
def _sane_recursion_limit() -> Iterator[None]:
    # web3 and eth-tester raise the limit to 100000 on import; with it, C code such as the JSON parser overflows
    # the C stack (a segfault) on a deeply nested body instead of raising RecursionError. The gateway resets it
    # at start-up; do the same around every test so the order of imports never decides.
    sys.setrecursionlimit(1000)
    yield


@pytest.fixture(scope="session")
async def database() -> AsyncIterator[TestDatabase]:
    db = await start_test_database()
    _hang_guard.database_dsn = db.admin_dsn
    _hang_guard.before_exit.append(db.stop_embedded_now)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
async def clean_db(database: TestDatabase) -> TestDatabase:
    await database.reset()
    return database


@pytest.fixture
def stack_env() -> dict[str, str]:
    """Environment shared by every service of one test stack; tests may add to it before `stack` starts."""
    return default_stack_env()


@pytest.fixture
async def stack(clean_db: TestDatabase, stack_env: dict[str, str]) -> AsyncIterator[ServiceStack]:
    async with running_stack(clean_db, stack_env) as services:
        yield services


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A loopback endpoint that collects the signed merchant-event deliveries sent to it."""
    started = await Receiver().start()
    yield started
    await started.stop()
