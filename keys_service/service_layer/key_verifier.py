"""VerifyKey: the hot path. Classify by shape, hash, answer from the in-process cache, else one indexed read.

Nothing here compares a presented key with stored text: the whole presented string is hashed and looked
up by equality, and the stored hash is compared with `hmac.compare_digest`. Malformed input is refused by
its shape alone, before any lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg

from keys_service.adapters import api_key_repository
from keys_service.adapters.usage_recorder import UsageRecorder
from keys_service.domain.api_keys import KeyMode, hash_key, hashes_equal, parse_customer_key
from keys_service.domain.key_status import NOT_FOUND_RESULT, VerifyResult, verify_result
from keys_service.domain.verify_cache import VerifyCache


class KeyVerifier:
    def __init__(
        self,
        pool: asyncpg.Pool,
        cache: VerifyCache,
        usage: UsageRecorder,
        *,
        cache_enabled: Callable[[], bool] = lambda: True,
    ) -> None:
        self.pool = pool
        self.cache = cache
        self.usage = usage
        # False while the invalidation listener is disconnected: then every check reads the database.
        self.cache_enabled = cache_enabled

    def invalidate(self, key_id: str) -> None:
        """Drop a key this replica just changed (the NOTIFY reaches the other replicas)."""
        self.cache.invalidate(key_id)

    async def verify(
        self,
        raw: object,
        merchant_scope: str | None = None,
        mode_scope: KeyMode | None = None,
        ip: str = "",
    ) -> VerifyResult:
        presented = parse_customer_key(raw)
        if presented is None or (mode_scope is not None and presented.mode is not mode_scope):
            return NOT_FOUND_RESULT
        key_hash = hash_key(presented.secret)
        now = datetime.now(UTC)
        result = self.cache.check(key_hash, now, merchant_scope, ip)
        if result is None:
            ticket = self.cache.fill_ticket()
            found = await api_key_repository.facts_by_hash(self.pool, key_hash)
            if found is None or not hashes_equal(found[0], key_hash):
                self.cache.put_not_found(key_hash, ticket)
                return NOT_FOUND_RESULT
            facts = found[1]
            if self.cache_enabled():
                self.cache.put(key_hash, facts, ticket)
            result = verify_result(facts, now, merchant_scope, ip)
        if result.valid:
            self.usage.note(result.key_id, now)
        return result
