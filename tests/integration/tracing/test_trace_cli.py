"""`paygate trace` as a user runs it, when the database it is pointed at cannot be read: one line, exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "s3cret-pw"


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://paygate:{PASSWORD}@127.0.0.1:9/paygate",  # nothing listens there (a stopped stack)
        "not-a-dsn",  # a mistyped --database-url
        f"postgresql://paygate:{PASSWORD}@127.0.0.1:port/paygate",
    ],
)
def test_trace_of_an_unreadable_database_says_so_in_one_line(dsn: str) -> None:
    """A walk of README's command table: these printed asyncpg's traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_")}
    result = subprocess.run(
        [sys.executable, "-m", "paygate_runtime.cli.main", "trace", str(uuid.uuid4()), "--database-url", dsn],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("paygate trace: cannot read the database: "), lines
    assert PASSWORD not in result.stderr  # the DSN's password is never printed
    assert result.returncode == 1 and result.stdout == ""
