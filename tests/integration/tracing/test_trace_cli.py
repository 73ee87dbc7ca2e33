"""`paygate trace` as a user runs it, when the database it is pointed at cannot be read: one line, exit 1."""

from __future__ import annotations

import uuid

import pytest

from support.cli import cli_env, run_paygate

PASSWORD = "s3cret-pw"


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://paygate:{PASSWORD}@127.0.0.1:9/paygate",  # nothing listens there (a stopped stack)
        "not-a-dsn",  # a mistyped --database-url
        f"postgresql://paygate:{PASSWORD}@127.0.0.1:port/paygate",
    ],
)
async def test_trace_of_an_unreadable_database_says_so_in_one_line(dsn: str) -> None:
    """A walk of README's command table: these printed asyncpg's traceback."""
    code, out, err = await run_paygate(
        cli_env(), "trace", str(uuid.uuid4()), "--database-url", dsn, timeout=60
    )
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("paygate trace: cannot read the database: "), lines
    assert PASSWORD not in err  # the DSN's password is never printed
    assert code == 1 and out == ""
