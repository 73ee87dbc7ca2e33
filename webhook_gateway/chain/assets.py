"""Which on-chain assets paygate knows for a merchant: the chain's native coin and the merchant's tokens.

Money that reaches a session's deposit address in one of these assets, but not the session's own, is a
deposit of that asset: recorded, never counted for the session, and quarantined once confirmed as a currency
mismatch. A token contract the merchant never configured is nobody's asset here and stays ignored (anyone can
deploy a contract and emit Transfer events to any address).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import grpc

from paygate.session.v1 import session_pb2, session_pb2_grpc
from paygate_runtime.grpc_errors import is_transient
from paygate_runtime.money.assets import NATIVE_COIN, NATIVE_DECIMALS
from webhook_gateway.service_layer.relay import RetryLater


@dataclass(frozen=True, slots=True)
class Asset:
    currency: str
    exponent: int


NATIVE: Final = Asset(NATIVE_COIN, NATIVE_DECIMALS)


class MerchantTokens:
    """The ERC-20 tokens each merchant accepts on a chain, read from its payment settings (GetPaymentSettings)
    and kept `ttl_s` seconds, so a watcher pass asks the session service at most once per merchant."""

    def __init__(
        self,
        session: session_pb2_grpc.SessionServiceStub,
        *,
        deadline_s: float = 5.0,
        ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.deadline_s = deadline_s
        self.ttl_s = ttl_s
        self.clock = clock
        self._cache: dict[str, tuple[float, int, dict[str, Asset]]] = {}

    async def tokens(self, merchant_id: str, chain_id: int) -> dict[str, Asset]:
        """The merchant's tokens on `chain_id`, by lower-case contract address. Raises RetryLater when the
        session service is unavailable."""
        now = self.clock()
        cached = self._cache.get(merchant_id)
        if cached is None or cached[0] <= now:
            cached = (now + self.ttl_s, *await self._read(merchant_id))
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[merchant_id] = cached
        _, settings_chain, tokens = cached
        return tokens if settings_chain == chain_id else {}

    async def _read(self, merchant_id: str) -> tuple[int, dict[str, Asset]]:
        try:
            settings = await self.session.GetPaymentSettings(
                session_pb2.GetPaymentSettingsRequest(merchant_id=merchant_id), timeout=self.deadline_s
            )
        except grpc.aio.AioRpcError as error:
            if is_transient(error):
                raise RetryLater(f"session service GetPaymentSettings: {error.code().name}") from None
            return 0, {}  # no settings: the merchant accepts no token
        if not isinstance(settings, session_pb2.PaymentSettings) or not settings.HasField("onchain"):
            return 0, {}
        return settings.onchain.chain_id, {
            token.address.lower(): Asset(token.symbol, token.decimals) for token in settings.onchain.tokens
        }
