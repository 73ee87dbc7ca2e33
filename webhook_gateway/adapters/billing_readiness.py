"""Is a merchant ready for live sessions? Only with a complete seller profile (contract §9, issue 20).

A live session ends in a live invoice, and a live invoice needs the seller EN 16931 requires. The billing
service owns the profile and decides completeness (GetBillingProfile's `complete`); the gateway asks it for
live sessions only, and remembers a "complete" answer briefly so that a burst of live sessions costs one RPC.
An "incomplete" answer is never remembered: the moment the merchant completes the profile, the next session
goes through.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable

from aiohttp import web

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from webhook_gateway.entrypoints.app_keys import CLIENTS
from webhook_gateway.entrypoints.http_errors import ApiError

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


# One cache per application, without adding state to an app that may already be running.
_CACHES: weakref.WeakKeyDictionary[web.Application, ReadinessCache] = weakref.WeakKeyDictionary()


def readiness_cache(app: web.Application) -> ReadinessCache:
    cache = _CACHES.get(app)
    if cache is None:
        cache = _CACHES[app] = ReadinessCache()
    return cache


async def require_live_billing_profile(app: web.Application, merchant_id: str) -> None:
    """Raise 409 billing_profile_incomplete unless the merchant's LIVE seller profile allows live invoices
    (the test profile, which a test key may change, never decides this)."""
    cache = readiness_cache(app)
    if cache.is_known_complete(merchant_id):
        return
    profile = await app[CLIENTS].billing.GetBillingProfile(
        billing_pb2.GetBillingProfileRequest(merchant_id=merchant_id, mode=common_pb2.MODE_LIVE)
    )
    if profile.complete:
        cache.remember_complete(merchant_id)
        return
    missing = ", ".join(profile.missing_fields) or "seller details"
    raise ApiError(
        409,
        "billing_profile_incomplete",
        f"live sessions need a complete billing profile (PUT /v1/billing_profile); missing: {missing}",
    )
