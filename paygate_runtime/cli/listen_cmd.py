"""`paygate listen --forward-to http://127.0.0.1:PORT/path [--events a,b]`, as `stripe listen` does.

It registers a test-mode webhook endpoint for the forward-to URL on the running stack (through the merchant
API, with the stack's test merchant key from `$PAYGATE_HOME/stack.json`, or `--api-key`/`--gateway`), prints
the endpoint's signing secret, then one line per delivery attempt as the session service makes it (it polls
`GET /v1/webhook_deliveries?endpoint=`), and removes the endpoint on Ctrl-C (SIGINT or SIGTERM).

The session service itself POSTs to the forward-to URL, signed as for any endpoint; a loopback URL is allowed
because `paygate up` runs the services with PAYGATE_ALLOW_LOOPBACK_WEBHOOKS=true (test mode only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

import aiohttp

from paygate_runtime.config import is_http_url
from paygate_runtime.stack import load_stack, stale_key_message

POLL_S = 0.5


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--forward-to", required=True, help="where deliveries go, e.g. http://127.0.0.1:4242/webhook"
    )
    p.add_argument(
        "--events",
        type=_event_types,
        default=["*"],
        help="comma-separated event types (default: every type)",
    )
    p.add_argument("--api-key", help="merchant test secret key (default: the stack's test merchant)")
    p.add_argument("--gateway", help="gateway URL (default: the stack's)")


def _event_types(text: str) -> list[str]:
    """The event types an --events value names. A value that names none (`,` or empty) is refused rather
    than read as "every type": that is what leaving --events out means, and a typo should not widen it."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(
            f"{text!r} names no event type; list them comma-separated, or leave --events out for every type"
        )
    return names


def _say(line: str) -> None:
    print(line, flush=True)


def _attempt_line(attempt: dict[str, Any]) -> str:
    outcome = str(attempt["status_code"]) if attempt["status_code"] is not None else attempt["error"] or "-"
    retry = f", retry at {attempt['next_attempt_at']}" if attempt.get("next_attempt_at") else ""
    return (
        f"{attempt['at']}  --> {attempt['event_type']} [{attempt['event_id']}] attempt {attempt['attempt']}: "
        f"{outcome} ({attempt.get('latency_ms', 0)} ms){retry}"
    )


async def _listen(args: argparse.Namespace) -> int:
    gateway = args.gateway
    api_key = args.api_key
    stale = None  # what a 401 means when the key is stack.json's
    if not gateway or not api_key:
        stack = load_stack()
        gateway = gateway or stack["gateway_url"]
        if not api_key:
            api_key = stack["merchant"]["api_key"]
            stale = stale_key_message(stack)
    if not is_http_url(gateway):
        print(f"paygate listen: --gateway must be an absolute http(s) URL, not {gateway!r}", file=sys.stderr)
        return 1
    events: list[str] = args.events
    headers = {"X-API-Key": api_key}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async with aiohttp.ClientSession(
        gateway, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
    ) as http:
        try:
            async with http.post(
                "/v1/webhook_endpoints",
                json={"url": args.forward_to, "events": events, "description": "paygate listen"},
            ) as response:
                if response.status == 401 and stale:
                    print(f"paygate listen: {stale}", file=sys.stderr)
                    return 1
                body = await response.json(content_type=None)
                if response.status != 201:
                    error = (body or {}).get("error", {})
                    print(
                        f"paygate listen: {error.get('code', response.status)}: {error.get('message', '')}",
                        file=sys.stderr,
                    )
                    return 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Usually a stopped `up` that left its stack.json behind: say so, as `demo` does.
            print(
                f"paygate listen: cannot reach the gateway at {gateway} ({type(exc).__name__}); "
                "is `paygate up` running?",
                file=sys.stderr,
            )
            return 1
        except ValueError as exc:
            # Something answered, but not with paygate's JSON (another program on that port).
            print(
                f"paygate listen: {gateway} did not answer as paygate's gateway ({type(exc).__name__}); "
                "is --gateway right?",
                file=sys.stderr,
            )
            return 1
        endpoint_id = body["id"]
        _say(f"Ready! Forwarding {', '.join(body['events'])} to {body['url']} (endpoint {endpoint_id})")
        _say(f"Your webhook signing secret is {body['secret']}")
        _say("Press Ctrl-C to stop and remove the endpoint.")
        seen: set[str] = set()
        try:
            while not stop.is_set():
                try:
                    async with http.get(
                        "/v1/webhook_deliveries", params={"endpoint": endpoint_id, "limit": "100"}
                    ) as response:
                        page = await response.json(content_type=None)
                    if response.status == 401 and stale:
                        print(f"paygate listen: {stale}", file=sys.stderr)
                        break
                    if response.status == 200:
                        for attempt in reversed(page["data"]):
                            if attempt["id"] not in seen:
                                seen.add(attempt["id"])
                                _say(_attempt_line(attempt))
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    print(f"paygate listen: polling failed ({type(exc).__name__}); retrying", file=sys.stderr)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), POLL_S)
        finally:
            removed = False
            try:
                async with http.delete(f"/v1/webhook_endpoints/{endpoint_id}") as response:
                    removed = response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                # The stack stopped first (the usual order: stop `up`, then `listen`): one line, no traceback.
                pass
            _say(
                f"Removed endpoint {endpoint_id}."
                if removed
                else f"Could not remove endpoint {endpoint_id}: delete it with"
                f" DELETE /v1/webhook_endpoints/{endpoint_id} once paygate is reachable."
            )
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_listen(args))
