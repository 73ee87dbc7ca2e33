"""The One.com test double for stacks whose gateway calls One.com's API (contract §11)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator

from paygate_dev.devtools.onecom_double import OneComDouble


def new_onecom_key() -> str:
    return "onecom_test_" + secrets.token_hex(8)


@contextlib.asynccontextmanager
async def running_onecom_double(api_key: str, webhook_secrets: str) -> AsyncIterator[OneComDouble]:
    """The double, taking `api_key` and signing its webhooks with the stack's One.com webhook secret."""
    fake = await OneComDouble({api_key: webhook_secrets}).start()
    try:
        yield fake
    finally:
        await fake.stop()
