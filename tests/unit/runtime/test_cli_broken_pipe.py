"""A `paygate` command whose reader goes away (`paygate events --json | head -1`) stops quietly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHATTY = """
def configure(parser):
    pass

def run(args):
    for n in range(200_000):  # far more than a pipe holds
        print(f"line {n}")
    return 0
"""

DRIVER = """
import sys
sys.path.insert(0, sys.argv[1])
from paygate_runtime.cli import main as cli
cli.registered_commands = lambda: {"chatty": ("chatty_cmd", "prints a lot")}
sys.exit(cli.main(["chatty"]))
"""


def test_a_closed_pipe_ends_the_command_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "chatty_cmd.py").write_text(CHATTY)
    command = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert command.stdout is not None and command.stderr is not None
    assert command.stdout.read(10) == b"line 0\nlin"
    command.stdout.close()  # as `head` does once it has what it wants
    errors = command.stderr.read().decode()
    assert command.wait(30) == 141, errors  # 128 + SIGPIPE, as a shell reports it
    assert "Traceback" not in errors and "BrokenPipeError" not in errors
