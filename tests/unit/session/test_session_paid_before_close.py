"""`paid_before_expiry` means the money was paid while the session was still open: before it actually closed,
which is the earlier of its `expires_at` and the moment it was expired (`closed_at`). A merchant who expires a
session early closes it then; money paid after that is `paid_after_expiry`, however far `expires_at` is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from paygate_runtime.money import Money
from session_service.domain.modes import Mode
from session_service.domain.payment_events import (
    ApplyOutcome,
    EventKind,
    Note,
    PaymentEvent,
    QuarantineReason,
    SessionSnapshot,
    decide,
)
from session_service.domain.states import SessionStatus

PRICE = Money(999, "EUR", 2)
EXPIRES = datetime(2026, 12, 8, 12, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def _expired(closed_at: datetime | None, expires_at: datetime | None = EXPIRES) -> SessionSnapshot:
    return SessionSnapshot(
        SessionStatus.EXPIRED, Mode.TEST, PRICE, expires_at=expires_at, provider="stripe", closed_at=closed_at
    )


def _paid_at(at: datetime) -> PaymentEvent:
    return PaymentEvent(EventKind.SUCCEEDED, "pi_1", at, amount=PRICE, mode=Mode.TEST, provider="stripe")


def test_money_after_the_merchant_expired_the_session_early_is_after_expiry() -> None:
    merchant_closed = EXPIRES - timedelta(hours=23)
    decision = decide(_expired(merchant_closed), _paid_at(merchant_closed + SECOND))
    assert decision.outcome is ApplyOutcome.PAYMENT_ON_CLOSED_SESSION
    assert decision.quarantine is QuarantineReason.PAYMENT_ON_CLOSED_SESSION
    assert decision.note is Note.PAID_AFTER_EXPIRY


def test_money_paid_before_the_merchant_expired_the_session_is_before_expiry() -> None:
    merchant_closed = EXPIRES - timedelta(hours=23)
    assert (
        decide(_expired(merchant_closed), _paid_at(merchant_closed - SECOND)).note is Note.PAID_BEFORE_EXPIRY
    )
    assert decide(_expired(merchant_closed), _paid_at(merchant_closed)).note is Note.PAID_BEFORE_EXPIRY


def test_the_sweeper_closes_after_expires_at_so_expires_at_still_decides() -> None:
    swept = EXPIRES + timedelta(minutes=5)
    assert decide(_expired(swept), _paid_at(EXPIRES)).note is Note.PAID_BEFORE_EXPIRY
    assert decide(_expired(swept), _paid_at(EXPIRES + SECOND)).note is Note.PAID_AFTER_EXPIRY


def test_without_a_closed_at_expires_at_decides() -> None:
    assert decide(_expired(None), _paid_at(EXPIRES)).note is Note.PAID_BEFORE_EXPIRY
    assert decide(_expired(None), _paid_at(EXPIRES + SECOND)).note is Note.PAID_AFTER_EXPIRY
    assert decide(_expired(None, expires_at=None), _paid_at(EXPIRES)).note is Note.PAID_AFTER_EXPIRY


_offsets = st.integers(min_value=-10 * 86400, max_value=10 * 86400).map(lambda s: timedelta(seconds=s))


@given(closed=st.none() | _offsets, paid=_offsets, has_expiry=st.booleans())
def test_in_time_means_before_the_session_actually_closed(
    closed: timedelta | None, paid: timedelta, has_expiry: bool
) -> None:
    expires_at = EXPIRES if has_expiry else None
    closed_at = None if closed is None else EXPIRES + closed
    occurred_at = EXPIRES + paid
    ends = [t for t in (expires_at, closed_at) if t is not None]
    in_time = bool(ends) and occurred_at <= min(ends)
    decision = decide(_expired(closed_at, expires_at), _paid_at(occurred_at))
    assert decision.outcome is ApplyOutcome.PAYMENT_ON_CLOSED_SESSION
    assert decision.note is (Note.PAID_BEFORE_EXPIRY if in_time else Note.PAID_AFTER_EXPIRY)
