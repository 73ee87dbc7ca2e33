"""BlockView.last_block_at_or_before on a node that prunes old blocks: a block it does not return is a missing
fact, never "a block later than the moment" (which walked the search down to -1, and a start block of -1 counts
every wei the deposit address ever held as the session's)."""

from __future__ import annotations

from typing import Any

import pytest
from web3.exceptions import BlockNotFound

from webhook_gateway.chain.web3_service import BlockNotServed, BlockView


class _Eth:
    def __init__(self, stamps: dict[int, int], pruned_below: int = 0) -> None:
        self.stamps = stamps
        self.pruned_below = pruned_below

    async def get_block(self, number: int) -> dict[str, Any]:
        if number < self.pruned_below or number not in self.stamps:
            raise BlockNotFound(f"block {number}")
        return {"hash": number.to_bytes(32, "big"), "timestamp": self.stamps[number]}


class _W3:
    def __init__(self, eth: _Eth) -> None:
        self.eth = eth


def _view(stamps: dict[int, int], pruned_below: int = 0) -> BlockView:
    return BlockView(_W3(_Eth(stamps, pruned_below)), max(stamps))  # type: ignore[arg-type]


async def test_the_last_block_at_or_before_a_moment() -> None:
    stamps = {n: 1000 + n for n in range(50)}
    assert await _view(stamps).last_block_at_or_before(1020, 49) == 20
    assert await _view(stamps).last_block_at_or_before(999, 49) == -1  # before the first block
    assert await _view(stamps).last_block_at_or_before(5000, 49) == 49


async def test_a_block_the_node_does_not_return_raises_instead_of_reading_as_later() -> None:
    stamps = {n: 1000 + n for n in range(50)}
    with pytest.raises(BlockNotServed, match="BlockNotServed"):
        await _view(stamps, pruned_below=34).last_block_at_or_before(1020, 49)
