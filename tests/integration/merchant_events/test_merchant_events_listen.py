"""`paygate listen --forward-to ...` as a real subprocess against a real stack: it registers a test endpoint,
prints the secret and a line for a paid session's delivery, and removes the endpoint on Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from merchant_events_support import FAST_ENV, Receiver, eventually, paid_session
from standardwebhooks.webhooks import Webhook

from support.stack import ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **FAST_ENV}


async def test_paygate_listen_prints_a_delivery_for_a_paid_session(
    stack: ServiceStack, tmp_path: Path
) -> None:
    merchant = await stack.create_merchant()
    (tmp_path / "stack.json").write_text(
        json.dumps(
            {"gateway_url": stack.base_url, "merchant": {"id": merchant.id, "api_key": merchant.api_key}}
        )
    )
    receiver = await Receiver().start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_")}
    env["PAYGATE_HOME"] = str(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "paygate_runtime.cli.main",
        "listen",
        "--forward-to",
        receiver.url,
        "--events",
        "session.paid,invoice.issued",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    lines: list[str] = []

    async def read_lines() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            lines.append(raw.decode().rstrip())

    reader = asyncio.create_task(read_lines())
    try:
        secret_line = await eventually(lambda: _first(lines, "signing secret is"), timeout=30)
        secret = secret_line.rsplit(" ", 1)[-1]
        assert secret.startswith("whsec_")
        _, endpoints = await stack.request("GET", "/v1/webhook_endpoints", headers=merchant.headers)
        assert [e["url"] for e in endpoints["data"]] == [receiver.url]
        assert endpoints["data"][0]["events"] == ["session.paid", "invoice.issued"]

        await paid_session(stack, merchant)
        line = await eventually(lambda: _first(lines, "--> session.paid"), timeout=30)
        assert ": 200 (" in line and "attempt 1" in line
        # What the receiver got verifies with the secret listen printed.
        delivery = receiver.of_type("session.paid")[0]
        Webhook(secret).verify(delivery.body, delivery.headers)
        assert delivery.headers["webhook-id"] in line

        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        await reader
        assert any(line.startswith("Removed endpoint") for line in lines), lines
        _, endpoints = await stack.request("GET", "/v1/webhook_endpoints", headers=merchant.headers)
        assert endpoints["data"] == []
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        reader.cancel()
        await receiver.stop()


async def _first(lines: list[str], needle: str) -> str | None:
    return next((line for line in lines if needle in line), None)
