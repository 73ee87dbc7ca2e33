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
from aiohttp import web
from merchant_events_support import FAST_ENV, Receiver, eventually, paid_session
from standardwebhooks.webhooks import Webhook

from support.cli import cli_env, run_paygate
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


async def test_paygate_listen_stopped_after_the_stack_says_so_in_one_line(tmp_path: Path) -> None:
    """A developer's walk: stopping `up` first, then `listen`, printed two tracebacks (the endpoint's DELETE
    could not connect). Now one line says the endpoint is left and how to delete it, and the exit is clean. The
    stack here is a stand-in that registers the endpoint and is then shut down."""
    app = web.Application()

    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(
            {"id": "we_1", "url": body["url"], "events": body["events"], "secret": "whsec_x"}, status=201
        )

    async def deliveries(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [], "has_more": False})

    app.router.add_post("/v1/webhook_endpoints", create)
    app.router.add_get("/v1/webhook_deliveries", deliveries)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_")}
    env["PAYGATE_HOME"] = str(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "paygate_runtime.cli.main", "listen", "--forward-to", "http://127.0.0.1:9/",
        "--gateway", f"http://127.0.0.1:{port}", "--api-key", "sk_test_x",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        while b"Ctrl-C" not in await asyncio.wait_for(proc.stdout.readline(), 30):
            pass
        await runner.cleanup()  # the stack stops first
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await runner.cleanup()
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err, err.decode()
    assert b"Could not remove endpoint we_1: delete it with DELETE /v1/webhook_endpoints/we_1" in out, out


async def _first(lines: list[str], needle: str) -> str | None:
    return next((line for line in lines if needle in line), None)


@pytest.mark.parametrize(
    ("gateway", "says"),
    [
        ("http://127.0.0.1:9", "cannot reach the gateway at http://127.0.0.1:9"),
        ("not-a-url", "--gateway must be an absolute http(s) URL"),
    ],
)
async def test_paygate_listen_without_a_reachable_gateway_says_so_in_one_line(
    tmp_path: Path, gateway: str, says: str
) -> None:
    """A walk of README's command table: `listen` with stack.json left behind by a stopped `up` (or a mistyped
    --gateway) printed a traceback from aiohttp. Now one line says what is wrong, and the exit is 1."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_")}
    env["PAYGATE_HOME"] = str(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "paygate_runtime.cli.main", "listen", "--forward-to", "http://127.0.0.1:9/",
        "--gateway", gateway, "--api-key", "sk_test_x",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert b"Traceback" not in err, err.decode()
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"paygate listen: {says}"), lines
    assert proc.returncode == 1 and out == b""


@pytest.mark.parametrize("events", [",", " , ,", ""])
async def test_paygate_listen_refuses_events_that_name_no_event_type(tmp_path: Path, events: str) -> None:
    """A walk of README's command table: `--events ,` dropped the empty names and, the list then empty,
    subscribed to every type without a word. Now argparse refuses it (exit 2) before anything is sent: the
    gateway here is a port where nothing listens, so a network call would say `cannot reach` instead."""
    code, out, err = await run_paygate(
        cli_env(tmp_path), "listen", "--forward-to", "http://127.0.0.1:9/", "--gateway", "http://127.0.0.1:9",
        "--api-key", "sk_test_x", "--events", events, timeout=60,
    )  # fmt: skip
    errors = [line for line in err.splitlines() if not line.startswith(("usage:", " "))]
    assert code == 2 and out == "", (code, err)
    assert len(errors) == 1 and errors[0].startswith("paygate listen: error: argument --events:"), errors
    assert "names no event type" in errors[0], errors


def test_paygate_listen_without_events_still_means_every_type() -> None:
    from paygate_runtime.cli.main import build_parser

    parsed = build_parser("listen").parse_args(["listen", "--forward-to", "http://127.0.0.1:9/"])
    with_names = build_parser("listen").parse_args(
        ["listen", "--forward-to", "http://127.0.0.1:9/", "--events", " session.paid, ,invoice.issued"]
    )

    assert list(parsed.events) == ["*"]
    assert list(with_names.events) == ["session.paid", "invoice.issued"]
