from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from session_service.domain.fulfilment import BackoffPolicy, FulfilmentStatus


def test_ceiling_doubles_until_the_cap() -> None:
    policy = BackoffPolicy(base_seconds=0.5, cap_seconds=10)
    assert [policy.ceiling(n) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]
    assert policy.ceiling(10**6) == 10  # no overflow however long billing is down


def test_full_jitter_scales_the_injected_draw() -> None:
    policy = BackoffPolicy(base_seconds=1, cap_seconds=60)
    assert policy.delay(3, lambda: 0.0) == 0
    assert policy.delay(3, lambda: 0.5) == 2
    assert policy.delay(3, lambda: 0.999) == pytest.approx(3.996)
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert policy.next_attempt_at(now, 3, lambda: 0.25) == now + timedelta(seconds=1)


def test_seeded_random_gives_a_reproducible_schedule_that_is_not_synchronised() -> None:
    policy = BackoffPolicy()
    first = [policy.delay(n, random.Random(7).random) for n in range(1, 6)]
    again = [policy.delay(n, random.Random(7).random) for n in range(1, 6)]
    other = [policy.delay(n, random.Random(8).random) for n in range(1, 6)]
    assert first == again
    assert first != other


@pytest.mark.parametrize("draw", [-0.1, 1.0, 2.0])
def test_a_bad_random_source_is_refused(draw: float) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy().delay(1, lambda: draw)


@pytest.mark.parametrize(
    "kwargs",
    [{"base_seconds": 0}, {"base_seconds": 5, "cap_seconds": 1}, {"multiplier": 0.5}, {"alert_after": 0}],
)
def test_policy_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(**kwargs)  # type: ignore[arg-type]


def test_failures_start_at_one_and_alerting_threshold() -> None:
    policy = BackoffPolicy(alert_after=3)
    with pytest.raises(ValueError):
        policy.ceiling(0)
    assert not policy.needs_attention(2)
    assert policy.needs_attention(3)


def test_fulfilment_status_values_match_the_proto() -> None:
    assert [s.value for s in FulfilmentStatus] == ["none", "pending", "done"]


@settings(max_examples=200, deadline=None)
@given(
    failures=st.integers(min_value=1, max_value=200),
    draw=st.floats(min_value=0, max_value=1, exclude_max=True),
    base=st.floats(min_value=0.01, max_value=5),
    cap=st.floats(min_value=5, max_value=3600),
)
def test_delays_stay_within_zero_and_a_non_decreasing_capped_ceiling(
    failures: int, draw: float, base: float, cap: float
) -> None:
    policy = BackoffPolicy(base_seconds=base, cap_seconds=cap)
    assert 0 <= policy.delay(failures, lambda: draw) <= policy.ceiling(failures) <= cap
    assert policy.ceiling(failures) <= policy.ceiling(failures + 1)
