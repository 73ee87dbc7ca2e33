"""Money on a web3 session the merchant expired early: each transfer is quarantined once, for what it was.

The merchant may expire a pending web3 session before `expires_at`; its partial money then goes to
quarantine, one entry per transfer. A transfer that comes later is still on time by block time (expires_at
has not passed), and used to make the recorded total reach the price: it was then sent as a `confirmed`
payment of that total, quarantining the partial money a second time.
"""

from __future__ import annotations

import pytest

from support.stack import Merchant, ServiceStack
from support.web3_chain import (
    FINNEY,
    TUSD,
    Chain,
    chain_env,
    create_web3_session,
    get_session,
    quarantine,
    wait_for,
    wait_status,
    web3_merchant,
)

pytestmark = pytest.mark.chain


@pytest.fixture
def stack_env(stack_env: dict[str, str], chain: Chain, request: pytest.FixtureRequest) -> dict[str, str]:
    # Internal ETH transfers from traces (anvil's default) or, as on a node without them, by balance difference.
    internal = getattr(request, "param", "traces")
    return {**stack_env, **chain_env(chain, watcher=True), "PAYGATE_CHAIN_INTERNAL_TRANSFERS": internal}


async def entries_for(stack: ServiceStack, merchant: Merchant, session_id: str, count: int) -> list[dict]:
    async def check() -> list[dict] | None:
        found = [e for e in await quarantine(stack, merchant) if e["session_id"] == session_id]
        return found if len(found) >= count else None

    return await wait_for(check, what=f"{count} quarantine entries for {session_id}")


async def pay(chain: Chain, currency: str, address: str, amount_minor: int) -> str:
    if currency == "ETH":
        return await chain.pay_eth(address, amount_minor)
    return await chain.pay_token(address, amount_minor)


@pytest.mark.parametrize(
    ("currency", "price", "unit", "stack_env"),
    [("TUSD", "10", TUSD, "traces"), ("ETH", "0.01", FINNEY, "traces"), ("ETH", "0.01", FINNEY, "balance")],
    ids=["token", "eth", "eth-by-balance"],
    indirect=["stack_env"],
)
async def test_money_after_the_merchant_expired_the_session_is_quarantined_once_per_transfer(
    stack: ServiceStack, chain: Chain, currency: str, price: str, unit: int
) -> None:
    merchant = await web3_merchant(stack, chain, min_confirmations=1)
    session = await create_web3_session(stack, merchant, price, currency)
    address = session["payment"]["deposit_address"]
    first = await pay(chain, currency, address, 3 * unit)
    second = await pay(chain, currency, address, 3 * unit)
    await wait_status(stack, merchant, session["id"], "pending")
    status, body = await stack.request(
        "POST", f"/v1/sessions/{session['id']}/expire", headers=merchant.headers
    )
    assert status == 200 and body["status"] == "expired", body
    await entries_for(stack, merchant, session["id"], 2)

    # Enough on its own to reach the price with the money already quarantined: still only its own amount.
    third = await pay(chain, currency, address, 10 * unit)
    entries = await entries_for(stack, merchant, session["id"], 3)
    received = sorted(
        (e["provider_reference"].split("#")[0], int(e["amount"]["amount_minor"])) for e in entries
    )
    assert received == sorted([(first, 3 * unit), (second, 3 * unit), (third, 10 * unit)])
    assert {e["reason"] for e in entries} == {"payment_on_closed_session"}
    body = await get_session(stack, merchant, session["id"])
    assert body["status"] == "expired" and body["paid_at"] is None
