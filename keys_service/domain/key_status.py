"""Status of a stored API key at a given time, and the rules of rolling a key.

Status is always computed from facts (revoked_at, expires_at) and `now`, never stored: an expiry then
takes effect the instant it passes, on every replica and in every cache, without anybody writing a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from keys_service.domain.api_keys import KeyMode
from keys_service.domain.key_permissions import ALL_SCOPES, Block, ip_allowed
from paygate_runtime.errors import InvalidArgument

MAX_GRACE_PERIOD_SECONDS = 7 * 24 * 3600


class KeyStatus(StrEnum):
    VALID = "VALID"
    NOT_FOUND = "NOT_FOUND"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"
    # Contract §6a, §8: an open dispute on the key's session suspends it (SetSessionKeyAccess).
    SUSPENDED = "SUSPENDED"
    IP_NOT_ALLOWED = "IP_NOT_ALLOWED"


@dataclass(frozen=True, slots=True)
class KeyFacts:
    """What a verification needs to know about a stored customer key (no secret, no hash)."""

    key_id: str
    merchant_id: str
    session_id: str
    mode: KeyMode
    expires_at: datetime | None
    revoked_at: datetime | None
    scopes: tuple[str, ...] = ALL_SCOPES
    # Compiled once when the facts are read (and then cached), so a verification never re-parses CIDRs.
    ip_allowlist: tuple[Block, ...] = ()
    # Set while a dispute on the key's session is open (contract §8).
    suspended_at: datetime | None = None

    def status_at(self, now: datetime) -> KeyStatus:
        return evaluate_status(
            revoked_at=self.revoked_at, expires_at=self.expires_at, now=now, suspended_at=self.suspended_at
        )


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The answer of VerifyKey. Ids are empty for NOT_FOUND."""

    status: KeyStatus
    key_id: str = ""
    merchant_id: str = ""
    session_id: str = ""
    mode: KeyMode | None = None
    scopes: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return self.status is KeyStatus.VALID


NOT_FOUND_RESULT = VerifyResult(KeyStatus.NOT_FOUND)


def evaluate_status(
    *,
    revoked_at: datetime | None,
    expires_at: datetime | None,
    now: datetime,
    suspended_at: datetime | None = None,
) -> KeyStatus:
    """REVOKED beats EXPIRED beats SUSPENDED beats VALID (contract §6a). A key is expired from the instant
    `expires_at` itself; a suspended key is suspended whatever the time its suspension was stamped.

    Any revocation counts regardless of its timestamp: a replica whose clock runs ahead of ours may stamp
    revoked_at slightly in our future, and "revoked at once" must not wait for our clock to catch up.
    """
    if revoked_at is not None:
        return KeyStatus.REVOKED
    if expires_at is not None and now >= expires_at:
        return KeyStatus.EXPIRED
    if suspended_at is not None:
        return KeyStatus.SUSPENDED
    return KeyStatus.VALID


def verify_result(
    facts: KeyFacts | None, now: datetime, merchant_scope: str | None = None, ip: str = ""
) -> VerifyResult:
    """The VerifyKey answer for a looked-up key. Another merchant's key is NOT_FOUND, not REVOKED etc.,
    so a scoped caller learns nothing about keys that are not theirs.

    Precedence (contract §6a): NOT_FOUND, REVOKED, EXPIRED, SUSPENDED, IP_NOT_ALLOWED, else VALID. The IP is
    checked only for an otherwise valid key, and a key with an allow-list fails closed without an IP."""
    if facts is None or (merchant_scope and facts.merchant_id != merchant_scope):
        return NOT_FOUND_RESULT
    status = facts.status_at(now)
    if status is KeyStatus.VALID and facts.ip_allowlist and not ip_allowed(facts.ip_allowlist, ip):
        status = KeyStatus.IP_NOT_ALLOWED
    return VerifyResult(
        status=status,
        key_id=facts.key_id,
        merchant_id=facts.merchant_id,
        session_id=facts.session_id,
        mode=facts.mode,
        scopes=facts.scopes,
    )


def validate_grace_period(seconds: object) -> int:
    """Roll grace period: an integer number of seconds in 0..604800 (7 days)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise InvalidArgument(
            "invalid_grace_period",
            "grace period must be a whole number of seconds",
            field="grace_period_seconds",
        )
    if not 0 <= seconds <= MAX_GRACE_PERIOD_SECONDS:
        raise InvalidArgument(
            "invalid_grace_period",
            f"grace period must be between 0 and {MAX_GRACE_PERIOD_SECONDS} seconds",
            field="grace_period_seconds",
        )
    return seconds


def rolled_key_expiry(
    *, now: datetime, grace_period_seconds: int, current_expires_at: datetime | None
) -> datetime:
    """The old key's new expires_at after a roll: now + grace, but never later than it already was.

    With grace 0 the result is `now`, and `evaluate_status` treats `now >= expires_at` as EXPIRED, so the
    old secret stops at once. A roll never extends a key's life.
    """
    grace = validate_grace_period(grace_period_seconds)
    end = now + timedelta(seconds=grace)
    if current_expires_at is not None and current_expires_at < end:
        return current_expires_at
    return end
