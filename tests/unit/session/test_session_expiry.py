from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paygate_runtime.errors import InvalidArgument
from session_service.domain.expiry import (
    DEFAULT_EXPIRES_IN,
    bounds_for,
    compute_expires_at,
    is_due,
    parse_expires_in,
)

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize("provider", ["onecom", "web3", "stripe"])
@pytest.mark.parametrize("given_seconds", [None, 0])
def test_default_is_24_hours_for_every_provider(provider: str, given_seconds: int | None) -> None:
    assert compute_expires_at(NOW, given_seconds, provider) == NOW + timedelta(hours=24)
    assert timedelta(hours=24) == DEFAULT_EXPIRES_IN


@pytest.mark.parametrize(
    ("provider", "seconds", "ok"),
    [
        ("onecom", 300, True),
        ("onecom", 299, False),
        ("onecom", 7 * 86400, True),
        ("onecom", 7 * 86400 + 1, False),
        ("web3", 600, True),
        ("stripe", 1800, True),
        ("stripe", 1799, False),
        ("stripe", 86400, True),
        ("stripe", 86401, False),
        ("stripe", 300, False),
        ("onecom", -60, False),
    ],
)
def test_bounds(provider: str, seconds: int, ok: bool) -> None:
    if ok:
        assert compute_expires_at(NOW, seconds, provider) == NOW + timedelta(seconds=seconds)
        return
    with pytest.raises(InvalidArgument) as caught:
        compute_expires_at(NOW, seconds, provider)
    assert (caught.value.code, caught.value.field) == ("expires_in_out_of_range", "expires_in")


def test_naive_now_is_a_bug() -> None:
    with pytest.raises(ValueError):
        compute_expires_at(datetime(2025, 1, 1), 600, "onecom")


@pytest.mark.parametrize(
    ("raw", "value"), [(None, None), (3600, 3600), (Decimal("3600"), 3600), (Decimal("3.6E+3"), 3600)]
)
def test_parse_expires_in_accepts_whole_seconds(raw: object, value: int | None) -> None:
    assert parse_expires_in(raw) == value


@pytest.mark.parametrize("raw", [True, 3600.0, Decimal("3600.5"), "3600", Decimal("NaN"), [1]])
def test_parse_expires_in_refuses_the_rest(raw: object) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_expires_in(raw)
    assert (caught.value.code, caught.value.field) == ("invalid_expires_in", "expires_in")


def test_parse_expires_in_refuses_absurd_exponents_without_building_them() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_expires_in(Decimal("1E+999999999"))
    assert caught.value.code == "expires_in_out_of_range"


def test_is_due() -> None:
    assert is_due(NOW, NOW)
    assert not is_due(NOW + timedelta(seconds=1), NOW)


@settings(max_examples=200, deadline=None)
@given(
    seconds=st.integers(min_value=-(10**6), max_value=10**7), provider=st.sampled_from(["stripe", "onecom"])
)
def test_every_accepted_lifetime_is_inside_the_bounds(seconds: int, provider: str) -> None:
    bounds = bounds_for(provider)
    try:
        expires_at = compute_expires_at(NOW, seconds, provider)
    except InvalidArgument:
        return
    assert bounds.minimum <= expires_at - NOW <= bounds.maximum
