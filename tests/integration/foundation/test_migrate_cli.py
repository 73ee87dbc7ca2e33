"""`paygate migrate` as a Job or a user runs it, when the database in PAYGATE_MIGRATE_DATABASE_URL cannot be
reached or the DSN is malformed: one line, exit 1, never the DSN's password."""

from __future__ import annotations

import pytest

from support.cli import cli_env, run_paygate

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
async def test_migrate_without_a_reachable_database_says_so_in_one_line(
    dsn: str, service: str | None
) -> None:
    """A walk of README's command table: these printed asyncpg's traceback."""
    env = cli_env(PAYGATE_MIGRATE_DATABASE_URL=dsn)
    env.pop("DATABASE_URL", None)
    code, _, err = await run_paygate(env, "migrate", *(["--service", service] if service else []), timeout=60)
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("paygate migrate: cannot migrate the database: "), lines
    assert PASSWORD not in err
    assert code == 1
