"""Timing of the in-process VerifyKey hot path for a cached key (goal: under 20 µs). Not a test.

Run: .venv/bin/python tests/unit/keys/bench_verify_cache.py
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from keys_service.domain.api_keys import KeyMode, generate_customer_key, parse_customer_key
from keys_service.domain.key_status import KeyFacts
from keys_service.domain.verify_cache import VerifyCache

N = 200_000


def main() -> None:
    cache = VerifyCache(max_age=3600.0)
    keys = [generate_customer_key("acme", "live") for _ in range(10_000)]
    for i, key in enumerate(keys):
        facts = KeyFacts(f"key-{i}", "m-1", f"s-{i}", KeyMode.LIVE, None, None)
        cache.put(key.key_hash, facts, cache.fill_ticket())
    presented = [k.secret for k in keys]

    def check(raw: str) -> object:
        # The whole in-process check: classify, hash, look up, evaluate status at now.
        parsed = parse_customer_key(raw)
        if parsed is None:
            return None
        return cache.check(parsed.key_hash, datetime.now(UTC))

    for raw in presented[:1000]:
        check(raw)
    samples: list[float] = []
    start = time.perf_counter()
    for i in range(N):
        t0 = time.perf_counter_ns()
        result = check(presented[i % len(presented)])
        samples.append(time.perf_counter_ns() - t0)
        assert result is not None
    total = time.perf_counter() - start
    samples.sort()
    print(f"cached VerifyKey check: {N / total:,.0f}/s")
    mean, p50, p99 = sum(samples) / N / 1000, samples[N // 2] / 1000, samples[N * 99 // 100] / 1000
    print(f"  mean {mean:.2f} µs, p50 {p50:.2f} µs, p99 {p99:.2f} µs")
    junk = "x" * 10_000
    t0 = time.perf_counter()
    for _ in range(N):
        check(junk)
    print(f"oversize refusal: {(time.perf_counter() - t0) / N * 1e6:.2f} µs")


if __name__ == "__main__":
    main()
