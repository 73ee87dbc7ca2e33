"""In-process cache of VerifyKey lookups, keyed by the presented key's SHA-256 hash.

What is cached is the key's *facts* (ids, mode, expires_at, revoked_at), never a status: the status is
re-evaluated against `now` on every hit, so an expiry or the end of a roll grace period takes effect at
once even for a cached key.

Freshness (issue 5: revocation is immediate on the replica that made it, within 1 s elsewhere):
- Every entry is dropped once older than `max_age` (default 1 s), so no replica serves a VALID that is
  older than the bound even if a LISTEN/NOTIFY invalidation was lost.
- `invalidate(key_id)` drops a key at once (called by the replica that revoked/rolled it and by the
  NOTIFY listener); `clear()` drops everything (called whenever the listener reconnects, since
  notifications sent while disconnected are lost).
- A lookup that started before an invalidation must not put pre-invalidation facts back afterwards. So a
  fill is two steps: `fill_ticket()` before reading the database, `put(..., ticket)` after; a put whose
  ticket predates any invalidation or clear is discarded. Any invalidation voids all in-flight fills:
  coarse, but cheap, and the only cost is one extra database read.

Negative caching (NOT_FOUND) is off by default (`negative_ttl=0`). It is safe to enable for a short TTL:
a new key's hash is derived from 192 fresh random bits, so nobody can have presented it, and had it cached
as NOT_FOUND, before it existed. Negative entries live in their own, smaller LRU so that a flood of random
junk keys cannot evict the hot valid keys.

Not thread-safe: one instance per event loop (the gRPC aio server's), where every call runs to completion.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from keys_service.domain.key_status import NOT_FOUND_RESULT, KeyFacts, VerifyResult, verify_result

DEFAULT_MAX_AGE_SECONDS = 1.0
DEFAULT_MAX_ENTRIES = 100_000
DEFAULT_MAX_NEGATIVE_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class CacheEntry:
    facts: KeyFacts | None  # None: a cached NOT_FOUND
    cached_at: float  # monotonic seconds


class VerifyCache:
    def __init__(
        self,
        *,
        max_age: float = DEFAULT_MAX_AGE_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        negative_ttl: float = 0.0,
        max_negative_entries: int = DEFAULT_MAX_NEGATIVE_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_age <= 0 or max_entries < 1 or negative_ttl < 0 or max_negative_entries < 1:
            raise ValueError("verify cache: max_age > 0, max_entries >= 1, negative_ttl >= 0 required")
        # The age bound is the freshness guarantee; a negative entry may not outlive it either.
        self.max_age = max_age
        self.negative_ttl = min(negative_ttl, max_age)
        self.max_entries = max_entries
        self.max_negative_entries = max_negative_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, CacheEntry] = OrderedDict()
        self._negative: OrderedDict[bytes, float] = OrderedDict()
        self._hash_by_key_id: dict[str, bytes] = {}
        self._generation = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries) + len(self._negative)

    def fill_ticket(self) -> int:
        """Take before reading the database; pass to `put`/`put_not_found`."""
        return self._generation

    def lookup(self, key_hash: bytes) -> CacheEntry | None:
        """The fresh entry for a hash, or None on a miss (absent or older than its bound)."""
        now = self._clock()
        entry = self._entries.get(key_hash)
        if entry is not None:
            if now - entry.cached_at < self.max_age:
                self._entries.move_to_end(key_hash)
                self.hits += 1
                return entry
            self._drop(key_hash)
        elif self._negative:
            cached_at = self._negative.get(key_hash)
            if cached_at is not None:
                if now - cached_at < self.negative_ttl:
                    self._negative.move_to_end(key_hash)
                    self.hits += 1
                    return CacheEntry(None, cached_at)
                del self._negative[key_hash]
        self.misses += 1
        return None

    def check(
        self, key_hash: bytes, now: datetime, merchant_scope: str | None = None, ip: str = ""
    ) -> VerifyResult | None:
        """A VerifyKey answer from the cache with the status evaluated at `now`; None on a miss."""
        entry = self.lookup(key_hash)
        if entry is None:
            return None
        if entry.facts is None:
            return NOT_FOUND_RESULT
        return verify_result(entry.facts, now, merchant_scope, ip)

    def put(self, key_hash: bytes, facts: KeyFacts, ticket: int) -> bool:
        """Cache a looked-up key. Returns False (and caches nothing) if an invalidation happened since
        `ticket` was taken."""
        if ticket != self._generation:
            return False
        previous = self._hash_by_key_id.get(facts.key_id)
        if previous is not None and previous != key_hash:
            self._drop(previous)
        self._negative.pop(key_hash, None)
        self._entries[key_hash] = CacheEntry(facts, self._clock())
        self._entries.move_to_end(key_hash)
        self._hash_by_key_id[facts.key_id] = key_hash
        while len(self._entries) > self.max_entries:
            oldest, evicted = self._entries.popitem(last=False)
            if evicted.facts is not None:
                self._unindex(evicted.facts.key_id, oldest)
        return True

    def put_not_found(self, key_hash: bytes, ticket: int) -> bool:
        """Cache a NOT_FOUND (no-op unless negative_ttl > 0)."""
        if self.negative_ttl <= 0 or ticket != self._generation or key_hash in self._entries:
            return False
        self._negative[key_hash] = self._clock()
        self._negative.move_to_end(key_hash)
        while len(self._negative) > self.max_negative_entries:
            self._negative.popitem(last=False)
        return True

    def invalidate(self, key_id: str) -> None:
        """Forget one key at once (revoked, rolled, expiry changed) and void in-flight fills."""
        self._generation += 1
        key_hash = self._hash_by_key_id.pop(key_id, None)
        if key_hash is not None:
            self._entries.pop(key_hash, None)

    def clear(self) -> None:
        """Forget everything and void in-flight fills (e.g. the NOTIFY listener reconnected)."""
        self._generation += 1
        self._entries.clear()
        self._negative.clear()
        self._hash_by_key_id.clear()

    def _drop(self, key_hash: bytes) -> None:
        entry = self._entries.pop(key_hash, None)
        if entry is not None and entry.facts is not None:
            self._unindex(entry.facts.key_id, key_hash)

    def _unindex(self, key_id: str, key_hash: bytes) -> None:
        if self._hash_by_key_id.get(key_id) == key_hash:
            del self._hash_by_key_id[key_id]
