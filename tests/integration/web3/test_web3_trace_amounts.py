"""`paygate trace` of a web3 session shows its price in plain minor units (asyncpg reads NUMERIC columns as
Decimals such as Decimal('1E+16'), which str() prints in scientific notation)."""

from __future__ import annotations

import json

import pytest

from support.cli import cli_env, run_paygate
from support.stack import ServiceStack
from support.web3_chain import Chain, chain_env, create_web3_session, web3_merchant

pytestmark = pytest.mark.chain


@pytest.fixture
def stack_env(stack_env: dict[str, str], chain: Chain) -> dict[str, str]:
    return {**stack_env, **chain_env(chain, watcher=False)}


async def test_trace_shows_a_web3_price_in_plain_minor_units(stack: ServiceStack, chain: Chain) -> None:
    merchant = await web3_merchant(stack, chain)
    session = await create_web3_session(stack, merchant, "0.01", "ETH")
    code, out, err = await run_paygate(
        cli_env(), "trace", session["id"], "--database-url", stack.db.admin_dsn, "--json", timeout=60
    )
    assert code == 0, err
    created = [json.loads(line) for line in out.splitlines() if '"session created"' in line]
    assert len(created) == 1, out
    assert "10000000000000000 minor units of ETH (exponent 18)" in created[0]["detail"]
