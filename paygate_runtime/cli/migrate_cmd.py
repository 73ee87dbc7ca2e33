"""`paygate migrate`: apply migrations with the owner-role DSN in PAYGATE_MIGRATE_DATABASE_URL.

With --service given once (a Kubernetes Job per service) the DSN is that service's owner; without it, the
DSN must be a superuser's and every service is bootstrapped and migrated (a single-database dev setup).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from urllib.parse import urlsplit

from paygate_runtime.config import ConfigError, Env, exit_on_config_error
from paygate_runtime.database_errors import DATABASE_ERRORS, describe
from paygate_runtime.migrations import migrate
from paygate_runtime.schemas import SERVICES, bootstrap_database, dsn_for_role


async def _run(dsn: str, services: list[str] | None) -> None:
    if services and len(services) == 1:
        applied = await migrate(dsn, services[0])
        print(f"{services[0]}: applied {len(applied)} migration(s) {' '.join(applied)}".rstrip())
        return
    database = urlsplit(dsn).path.lstrip("/") or "postgres"
    await bootstrap_database(dsn, database)
    for service in services or list(SERVICES):
        applied = await migrate(dsn_for_role(dsn, SERVICES[service].owner_role), service)
        print(f"{service}: applied {len(applied)} migration(s) {' '.join(applied)}".rstrip())


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--service", choices=list(SERVICES), action="append", help="only this service (repeatable)"
    )


def run(args: argparse.Namespace) -> int:
    env = Env()
    try:
        dsn = env.raw("PAYGATE_MIGRATE_DATABASE_URL") or env.raw("DATABASE_URL")
        if not dsn:
            raise ConfigError("PAYGATE_MIGRATE_DATABASE_URL", "is required but not set")
    except ConfigError as error:
        exit_on_config_error(error)
    try:
        asyncio.run(_run(dsn, args.service))
    except DATABASE_ERRORS as error:
        # A Job's log then shows one line (what and why), and the Job fails instead of reporting success.
        print(f"paygate migrate: cannot migrate the database: {describe(error)}", file=sys.stderr)
        return 1
    return 0
