"""The `paygate` command: run the stack, one service, migrations and developer tools.

Each command lives in its own module with `configure(parser)` and `run(args) -> int`; only the chosen one is
imported, so `paygate serve keys` never pays for importing web3.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("paygate_runtime.cli.up", "start the whole system in the foreground"),
    "serve": ("paygate_runtime.cli.serve_cmd", "run one service in the foreground"),
    "migrate": ("paygate_runtime.cli.migrate_cmd", "apply database migrations"),
    "merchant": ("paygate_runtime.cli.merchant_cmd", "manage merchants"),
    "demo": ("webhook_gateway.devtools.demo_cmd", "run the seed flow against the running stack"),
    "trigger": ("webhook_gateway.devtools.trigger_cmd", "send a correctly signed provider event"),
    "events": ("webhook_gateway.devtools.events_cmd", "inspect the webhook inbox"),
    "pay": ("webhook_gateway.chain.pay_cmd", "pay a web3 session from a local dev account"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paygate", description="paygate payment-session backend")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        child = sub.add_parser(name, help=help_text)
        if name == command:
            importlib.import_module(module).configure(child)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(command).parse_args(argv)
    return int(importlib.import_module(COMMANDS[args.command][0]).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
