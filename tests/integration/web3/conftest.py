"""One real anvil node (npm @foundry-rs/anvil) with the test token, shared by the web3 integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from support.web3_chain import Chain, running_chain


@pytest.fixture(scope="session")
async def chain() -> AsyncIterator[Chain]:
    # No skip when anvil is missing: start_anvil raises, and the chain tests fail (in CI and locally alike).
    async with running_chain() as chain:
        yield chain
