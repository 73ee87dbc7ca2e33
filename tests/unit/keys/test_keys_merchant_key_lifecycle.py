"""The pure rules of merchant secret keys: status, the last-active-key rule and rolling."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keys_service.domain.api_keys import KeyMode
from keys_service.domain.merchant_keys import (
    MerchantKeyFacts,
    MerchantKeyStatus,
    check_revocable,
    merchant_key_status,
    roll_expiry,
)
from paygate_runtime.audit_actor import clean_actor
from paygate_runtime.errors import FailedPrecondition, InvalidArgument

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def _key(
    key_id: str = "k1", *, expires_at: datetime | None = None, revoked_at: datetime | None = None
) -> MerchantKeyFacts:
    return MerchantKeyFacts(
        id=key_id,
        merchant_id="m1",
        mode=KeyMode.TEST,
        prefix="sk_test_",
        last4="abcd",
        created_at=NOW - timedelta(days=1),
        last_used_at=None,
        expires_at=expires_at,
        revoked_at=revoked_at,
        rolled_from_id=None,
    )


def test_status_precedence_and_the_instant_of_expiry() -> None:
    assert merchant_key_status(revoked_at=None, expires_at=None, now=NOW) is MerchantKeyStatus.ACTIVE
    assert (
        merchant_key_status(revoked_at=None, expires_at=NOW + SECOND, now=NOW) is MerchantKeyStatus.EXPIRING
    )
    assert merchant_key_status(revoked_at=None, expires_at=NOW, now=NOW) is MerchantKeyStatus.EXPIRED
    # A revocation stamped in our future (another replica's clock) counts at once, and beats expiry.
    assert merchant_key_status(revoked_at=NOW + SECOND, expires_at=NOW, now=NOW) is MerchantKeyStatus.REVOKED
    assert MerchantKeyStatus.EXPIRING.works and not MerchantKeyStatus.EXPIRED.works


def test_the_last_active_key_cannot_be_revoked() -> None:
    only = _key()
    with pytest.raises(FailedPrecondition) as caught:
        check_revocable(only, [only], NOW)
    assert caught.value.code == "last_key"
    # An expiring key beside it is no way back in.
    with pytest.raises(FailedPrecondition):
        check_revocable(only, [only, _key("k2", expires_at=NOW + timedelta(hours=1))], NOW)
    assert check_revocable(only, [only, _key("k2")], NOW) is True
    # An expiring key may always go; a revoked one is an idempotent no-op.
    assert check_revocable(_key("k2", expires_at=NOW + SECOND), [only], NOW) is True
    assert check_revocable(_key("k3", revoked_at=NOW), [], NOW) is False


def test_roll_expiry() -> None:
    assert roll_expiry(_key(), now=NOW, grace_period_seconds=0) == NOW
    assert roll_expiry(_key(), now=NOW, grace_period_seconds=600) == NOW + 600 * SECOND
    # Never lengthens a key's life.
    assert (
        roll_expiry(_key(expires_at=NOW + 10 * SECOND), now=NOW, grace_period_seconds=600)
        == NOW + 10 * SECOND
    )
    for dead, code in ((_key(revoked_at=NOW), "key_revoked"), (_key(expires_at=NOW), "key_expired")):
        with pytest.raises(FailedPrecondition) as caught:
            roll_expiry(dead, now=NOW, grace_period_seconds=0)
        assert caught.value.code == code
    for bad in (-1, 604801, 2**64):
        with pytest.raises(InvalidArgument):
            roll_expiry(_key(), now=NOW, grace_period_seconds=bad)


@given(
    grace=st.integers(min_value=0, max_value=604800),
    current=st.one_of(st.none(), st.integers(min_value=1, max_value=10**7)),
)
def test_a_rolled_key_ends_within_its_grace_and_never_later_than_before(
    grace: int, current: int | None
) -> None:
    key = _key(expires_at=None if current is None else NOW + current * SECOND)
    end = roll_expiry(key, now=NOW, grace_period_seconds=grace)
    assert NOW <= end <= NOW + grace * SECOND
    if key.expires_at is not None:
        assert end <= key.expires_at
    rolled = replace(key, expires_at=end)
    assert rolled.status_at(end) is MerchantKeyStatus.EXPIRED


def test_actor_is_bounded_and_printable() -> None:
    assert clean_actor("merchant_key:1\n\x00" + "x" * 500) == "merchant_key:1" + "x" * 184
