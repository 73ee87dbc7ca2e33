"""The `paygate` commands this package provides, registered in pyproject.toml's `paygate.commands` entry
point group. Same shape as paygate_runtime.cli.main.COMMANDS: name -> (module with configure/run, help).
Imports nothing, so listing the commands costs no import of the tools themselves."""

from __future__ import annotations

COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("paygate_dev.up", "start the whole system in the foreground"),
    "demo": ("paygate_dev.devtools.demo_cmd", "run the seed flow against the running stack"),
    "trigger": ("paygate_dev.devtools.trigger_cmd", "send a correctly signed provider event"),
    "events": ("paygate_dev.devtools.events_cmd", "inspect the webhook inbox"),
    "pay": ("paygate_dev.chain.pay_cmd", "pay a web3 session from a local dev account"),
}
