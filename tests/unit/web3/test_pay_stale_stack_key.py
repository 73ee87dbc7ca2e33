"""`paygate pay` when the gateway refuses stack.json's merchant key (rolled or revoked): one clear line that the
key in stack.json no longer works and how to get one, never the key itself."""

from __future__ import annotations

import argparse
import json
import uuid
from pathlib import Path

import pytest
from aiohttp import web

from paygate_dev.chain import pay_cmd

STALE_KEY = "sk_test_" + "S" * 32


async def test_pay_with_a_stale_stack_key_says_the_key_in_stack_json_no_longer_works(tmp_path: Path) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.json_response(
            {"error": {"code": "unauthenticated", "message": "invalid API key"}}, status=401
        )

    app = web.Application()
    app.router.add_get("/v1/sessions/{id}", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        (tmp_path / "stack.json").write_text(
            json.dumps(
                {
                    "gateway_url": f"http://127.0.0.1:{port}",
                    "merchant": {"id": "m-1", "api_key": STALE_KEY},
                    "chain": {"rpc_url": "http://127.0.0.1:9", "chain_id": 31337},
                    "webhook_secrets": {},
                }
            )
        )
        parser = argparse.ArgumentParser()
        pay_cmd.configure(parser)
        args = parser.parse_args(["--session", str(uuid.uuid4()), "--home", str(tmp_path)])
        with pytest.raises(pay_cmd.PayError) as raised:
            await pay_cmd.pay(args)
    finally:
        await runner.cleanup()
    message = str(raised.value)
    assert "no longer works" in message and str(tmp_path / "stack.json") in message, message
    assert "paygate up" in message and "m-1" in message, message
    assert STALE_KEY not in message
