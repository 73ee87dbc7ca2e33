"""Gateway route handlers run no SQL and hold no database pool: a handler reaches the database only through
a repository (webhook_gateway.adapters.*) that the composition root (entrypoints.app) built once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import webhook_gateway.entrypoints as entrypoints

# routes_webhooks and routes_web3 wire their own workers; the rule is held on every other route module.
ROUTE_MODULES = sorted(
    p
    for p in Path(entrypoints.__file__).parent.glob("routes_*.py")
    if p.stem not in {"routes_webhooks", "routes_web3"}
)
_POOL_OR_SQL = re.compile(
    r"\bPOOL\b|\basyncpg\b|\.(fetch|fetchrow|fetchval|execute|executemany)\(|\b(SELECT|INSERT INTO|DELETE FROM)\b"
)


@pytest.mark.parametrize("path", ROUTE_MODULES, ids=lambda p: p.stem)
def test_route_module_has_no_pool_and_no_sql(path: Path) -> None:
    found = [
        f"{path.name}:{n}: {line.strip()}"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if _POOL_OR_SQL.search(line)
    ]
    assert not found, found


def test_the_rule_sees_route_modules() -> None:
    assert {"routes_portal", "routes_checkout", "routes_dashboard"} <= {p.stem for p in ROUTE_MODULES}
