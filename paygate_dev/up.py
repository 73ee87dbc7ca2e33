"""`paygate up`: the whole system in the foreground.

It starts PostgreSQL (embedded unless DATABASE_URL is set), migrates every schema, starts the four services as
separate processes, waits until each is healthy, ensures a test merchant, writes $PAYGATE_HOME/stack.json and
prints the same facts. Ctrl-C or SIGTERM stops everything and exits 0; a child that dies is named, the rest are
stopped, and `up` exits non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

from paygate_dev.stack_plan import START_ORDER, ChildDied, Stack, StackPlan, service_env
from paygate_runtime.config import ConfigError, Env, exit_on_config_error
from paygate_runtime.schemas import dsn_for_role
from paygate_runtime.settings import DEFAULT_POOL_MAX
from paygate_runtime.stack import load_or_create_dev_secrets, paygate_home, read_json, write_private_json
from paygate_runtime.tasks import wait_event

__all__ = ["START_ORDER", "Stack", "StackPlan", "configure", "existing_stack", "run", "service_env"]

EXIT_CHILD_DIED = 1


def free_local_ports(count: int, avoid: Collection[int] = ()) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 right now (held together while chosen, so all differ), none
    of them in `avoid`: the stack's own planned ports are not bound yet, so the kernel may offer one of them
    (a CI run lost its session port to the keys service's metrics server that way).

    The metrics ports are chosen, not fixed, so that two stacks (or a stack beside `paygate serve` with the
    9101-9104 defaults) never collide; a child that still loses its port to a race exits and `up` names it."""
    sockets: list[socket.socket] = []
    try:
        chosen: list[int] = []
        while len(chosen) < count:
            sock = socket.socket()
            sockets.append(sock)  # held, so the kernel offers a different port next time
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            if port not in avoid:
                chosen.append(port)
        return chosen
    finally:
        for sock in sockets:
            sock.close()


def busy_ports(plan: StackPlan) -> list[str]:
    """The stack's fixed ports that something already listens on, as "127.0.0.1:P (name)". A `paygate up`
    killed with SIGKILL leaves its services running: a new stack's health checks would get their answers and
    take them for its own children's, so `up` refuses to start instead."""
    named = {"gateway": plan.http_port, "smtp": plan.smtp_port, **plan.grpc_ports}
    if plan.chain:
        named["chain"] = plan.chain_port
    busy = []
    for name, port in named.items():
        with socket.socket() as sock:
            # As the servers bind: a port left in TIME_WAIT by the last stack is free, a listener is not.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                busy.append(f"127.0.0.1:{port} ({name})")
    return busy


def plan_from_args(args: argparse.Namespace, env: Env) -> StackPlan:
    def port(flag: int | None, variable: str, default: int) -> int:
        return flag if flag is not None else env.port(variable, default)

    http_port = port(args.http_port, "PAYGATE_HTTP_PORT", 8080)
    grpc_ports = {
        "session": port(args.session_port, "PAYGATE_SESSION_PORT", 50051),
        "billing": port(args.billing_port, "PAYGATE_BILLING_PORT", 50052),
        "keys": port(args.keys_port, "PAYGATE_KEYS_PORT", 50053),
    }
    smtp_port = port(args.smtp_port, "PAYGATE_SMTP_PORT", 2525)
    chain_port = port(args.chain_port, "PAYGATE_CHAIN_PORT", 8545)
    planned = {http_port, smtp_port, chain_port, *grpc_ports.values()}
    # The stack holds its database pools whole (issue 16). From the default floor of 2, a stack's first burst,
    # and the first after every quiet spell of 300 s, opens the rest while it runs: 12-18 % fewer replies in
    # that burst, measured. An operator's PAYGATE_DB_POOL_MIN passes through instead.
    floor = (
        {}
        if env.optional("PAYGATE_DB_POOL_MIN")
        else {"PAYGATE_DB_POOL_MIN": env.str("PAYGATE_DB_POOL_MAX", str(DEFAULT_POOL_MAX))}
    )
    return StackPlan(
        home=paygate_home(args.home),
        http_port=http_port,
        grpc_ports=grpc_ports,
        smtp_port=smtp_port,
        chain=bool(args.chain),
        chain_port=chain_port,
        metrics_ports=dict(zip(START_ORDER, free_local_ports(len(START_ORDER), planned), strict=True)),
        extras={"env": floor},
    )


async def _start_extras(stack: Stack) -> None:
    """Hooks for optional parts (SMTP sink, chain node) that register themselves in paygate_dev.extras."""
    from paygate_dev import extras

    for hook in extras.STARTUP_HOOKS:
        await hook(stack)


async def _post_start(stack: Stack) -> dict[str, Any]:
    from paygate_dev import extras

    facts: dict[str, Any] = {}
    for hook in extras.POST_START_HOOKS:
        facts.update(await hook(stack) or {})
    return facts


def stack_facts(stack: Stack, merchant: dict[str, str], more: dict[str, Any]) -> dict[str, Any]:
    plan = stack.plan
    facts: dict[str, Any] = {
        "gateway_url": plan.gateway_url,
        "grpc": {name: plan.grpc_addr(name) for name in ("session", "billing", "keys")},
        "database_url": dsn_for_role(
            plan.admin_dsn, "postgres" if stack.pg else _user(plan.admin_dsn), plan.database
        ),
        "merchant": merchant,
        "webhook_secrets": {
            "stripe": plan.secrets["stripe_webhook_secret"],
            "onecom": plan.secrets["onecom_webhook_secret"],
            "web3": plan.secrets["web3_webhook_secret"],
            "onecom_live": plan.secrets["onecom_webhook_secret_live"],
            "web3_live": plan.secrets["web3_webhook_secret_live"],
        },
        "metrics": {name: plan.metrics_url(name) for name in ("gateway", "session", "billing", "keys")},
        "pids": {name: child.pid for name, child in stack.children.items()},
        "up_pid": os.getpid(),
        "logs": str(plan.home / "logs"),
        "mail_dir": str(plan.home / "mail"),
    }
    facts.update(more)
    return facts


def _user(dsn: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(dsn).username or "postgres"


async def _run(plan: StackPlan) -> int:
    stack = Stack(plan)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stack_file = plan.home / "stack.json"
    busy = busy_ports(plan)
    if busy:
        # stack.json is left as it is: it names the pids of a stack that may still hold these ports.
        print(
            f"paygate: {', '.join(busy)} is already in use (a stack still running? see {stack_file});"
            " nothing started",
            file=sys.stderr,
        )
        return EXIT_CHILD_DIED
    stack_file.unlink(missing_ok=True)
    exit_code = 0
    try:
        plan.secrets = load_or_create_dev_secrets(plan.home)
        print(f"paygate: starting in {plan.home}", flush=True)
        await stack.start_database()
        await _start_extras(stack)
        for service in START_ORDER:
            stack.spawn(service)
            await stack.wait_healthy(service)
            print(f"paygate: {service} is healthy", flush=True)
        from paygate_dev.dev_merchant import ensure_dev_merchant

        merchant = await ensure_dev_merchant(plan)
        facts = stack_facts(stack, merchant, await _post_start(stack))
        write_private_json(stack_file, facts)
        _print_facts(facts)
        while not stop.is_set():
            dead = stack.dead_child()
            if dead is not None:
                name, code = dead
                print(f"paygate: service {name} exited with code {code}; stopping the stack", file=sys.stderr)
                tail = stack.tail(name)
                if tail:
                    print(tail, file=sys.stderr)
                exit_code = EXIT_CHILD_DIED
                break
            await wait_event(stop, 0.25)
    except ChildDied as died:
        print(f"paygate: {died}; stopping the stack", file=sys.stderr)
        if died.tail:
            print(died.tail, file=sys.stderr)
        exit_code = EXIT_CHILD_DIED
    finally:
        print("paygate: stopping", flush=True)
        stack_file.unlink(missing_ok=True)
        await stack.stop()
    print("paygate: stopped", flush=True)
    return exit_code


def _print_facts(facts: dict[str, Any]) -> None:
    print("paygate is up", flush=True)
    print(f"  gateway      {facts['gateway_url']}")
    for name, addr in facts["grpc"].items():
        print(f"  {name:<12} {addr} (gRPC)")
    for name, url in facts["metrics"].items():
        print(f"  metrics      {name:<8} {url}")
    print(f"  database     {facts['database_url']}")
    print(f"  merchant     {facts['merchant']['id']}")
    print(f"  api key      {facts['merchant']['api_key']}")
    if "chain" in facts:
        print(f"  chain        {facts['chain']['rpc_url']} (chain id {facts['chain']['chain_id']})")
    if "onecom" in facts:
        print(f"  onecom       {facts['onecom']['api_base']} (One.com test double)")
    print(f"  logs         {facts['logs']}")
    print("Try:  paygate demo      Stop: Ctrl-C", flush=True)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", help="state folder (default $PAYGATE_HOME or ./.paygate)")
    p.add_argument("--http-port", type=int, help="gateway port (default $PAYGATE_HTTP_PORT or 8080)")
    p.add_argument("--session-port", type=int, help="session gRPC port (default 50051)")
    p.add_argument("--billing-port", type=int, help="billing gRPC port (default 50052)")
    p.add_argument("--keys-port", type=int, help="keys gRPC port (default 50053)")
    p.add_argument("--smtp-port", type=int, help="local SMTP sink port (default 2525)")
    p.add_argument("--chain", action="store_true", help="also start a local Ethereum node (anvil)")
    p.add_argument("--chain-port", type=int, help="anvil port (default 8545)")
    p.add_argument(
        "--otel",
        metavar="ENDPOINT",
        help="send traces over OTLP/HTTP to this collector, e.g. http://127.0.0.1:4318 "
        "(sets OTEL_EXPORTER_OTLP_ENDPOINT for every service)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        plan = plan_from_args(args, Env())
    except ConfigError as error:
        exit_on_config_error(error)
    plan.home.mkdir(parents=True, exist_ok=True)
    if getattr(args, "otel", None):
        # The children inherit every non-PAYGATE_ variable (service_env); tracing.setup reads this one.
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = args.otel
    return asyncio.run(_run(plan))


def existing_stack(home: Path) -> dict[str, Any] | None:
    return read_json(home / "stack.json")
