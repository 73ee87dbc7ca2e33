"""The `paygate` command: run the stack, one service, migrations and developer tools."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], str]] = {}


def _register(
    name: str, module: str, configure: Callable[[argparse.ArgumentParser], None], help_text: str
) -> None:
    COMMANDS[name] = (module, configure, help_text)


def _configure_up(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", help="state folder (default $PAYGATE_HOME or ./.paygate)")
    p.add_argument("--http-port", type=int, help="gateway port (default $PAYGATE_HTTP_PORT or 8080)")
    p.add_argument("--session-port", type=int, help="session gRPC port (default 50051)")
    p.add_argument("--billing-port", type=int, help="billing gRPC port (default 50052)")
    p.add_argument("--keys-port", type=int, help="keys gRPC port (default 50053)")
    p.add_argument("--smtp-port", type=int, help="local SMTP sink port (default 2525)")
    p.add_argument("--chain", action="store_true", help="also start a local Ethereum node (anvil)")
    p.add_argument("--chain-port", type=int, help="anvil port (default 8545)")


def _configure_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("service", choices=["session", "billing", "keys", "gateway"])


def _configure_migrate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--service", choices=["session", "billing", "keys", "gateway"], action="append")


def _configure_merchant(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="merchant_command", required=True)
    create = sub.add_parser("create", help="create a merchant and print its secret key once")
    create.add_argument("--name", required=True)
    create.add_argument("--key-prefix", help="customer key prefix (default: derived from the name)")
    create.add_argument("--mode", choices=["test", "live"], default="test")


_register("up", "paygate_runtime.cli.up", _configure_up, "start the whole system in the foreground")
_register("serve", "paygate_runtime.cli.serve_cmd", _configure_serve, "run one service in the foreground")
_register("migrate", "paygate_runtime.cli.migrate_cmd", _configure_migrate, "apply database migrations")
_register("merchant", "paygate_runtime.cli.merchant_cmd", _configure_merchant, "manage merchants")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paygate", description="paygate payment-session backend")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, configure, help_text) in COMMANDS.items():
        configure(sub.add_parser(name, help=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    import importlib

    args = build_parser().parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    result = module.run(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
