"""When the outbox dispatcher retries a fulfilment step that failed (billing or keys down, a deadline hit).

Exponential backoff with full jitter (delay drawn uniformly from [0, min(cap, base * 2**(n-1))]): replicas
that failed together do not retry together. The random source is injected so the schedule is testable.
Fulfilment never gives up (the customer has paid); `alert_after` only says when a person should look.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class FulfilmentStatus(StrEnum):
    NONE = "none"
    PENDING = "pending"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    base_seconds: float = 0.5
    cap_seconds: float = 300.0
    multiplier: float = 2.0
    alert_after: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.base_seconds <= self.cap_seconds:
            raise ValueError("need 0 < base_seconds <= cap_seconds")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")
        if self.alert_after < 1:
            raise ValueError("alert_after must be at least 1")

    def ceiling(self, failures: int) -> float:
        """The largest delay after `failures` consecutive failures (>= 1)."""
        if failures < 1:
            raise ValueError("failures must be at least 1")
        ceiling = self.base_seconds
        # Loop instead of base * multiplier**n: no overflow however many times a step has failed.
        for _ in range(failures - 1):
            ceiling *= self.multiplier
            if ceiling >= self.cap_seconds:
                return self.cap_seconds
        return min(ceiling, self.cap_seconds)

    def delay(self, failures: int, random: Callable[[], float]) -> float:
        """Seconds to wait before the next attempt; `random()` returns [0, 1) like random.random."""
        draw = random()
        if not 0 <= draw < 1:
            raise ValueError("random() must return a value in [0, 1)")
        return draw * self.ceiling(failures)

    def next_attempt_at(self, now: datetime, failures: int, random: Callable[[], float]) -> datetime:
        return now + timedelta(seconds=self.delay(failures, random))

    def needs_attention(self, failures: int) -> bool:
        return failures >= self.alert_after
