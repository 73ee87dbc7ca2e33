"""`paygate migrate` as a Job or a user runs it, when the database in PAYGATE_MIGRATE_DATABASE_URL cannot be
reached or the DSN is malformed: one line, exit 1, never the DSN's password."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "s3cret-pw"


@pytest.mark.parametrize(
    ("dsn", "service"),
    [
        (f"postgresql://postgres:{PASSWORD}@127.0.0.1:9/paygate", None),  # bootstrap and migrate all
        (f"postgresql://paygate_keys_owner:{PASSWORD}@127.0.0.1:9/paygate", "keys"),  # a Job per service
        ("not-a-dsn", None),
        (f"postgresql://postgres:{PASSWORD}@127.0.0.1:port/paygate", "keys"),
    ],
)
def test_migrate_without_a_reachable_database_says_so_in_one_line(dsn: str, service: str | None) -> None:
    """A walk of README's command table: these printed asyncpg's traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_") and k != "DATABASE_URL"}
    env["PAYGATE_MIGRATE_DATABASE_URL"] = dsn
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "paygate_runtime.cli.main",
            "migrate",
            *(["--service", service] if service else []),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("paygate migrate: cannot migrate the database: "), lines
    assert PASSWORD not in result.stderr
    assert result.returncode == 1
