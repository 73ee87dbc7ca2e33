"""One real anvil node (npm @foundry-rs/anvil) with the test token, shared by the web3 integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from web3_itest_support import Chain

from webhook_gateway.chain.anvil import start_anvil
from webhook_gateway.chain.test_token import deploy_test_token
from webhook_gateway.chain.web3_service import connect_web3


@pytest.fixture(scope="session")
async def chain() -> AsyncIterator[Chain]:
    # No skip when anvil is missing: start_anvil raises, and the chain tests fail (in CI and locally alike).
    async with start_anvil() as anvil:
        w3 = connect_web3(anvil.rpc_url, 10.0)
        token = await deploy_test_token(w3, anvil.funded_account)
        fake = await deploy_test_token(w3, anvil.funded_account)
        yield Chain(anvil=anvil, w3=w3, payer=anvil.funded_account, token=token, fake_token=fake)
        await w3.provider.disconnect()
