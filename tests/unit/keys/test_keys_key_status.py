from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from keys_service.domain.api_keys import KeyMode
from keys_service.domain.key_status import (
    MAX_GRACE_PERIOD_SECONDS,
    KeyFacts,
    KeyStatus,
    evaluate_status,
    rolled_key_expiry,
    validate_grace_period,
    verify_result,
)
from paygate_runtime.errors import InvalidArgument

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def facts(**changes: object) -> KeyFacts:
    base: dict[str, object] = {
        "key_id": "key-1",
        "merchant_id": "m-1",
        "session_id": "s-1",
        "mode": KeyMode.TEST,
        "expires_at": None,
        "revoked_at": None,
    }
    base.update(changes)
    return KeyFacts(**base)  # type: ignore[arg-type]


def test_key_without_expiry_or_revocation_is_valid() -> None:
    assert evaluate_status(revoked_at=None, expires_at=None, now=NOW) is KeyStatus.VALID


def test_expiry_takes_effect_at_the_instant() -> None:
    expires = NOW + SECOND
    assert evaluate_status(revoked_at=None, expires_at=expires, now=NOW) is KeyStatus.VALID
    assert evaluate_status(revoked_at=None, expires_at=expires, now=expires - timedelta(microseconds=1)) is (
        KeyStatus.VALID
    )
    assert evaluate_status(revoked_at=None, expires_at=expires, now=expires) is KeyStatus.EXPIRED
    assert evaluate_status(revoked_at=None, expires_at=expires, now=expires + SECOND) is KeyStatus.EXPIRED


def test_revocation_wins_over_expiry_and_over_clock_skew() -> None:
    assert evaluate_status(revoked_at=NOW, expires_at=NOW - SECOND, now=NOW) is KeyStatus.REVOKED
    # Stamped by a replica whose clock runs ahead: still revoked now.
    assert evaluate_status(revoked_at=NOW + 5 * SECOND, expires_at=None, now=NOW) is KeyStatus.REVOKED


def test_verify_result_carries_ids_and_scopes_by_merchant() -> None:
    result = verify_result(facts(), NOW)
    assert result.status is KeyStatus.VALID and result.valid
    assert (result.key_id, result.merchant_id, result.session_id, result.mode) == (
        "key-1",
        "m-1",
        "s-1",
        "test",
    )
    revoked = verify_result(facts(revoked_at=NOW), NOW)
    assert revoked.status is KeyStatus.REVOKED and revoked.key_id == "key-1" and not revoked.valid
    assert verify_result(facts(), NOW, merchant_scope="m-1").status is KeyStatus.VALID
    other = verify_result(facts(revoked_at=NOW), NOW, merchant_scope="m-2")
    assert other.status is KeyStatus.NOT_FOUND and other.key_id == "" and other.merchant_id == ""
    missing = verify_result(None, NOW)
    assert missing.status is KeyStatus.NOT_FOUND and missing.key_id == ""


@pytest.mark.parametrize("seconds", [0, 1, 3600, MAX_GRACE_PERIOD_SECONDS])
def test_grace_period_bounds_accept(seconds: int) -> None:
    assert validate_grace_period(seconds) == seconds


@pytest.mark.parametrize("seconds", [-1, MAX_GRACE_PERIOD_SECONDS + 1, 10**30, 1.5, "60", None, True])
def test_grace_period_bounds_refuse(seconds: object) -> None:
    with pytest.raises(InvalidArgument) as error:
        validate_grace_period(seconds)
    assert error.value.code == "invalid_grace_period"


def test_max_grace_is_seven_days() -> None:
    assert MAX_GRACE_PERIOD_SECONDS == 604_800


def test_roll_with_zero_grace_stops_the_old_key_at_once() -> None:
    expiry = rolled_key_expiry(now=NOW, grace_period_seconds=0, current_expires_at=None)
    assert expiry == NOW
    assert evaluate_status(revoked_at=None, expires_at=expiry, now=NOW) is KeyStatus.EXPIRED


def test_roll_with_grace_keeps_old_key_until_grace_end() -> None:
    expiry = rolled_key_expiry(now=NOW, grace_period_seconds=3600, current_expires_at=None)
    assert expiry == NOW + timedelta(hours=1)
    old = facts(expires_at=expiry)
    assert old.status_at(NOW + timedelta(minutes=59)) is KeyStatus.VALID
    assert old.status_at(NOW + timedelta(hours=1)) is KeyStatus.EXPIRED


def test_roll_never_extends_an_earlier_expiry() -> None:
    soon = NOW + timedelta(minutes=5)
    assert rolled_key_expiry(now=NOW, grace_period_seconds=86_400, current_expires_at=soon) == soon
    later = NOW + timedelta(days=30)
    assert rolled_key_expiry(now=NOW, grace_period_seconds=60, current_expires_at=later) == NOW + timedelta(
        seconds=60
    )


def test_roll_refuses_bad_grace() -> None:
    with pytest.raises(InvalidArgument) as error:
        rolled_key_expiry(now=NOW, grace_period_seconds=MAX_GRACE_PERIOD_SECONDS + 1, current_expires_at=None)
    assert error.value.code == "invalid_grace_period"
