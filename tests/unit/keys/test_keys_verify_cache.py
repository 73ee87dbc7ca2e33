from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from keys_service.domain.api_keys import KeyMode, generate_customer_key, hash_key
from keys_service.domain.key_status import KeyFacts, KeyStatus
from keys_service.domain.verify_cache import VerifyCache

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def facts(key_id: str = "key-1", **changes: object) -> KeyFacts:
    base: dict[str, object] = {
        "key_id": key_id,
        "merchant_id": "m-1",
        "session_id": f"s-{key_id}",
        "mode": KeyMode.LIVE,
        "expires_at": None,
        "revoked_at": None,
    }
    base.update(changes)
    return KeyFacts(**base)  # type: ignore[arg-type]


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def cache(clock: FakeClock) -> VerifyCache:
    return VerifyCache(max_age=1.0, max_entries=3, clock=clock)


H1, H2, H3, H4 = (hash_key(f"acme_test_{i}") for i in range(4))


def test_miss_then_hit_with_ids(cache: VerifyCache) -> None:
    assert cache.check(H1, NOW) is None
    assert cache.put(H1, facts(), cache.fill_ticket())
    result = cache.check(H1, NOW)
    assert result is not None and result.status is KeyStatus.VALID
    assert (result.key_id, result.merchant_id, result.session_id, result.mode) == (
        "key-1",
        "m-1",
        "s-key-1",
        "live",
    )
    assert (cache.hits, cache.misses) == (1, 1)


def test_status_is_re_evaluated_on_every_hit(cache: VerifyCache) -> None:
    expires = NOW + timedelta(milliseconds=300)
    cache.put(H1, facts(expires_at=expires), cache.fill_ticket())
    first = cache.check(H1, NOW)
    assert first is not None and first.status is KeyStatus.VALID
    # Same cached entry, later wall time: the expiry applies at once, without a database read.
    later = cache.check(H1, expires)
    assert later is not None and later.status is KeyStatus.EXPIRED


def test_never_serves_an_entry_older_than_the_bound(cache: VerifyCache, clock: FakeClock) -> None:
    cache.put(H1, facts(), cache.fill_ticket())
    clock.advance(0.999)
    assert cache.check(H1, NOW) is not None
    clock.advance(0.001)
    assert cache.check(H1, NOW) is None
    assert len(cache) == 0


def test_hits_do_not_refresh_the_age(cache: VerifyCache, clock: FakeClock) -> None:
    cache.put(H1, facts(), cache.fill_ticket())
    for _ in range(9):
        clock.advance(0.1)
        assert cache.check(H1, NOW) is not None
    clock.advance(0.1)
    assert cache.check(H1, NOW) is None


def test_invalidate_by_key_id_takes_effect_at_once(cache: VerifyCache) -> None:
    cache.put(H1, facts("key-1"), cache.fill_ticket())
    cache.put(H2, facts("key-2"), cache.fill_ticket())
    cache.invalidate("key-1")
    assert cache.check(H1, NOW) is None
    assert cache.check(H2, NOW) is not None
    cache.invalidate("unknown")  # harmless


def test_clear_forgets_everything(cache: VerifyCache) -> None:
    cache.put(H1, facts("key-1"), cache.fill_ticket())
    cache.put(H2, facts("key-2"), cache.fill_ticket())
    cache.clear()
    assert len(cache) == 0
    assert cache.check(H1, NOW) is None and cache.check(H2, NOW) is None


def test_fill_started_before_an_invalidation_is_discarded(cache: VerifyCache) -> None:
    ticket = cache.fill_ticket()  # lookup starts, reads the not-yet-revoked row
    cache.invalidate("key-1")  # meanwhile the key is revoked here
    assert not cache.put(H1, facts("key-1"), ticket)  # the stale VALID must not land
    assert cache.check(H1, NOW) is None
    ticket = cache.fill_ticket()
    cache.clear()  # listener reconnected
    assert not cache.put(H1, facts("key-1"), ticket)
    assert cache.put(H1, facts("key-1", revoked_at=NOW), cache.fill_ticket())
    result = cache.check(H1, NOW)
    assert result is not None and result.status is KeyStatus.REVOKED


def test_lru_bound_evicts_least_recently_used(cache: VerifyCache) -> None:
    for h, key_id in ((H1, "key-1"), (H2, "key-2"), (H3, "key-3")):
        cache.put(h, facts(key_id), cache.fill_ticket())
    assert cache.check(H1, NOW) is not None  # H1 is now most recent; H2 is the LRU
    cache.put(H4, facts("key-4"), cache.fill_ticket())
    assert len(cache) == 3
    assert cache.check(H2, NOW) is None
    assert all(cache.check(h, NOW) is not None for h in (H1, H3, H4))
    # The evicted key's id index is gone too: invalidating it touches nothing else.
    cache.invalidate("key-2")
    assert all(cache.check(h, NOW) is not None for h in (H1, H3, H4))


def test_rolled_key_replaces_its_old_hash_entry(cache: VerifyCache) -> None:
    cache.put(H1, facts("key-1"), cache.fill_ticket())
    cache.put(H2, facts("key-1"), cache.fill_ticket())  # same key id under another hash
    assert cache.check(H1, NOW) is None
    cache.invalidate("key-1")
    assert cache.check(H2, NOW) is None


def test_merchant_scope_turns_other_merchants_keys_into_not_found(cache: VerifyCache) -> None:
    cache.put(H1, facts(), cache.fill_ticket())
    scoped = cache.check(H1, NOW, merchant_scope="m-2")
    assert scoped is not None and scoped.status is KeyStatus.NOT_FOUND and scoped.key_id == ""
    own = cache.check(H1, NOW, merchant_scope="m-1")
    assert own is not None and own.status is KeyStatus.VALID


def test_negative_caching_is_off_by_default(cache: VerifyCache) -> None:
    assert not cache.put_not_found(H1, cache.fill_ticket())
    assert cache.check(H1, NOW) is None


def test_negative_caching_short_ttl_and_separate_bound(clock: FakeClock) -> None:
    cache = VerifyCache(max_age=1.0, max_entries=2, negative_ttl=0.2, max_negative_entries=2, clock=clock)
    cache.put(H1, facts("key-1"), cache.fill_ticket())
    assert cache.put_not_found(H2, cache.fill_ticket())
    result = cache.check(H2, NOW)
    assert result is not None and result.status is KeyStatus.NOT_FOUND
    clock.advance(0.2)
    assert cache.check(H2, NOW) is None
    # A flood of junk never evicts the valid key: negatives have their own LRU.
    for i in range(100):
        cache.put_not_found(hash_key(f"junk-{i}"), cache.fill_ticket())
    assert cache.check(H1, NOW) is not None
    assert len(cache) == 1 + 2


def test_newly_issued_key_replaces_a_negative_entry(clock: FakeClock) -> None:
    cache = VerifyCache(negative_ttl=0.5, clock=clock)
    cache.put_not_found(H1, cache.fill_ticket())
    cache.put(H1, facts(), cache.fill_ticket())
    result = cache.check(H1, NOW)
    assert result is not None and result.status is KeyStatus.VALID


def test_negative_ttl_never_exceeds_the_age_bound() -> None:
    assert VerifyCache(max_age=1.0, negative_ttl=30.0).negative_ttl == 1.0


@pytest.mark.parametrize(
    "kwargs", [{"max_age": 0}, {"max_entries": 0}, {"negative_ttl": -1}, {"max_negative_entries": 0}]
)
def test_bad_configuration_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        VerifyCache(**kwargs)  # type: ignore[arg-type]


def test_works_with_real_keys_and_real_clock() -> None:
    cache = VerifyCache()
    key = generate_customer_key("acme", "live")
    cache.put(key.key_hash, facts(), cache.fill_ticket())
    result = cache.check(hash_key(key.secret), datetime.now(UTC))
    assert result is not None and result.valid
