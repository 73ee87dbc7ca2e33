"""What an operator command that reads or migrates the database (`trace`, `audit verify`, `events`, `migrate`),
and `serve` while it starts, turn into one line and a non-zero exit instead of asyncpg's traceback: nothing answers at the DSN (a stopped
stack, a wrong port), the DSN is malformed (asyncpg raises ValueError, or its ClientConfigurationError, which is
one), or the server refuses (a wrong password, a missing role). Their messages never hold the DSN's password."""

from __future__ import annotations

import asyncpg

# Nothing answers, or the server refuses: what a service that starts with a DSN already checked can meet.
CONNECT_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)
# And a DSN a person typed (--database-url), which only asyncpg parses.
DATABASE_ERRORS: tuple[type[Exception], ...] = (*CONNECT_ERRORS, ValueError)


def describe(error: Exception) -> str:
    """`error`'s class and message: "[Errno 2] No such file or directory" alone does not say it was a socket."""
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
