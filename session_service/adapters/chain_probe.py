"""Read-only JSON-RPC questions the session service asks a chain when a merchant configures web3 payments.

Two questions, both asked before settings are stored: does an xpub's first deposit address already hold
funds or history (balance, nonce, a balance of an accepted token), and what do an ERC-20 contract's own
`decimals()` and `symbol()` say. Plain JSON-RPC over aiohttp: the session service has no use for web3.py
(whose import also raises the interpreter's recursion limit for its own maths).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from paygate_runtime.errors import FailedPrecondition, InvalidArgument, Unavailable

_DECIMALS = "0x313ce567"  # decimals()
_SYMBOL = "0x95d89b41"  # symbol()
_BALANCE_OF = "0x70a08231"  # balanceOf(address)
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class AddressUse:
    address: str
    what: str  # "balance", "nonce" or "token_balance:<symbol>"


class ChainProbe:
    """One chain's node, as a source of read-only facts. Errors from the node become `Unavailable`."""

    def __init__(self, chain_id: int, rpc_url: str, timeout_s: float = 10.0) -> None:
        self.chain_id = chain_id
        self.rpc_url = rpc_url
        self.timeout_s = timeout_s

    async def _call(self, http: aiohttp.ClientSession, method: str, params: list[Any]) -> Any:
        body = {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params}
        try:
            async with http.post(self.rpc_url, json=body) as response:
                reply = await response.json(content_type=None)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            raise Unavailable(
                "chain_unavailable", f"the chain node did not answer: {type(exc).__name__}"
            ) from None
        if not isinstance(reply, dict):
            raise Unavailable("chain_unavailable", "the chain node sent a malformed answer")
        if "error" in reply:
            raise _NodeRefused(str(reply["error"]))
        return reply.get("result")

    def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))

    async def _check_chain(self, http: aiohttp.ClientSession) -> None:
        try:
            chain_id = int(await self._call(http, "eth_chainId", []), 16)
        except _NodeRefused as exc:
            raise Unavailable("chain_unavailable", f"the chain node refused eth_chainId: {exc}") from None
        if chain_id != self.chain_id:
            raise FailedPrecondition(
                "chain_id_mismatch",
                f"the node configured for chain {self.chain_id} serves chain {chain_id}",
                field="chain_id",
            )

    async def used_addresses(
        self, addresses: Sequence[str], tokens: Sequence[tuple[str, str]]
    ) -> list[AddressUse]:
        """Which of `addresses` already hold ETH, sent a transaction, or hold one of `tokens` (address,
        symbol). Money received and never moved shows as a balance; money moved on shows as a nonce."""
        found: list[AddressUse] = []
        async with self._session() as http:
            await self._check_chain(http)
            for address in addresses:
                try:
                    if int(await self._call(http, "eth_getBalance", [address, "latest"]), 16) > 0:
                        found.append(AddressUse(address, "balance"))
                        continue
                    if int(await self._call(http, "eth_getTransactionCount", [address, "latest"]), 16) > 0:
                        found.append(AddressUse(address, "nonce"))
                        continue
                    for token, symbol in tokens:
                        data = _BALANCE_OF + address.lower().removeprefix("0x").rjust(64, "0")
                        try:
                            raw = await self._call(http, "eth_call", [{"to": token, "data": data}, "latest"])
                            balance = _uint(raw)
                        except (_NodeRefused, ValueError):
                            # No balanceOf (a revert): the contract keeps no balance for anyone to hold.
                            balance = 0
                        if balance > 0:
                            found.append(AddressUse(address, f"token_balance:{symbol}"))
                            break
                except _NodeRefused as exc:
                    raise Unavailable("chain_unavailable", f"the chain node refused a read: {exc}") from None
        return found

    async def token_metadata(self, token: str) -> tuple[str, int]:
        """(symbol, decimals) as the contract reports them; InvalidArgument `token_not_erc20` when it cannot."""
        async with self._session() as http:
            await self._check_chain(http)
            try:
                raw_decimals = await self._call(
                    http, "eth_call", [{"to": token, "data": _DECIMALS}, "latest"]
                )
                raw_symbol = await self._call(http, "eth_call", [{"to": token, "data": _SYMBOL}, "latest"])
            except _NodeRefused:
                raw_decimals = raw_symbol = None
        try:
            decimals = _uint(raw_decimals)
            symbol = _abi_string(raw_symbol)
        except ValueError:
            raise InvalidArgument(
                "token_not_erc20",
                f"{token} does not answer decimals() and symbol() like an ERC-20 contract",
                field="tokens",
            ) from None
        if decimals > 255:
            raise InvalidArgument("token_not_erc20", f"{token} reports {decimals} decimals", field="tokens")
        return symbol, decimals


class _NodeRefused(Exception):
    """The node answered with a JSON-RPC error (a revert, or a method it does not serve)."""


def _bytes(raw: Any) -> bytes:
    if not isinstance(raw, str) or not raw.startswith("0x") or raw == "0x":
        raise ValueError("empty answer")
    return bytes.fromhex(raw[2:])


def _uint(raw: Any) -> int:
    data = _bytes(raw)
    if len(data) < 32:
        raise ValueError("short answer")
    return int.from_bytes(data[:32], "big")


def _abi_string(raw: Any) -> str:
    """An ABI-encoded `string`, or the `bytes32` some early tokens (MKR) return instead."""
    data = _bytes(raw)
    if len(data) == 32:
        return data.rstrip(b"\0").decode("utf-8", "strict")
    if len(data) < 64:
        raise ValueError("short answer")
    offset = int.from_bytes(data[:32], "big")
    if offset + 32 > len(data):
        raise ValueError("bad offset")
    length = int.from_bytes(data[offset : offset + 32], "big")
    if offset + 32 + length > len(data):
        raise ValueError("bad length")
    return data[offset + 32 : offset + 32 + length].decode("utf-8", "strict")
