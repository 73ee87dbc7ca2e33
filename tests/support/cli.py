"""The `paygate` command as a person runs it, from a test: a subprocess that does not block the test's event
loop (the in-process services it calls run on that loop), with none of the test process's PAYGATE_ variables
but the ones given, so it finds the stack the way a user's shell does (PAYGATE_HOME's stack.json, or an
address variable)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path


def cli_env(home: Path | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_")}
    if home is not None:
        env["PAYGATE_HOME"] = str(home)
    env.update(extra)
    return env


async def run_paygate(env: dict[str, str], *args: str, timeout: float = 90) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `paygate ARGS`."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "paygate_runtime.cli.main",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
