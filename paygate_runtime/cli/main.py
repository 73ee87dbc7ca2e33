"""The `paygate` command: run the stack, one service, migrations and developer tools.

Each command lives in its own module with `configure(parser)` and `run(args) -> int`; only the chosen one is
imported, so `paygate serve keys` never pays for importing web3.

The developer tools (`up`, `demo`, `trigger`, `events`, `pay`) are not part of the runtime: a package that
provides commands lists them in the `paygate.commands` entry point group (a `{name: (module, help)}` dict),
and the development install registers the dev tools package there. The container image leaves that package
out, so its commands do not exist there.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("paygate_runtime.cli.serve_cmd", "run one service in the foreground"),
    "migrate": ("paygate_runtime.cli.migrate_cmd", "apply database migrations"),
    "merchant": ("paygate_runtime.cli.merchant_cmd", "manage merchants and their secret keys"),
    "secrets": ("paygate_runtime.cli.secrets_cmd", "print the Kubernetes Secrets deploy/ needs"),
    "listen": (
        "paygate_runtime.cli.listen_cmd",
        "forward merchant events to a local URL, as `stripe listen`",
    ),
    "trace": ("paygate_runtime.cli.trace_cmd", "print one session's timeline from the database (operators)"),
    "audit": ("paygate_runtime.cli.audit_cmd", "verify the hash-chained audit logs (operators)"),
}


ENTRY_POINT_GROUP = "paygate.commands"


def registered_commands() -> dict[str, tuple[str, str]]:
    """The runtime's commands, then those of every installed package in ENTRY_POINT_GROUP (a runtime
    command keeps its name)."""
    commands = dict(COMMANDS)
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            provided = entry.load()
        except ModuleNotFoundError as error:
            # Declared by the distribution's metadata but its package is not there (the image installs the
            # wheel without the dev tools): those commands are simply absent. A module missing inside an
            # installed plugin is a fault and is raised.
            if error.name == entry.module.split(".")[0]:
                continue
            raise
        for name, spec in provided.items():
            commands.setdefault(name, spec)
    return commands


def build_parser(
    command: str | None = None, commands: dict[str, tuple[str, str]] | None = None
) -> argparse.ArgumentParser:
    commands = registered_commands() if commands is None else commands
    parser = argparse.ArgumentParser(prog="paygate", description="paygate payment-session backend")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in commands.items():
        child = sub.add_parser(name, help=help_text)
        if name == command:
            importlib.import_module(module).configure(child)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = registered_commands()
    command = argv[0] if argv and argv[0] in commands else None
    args = build_parser(command, commands).parse_args(argv)
    try:
        return int(importlib.import_module(commands[args.command][0]).run(args) or 0)
    except BrokenPipeError:
        # The reader went away (`paygate events --json | head -1`): stop quietly, as other tools do. Python's
        # advice: point stdout at devnull so that the interpreter's own flush at exit does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command a pipe stopped


if __name__ == "__main__":
    sys.exit(main())
