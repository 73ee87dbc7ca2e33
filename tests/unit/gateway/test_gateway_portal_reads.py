"""The portal page's key and usage come from two keys RPCs; the order of those reads is what keeps the page
consistent ("7 checks, last used never" was seen in CI when they ran side by side)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from paygate.keys.v1 import keys_pb2
from webhook_gateway.adapters.portal_sessions_repository import PortalSession
from webhook_gateway.entrypoints import routes_portal
from webhook_gateway.entrypoints.app_keys import CLIENTS


class _KeysStub:
    """Usage is answered only when the test says so; records when the key read starts."""

    def __init__(self) -> None:
        self.usage_released = asyncio.Event()
        self.usage_answered = False
        self.key_read_while_usage_pending = False

    async def GetCustomerKeyUsage(self, request: Any) -> keys_pb2.CustomerKeyUsage:
        await self.usage_released.wait()
        self.usage_answered = True
        return keys_pb2.CustomerKeyUsage(total=7)

    async def GetCustomerKey(self, request: Any) -> keys_pb2.ApiKey:
        if not self.usage_answered:
            self.key_read_while_usage_pending = True
        return keys_pb2.ApiKey(hint="k")


async def test_the_key_is_read_only_after_the_usage_read_has_answered() -> None:
    stub = _KeysStub()
    request: Any = SimpleNamespace(app={CLIENTS: SimpleNamespace(keys=stub)})
    portal = PortalSession(jti="j", session_id="s", merchant_id="m", csrf_token="c")
    reading = asyncio.ensure_future(routes_portal._key_and_usage(request, portal))
    for _ in range(5):
        await asyncio.sleep(0)
    stub.usage_released.set()
    key, usage = await reading
    assert key is not None and usage is not None and usage.total == 7
    assert not stub.key_read_while_usage_pending
