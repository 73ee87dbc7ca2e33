"""Lifecycle of merchant secret keys (sk_test_/sk_live_): status, and the rules of rolling and revoking.

As for customer keys, status is computed from facts (revoked_at, expires_at) and `now`, never stored, so
the end of a roll's grace period takes effect the instant it passes without anybody writing a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from keys_service.domain.api_keys import KeyMode
from keys_service.domain.key_status import rolled_key_expiry
from paygate_runtime.errors import FailedPrecondition

LAST4_CHARS = 4


class MerchantKeyStatus(StrEnum):
    ACTIVE = "active"  # works, no end set
    EXPIRING = "expiring"  # works until expires_at (a rolled key in its grace period)
    REVOKED = "revoked"
    EXPIRED = "expired"

    @property
    def works(self) -> bool:
        return self in (MerchantKeyStatus.ACTIVE, MerchantKeyStatus.EXPIRING)


@dataclass(frozen=True, slots=True)
class MerchantKeyFacts:
    """A stored merchant secret key without its hash."""

    id: str
    merchant_id: str
    mode: KeyMode
    prefix: str
    last4: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    rolled_from_id: str | None

    def status_at(self, now: datetime) -> MerchantKeyStatus:
        return merchant_key_status(revoked_at=self.revoked_at, expires_at=self.expires_at, now=now)


def merchant_key_status(
    *, revoked_at: datetime | None, expires_at: datetime | None, now: datetime
) -> MerchantKeyStatus:
    """REVOKED beats EXPIRED beats EXPIRING beats ACTIVE; a key is expired from the instant `expires_at`.

    Any revocation counts whatever its timestamp: another replica's clock may stamp it in our future."""
    if revoked_at is not None:
        return MerchantKeyStatus.REVOKED
    if expires_at is not None:
        return MerchantKeyStatus.EXPIRED if now >= expires_at else MerchantKeyStatus.EXPIRING
    return MerchantKeyStatus.ACTIVE


def last4(secret: str) -> str:
    return secret[-LAST4_CHARS:]


def check_revocable(target: MerchantKeyFacts, others_of_mode: list[MerchantKeyFacts], now: datetime) -> bool:
    """Whether revoking `target` changes anything (False: already revoked, an idempotent no-op).

    Refuses (FAILED_PRECONDITION `last_key`) to revoke the mode's last ACTIVE key: the merchant would be
    locked out of that mode for good, since only a working key of the mode can create another over the API.
    An expiring key (in a roll's grace period) does not count as a way back in: it is about to stop."""
    status = target.status_at(now)
    if status is MerchantKeyStatus.REVOKED:
        return False
    if status is MerchantKeyStatus.ACTIVE and not any(
        other.id != target.id and other.status_at(now) is MerchantKeyStatus.ACTIVE for other in others_of_mode
    ):
        raise FailedPrecondition(
            "last_key",
            f"this is the last active {target.mode.value} secret key; create or roll another before revoking it",
        )
    return True


def roll_expiry(target: MerchantKeyFacts, *, now: datetime, grace_period_seconds: int) -> datetime:
    """The rolled key's new expires_at: now + grace (0..7 days), never later than it already was.

    A revoked or expired key cannot be rolled: there is nothing left to hand over (409 key_revoked /
    key_expired). Grace 0 makes expires_at == now, which `merchant_key_status` already calls expired."""
    status = target.status_at(now)
    if status is MerchantKeyStatus.REVOKED:
        raise FailedPrecondition("key_revoked", "a revoked key cannot be rolled")
    if status is MerchantKeyStatus.EXPIRED:
        raise FailedPrecondition("key_expired", "an expired key cannot be rolled")
    return rolled_key_expiry(
        now=now, grace_period_seconds=grace_period_seconds, current_expires_at=target.expires_at
    )
