"""Is a merchant ready for live sessions? Only with a complete seller profile (contract §9, issue 20).

A live session ends in a live invoice, and a live invoice needs the seller EN 16931 requires. The billing
service owns the profile and decides completeness (GetBillingProfile's `complete`); the gateway asks it for
live sessions only, and remembers a "complete" answer briefly so that a burst of live sessions costs one RPC.
An "incomplete" answer is never remembered: the moment the merchant completes the profile, the next session
goes through.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from paygate.billing.v1 import billing_pb2, billing_pb2_grpc
from paygate.common.v1 import common_pb2

COMPLETE_TTL_S = 30.0
_MAX_ENTRIES = 10_000


class ReadinessCache:
    def __init__(self, *, ttl_s: float = COMPLETE_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._complete_until: dict[str, float] = {}

    def is_known_complete(self, merchant_id: str) -> bool:
        until = self._complete_until.get(merchant_id)
        return until is not None and until > self._clock()

    def remember_complete(self, merchant_id: str) -> None:
        if len(self._complete_until) >= _MAX_ENTRIES:
            now = self._clock()
            self._complete_until = {m: t for m, t in self._complete_until.items() if t > now}
            if len(self._complete_until) >= _MAX_ENTRIES:
                self._complete_until.clear()
        self._complete_until[merchant_id] = self._clock() + self._ttl_s

    def forget(self, merchant_id: str) -> None:
        self._complete_until.pop(merchant_id, None)


class LiveBillingReadiness:
    """The billing service's answer to "may this merchant create live sessions?", with complete answers
    remembered briefly (ReadinessCache)."""

    def __init__(
        self, billing: billing_pb2_grpc.BillingServiceStub, cache: ReadinessCache | None = None
    ) -> None:
        self._billing = billing
        self._cache = cache or ReadinessCache()

    async def missing_fields(self, merchant_id: str) -> list[str]:
        """What the merchant's LIVE seller profile lacks for live invoices; empty when it is complete (the
        test profile, which a test key may change, never decides this). A failed call raises the RPC error."""
        if self._cache.is_known_complete(merchant_id):
            return []
        profile = await self._billing.GetBillingProfile(
            billing_pb2.GetBillingProfileRequest(merchant_id=merchant_id, mode=common_pb2.MODE_LIVE)
        )
        if profile.complete:
            self._cache.remember_complete(merchant_id)
            return []
        return list(profile.missing_fields) or ["seller details"]

    def forget(self, merchant_id: str) -> None:
        """The profile changed: ask again next time."""
        self._cache.forget(merchant_id)
