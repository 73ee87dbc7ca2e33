"""The `paygate` command finds the dev commands through the `paygate.commands` entry point group: the runtime
never names paygate_dev, and where paygate_dev is not installed (the container image) its commands are
simply absent instead of breaking the runtime's own commands."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

from paygate_runtime.cli import main

ROOT = Path(__file__).resolve().parents[3]
DEV_COMMANDS = {"up", "demo", "trigger", "events", "pay"}


def test_the_development_install_registers_the_dev_commands() -> None:
    commands = main.registered_commands()
    assert commands.keys() >= DEV_COMMANDS | {"serve", "migrate", "merchant"}
    assert {commands[name][0].split(".")[0] for name in DEV_COMMANDS} == {"paygate_dev"}
    assert not DEV_COMMANDS & main.COMMANDS.keys(), "a dev command is listed in the runtime itself"


def test_the_runtime_source_never_names_the_dev_package() -> None:
    for path in (ROOT / "paygate_runtime").rglob("*.py"):
        assert "paygate_dev" not in path.read_text(encoding="utf-8"), path


def test_without_paygate_dev_the_runtime_commands_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in the image: the wheel's metadata still declares the entry point, the package is missing."""
    missing = importlib.metadata.EntryPoint(
        name="paygate_dev", value="paygate_dev_not_installed.commands:COMMANDS", group=main.ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(main.importlib.metadata, "entry_points", lambda group: [missing])
    commands = main.registered_commands()
    assert commands == main.COMMANDS
    with pytest.raises(SystemExit):
        main.build_parser(None, commands).parse_args(["up"])
    assert main.build_parser(None, commands).parse_args(["migrate"]).command == "migrate"


def test_a_broken_plugin_is_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the plugin's own package being absent is skipped; an import error inside it is a real fault."""
    broken = importlib.metadata.EntryPoint(
        name="broken", value="paygate_runtime.cli.no_such_module:COMMANDS", group=main.ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(main.importlib.metadata, "entry_points", lambda group: [broken])
    with pytest.raises(ModuleNotFoundError):
        main.registered_commands()


def test_paygate_up_help_runs_through_the_installed_command() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "paygate"), "up", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: paygate up" in result.stdout
