"""What a normalised provider event does to a session: one pure decision function.

`decide(snapshot, event)` is called inside the storage transaction, after the row lock and after the
(provider, provider_event_id) duplicate check (so `duplicate` never comes from here). It depends only on the
stored state and the event, never on the clock: the sweeper owns time, so a redelivery decides the same way.

Choices a payments engineer should know about:
- State is judged before amount. Money for a `failed` or `expired` session, or a second payment (another
  provider reference) for a `paid` one, is `payment_on_closed_session` whatever its amount.
- A payment that happened before the session closed but was reported after it was expired is still
  quarantined (`payment_on_closed_session`), never auto-applied: the merchant may already have released what
  was sold. The note says `paid_before_expiry` so that `accepted` is an easy call; accepting it is the one
  override (`accept_late_payment`). The session closed at the earlier of its `expires_at` and the moment it
  was expired (`closed_at`): a merchant who expires a session early closes it then, so money paid after that
  is `paid_after_expiry` however far `expires_at` still was (the sweeper expires only after `expires_at`).
- A `created` session past its `expires_at` that the sweeper has not reached yet is still `created`: money
  arriving then is applied. The stored state decides, not the wall clock.
- Partial payments are never summed. Each payment has its own provider reference and is judged alone; a
  short one is quarantined as `amount_mismatch` for the merchant to refund or settle.
- One payment's money is quarantined once. A provider reports one payment under several event ids (One.com's
  webhook and reconciliation's read of its API; Stripe's `checkout.session.completed` and
  `payment_intent.succeeded`), and a session that quarantined money stays open, so the same payment comes
  back. Money received (`succeeded`) whose payment (provider + provider reference) already has an entry on
  this session is `already_quarantined`: a recorded no-op, whatever the event id and whatever the session's
  state by then (short money quarantined while the session was open is still the same money once it has
  expired or been paid by another payment). A second entry would be refunded a second time. The entry is
  the payment's, so `holds_payment` marks it and the storage layer keeps one such entry per payment.
- `pending` on `pending` is `applied` without a move or history row (Stripe reports one payment as both
  `checkout.session.completed`/unpaid and `payment_intent.processing`).
- `expired` on `pending` is `ignored_terminal` with note `pending_never_expires`: money is in flight.
- `attempt_failed` is `applied` with a history row whose from and to are equal; it never ends a session.
- `refunded` and `disputed` events are decided by `domain/refunds.py` for a session that was paid (paid or
  refunded); for any other session they come here and are `recorded_for_review` (quarantined): never moved.
- Binding comes before everything else, and mode before provider: an event applies only to a session of its
  own mode and its own provider. An event whose mode differs from the session's is `mode_mismatch` whatever
  its kind (test and live are separate worlds); an event of another provider is `provider_mismatch`. Both
  are quarantined and never move the session, so a signed One.com event cannot pay a Stripe session.
- A session created without a provider is a `card` session: either card rail (stripe, onecom) may pay it,
  and the first event that the session records (a move, or an attempt in its history) binds it to that
  rail. From then on the other rail is `provider_mismatch`. web3 never pays a card session, nor a card
  rail a web3 one. An event that is only quarantined or ignored binds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from paygate_runtime.errors import FailedPrecondition, InvalidArgument
from paygate_runtime.money import Money

from .modes import Mode
from .states import SessionStatus, can_move, can_override


class EventKind(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ATTEMPT_FAILED = "attempt_failed"
    EXPIRED = "expired"
    REFUNDED = "refunded"
    DISPUTED = "disputed"


# The provider of a session created without one, until its first payment event binds it to a card rail.
CARD = "card"
CARD_RAILS = frozenset({"stripe", "onecom"})


class ApplyOutcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # decided by the storage layer, never by `decide`
    ALREADY_PAID = "already_paid"
    IGNORED_TERMINAL = "ignored_terminal"
    AMOUNT_MISMATCH = "amount_mismatch"
    OVERPAID = "overpaid"
    PAYMENT_ON_CLOSED_SESSION = "payment_on_closed_session"
    MODE_MISMATCH = "mode_mismatch"
    RECORDED_FOR_REVIEW = "recorded_for_review"
    PROVIDER_MISMATCH = "provider_mismatch"  # in proto order (APPLY_OUTCOME_PROVIDER_MISMATCH = 10)
    ALREADY_QUARANTINED = "already_quarantined"  # APPLY_OUTCOME_ALREADY_QUARANTINED = 11


class QuarantineReason(StrEnum):
    """QuarantineEntry.reason; the finer detail is in the Decision's note."""

    AMOUNT_MISMATCH = "amount_mismatch"
    OVERPAID = "overpaid"
    PAYMENT_ON_CLOSED_SESSION = "payment_on_closed_session"
    MODE_MISMATCH = "mode_mismatch"
    PROVIDER_MISMATCH = "provider_mismatch"
    REFUNDED = "refunded"
    DISPUTED = "disputed"
    # A reorg deeper than the confirmations took money back from a paid web3 session (opened by the alert).
    REORGED_AFTER_PAID = "reorged_after_paid"
    # A provider refund in another currency than the session's: it cannot be credited (session migration 0170).
    REFUND_CURRENCY_MISMATCH = "refund_currency_mismatch"
    # A refund the provider reported succeeded has failed: the money did not go back (its credit note stands).
    REFUND_FAILED = "refund_failed"
    # A provider reported more refunded than the price: the price is credited, the surplus is shown here (0190).
    REFUND_EXCEEDS_PRICE = "refund_exceeds_price"


class QuarantineStatus(StrEnum):
    OPEN = "open"
    REFUNDED = "refunded"
    DISMISSED = "dismissed"
    ACCEPTED = "accepted"


class QuarantineDecision(StrEnum):
    REFUNDED = "refunded"
    DISMISSED = "dismissed"
    ACCEPTED = "accepted"


class Note(StrEnum):
    """Short machine-readable note kept with the outcome and in the history row."""

    PENDING = "pending"
    ALREADY_PENDING = "already_pending"
    PAID = "paid"
    OVERPAID = "overpaid"
    FAILED = "failed"
    ATTEMPT_FAILED = "attempt_failed"
    EXPIRED = "expired"
    PENDING_NEVER_EXPIRES = "pending_never_expires"
    IGNORED_ON_CLOSED_SESSION = "ignored_on_closed_session"
    SAME_PAYMENT = "same_payment"
    SECOND_PAYMENT = "second_payment"
    PAYMENT_ON_FAILED_SESSION = "payment_on_failed_session"
    PAID_BEFORE_EXPIRY = "paid_before_expiry"
    PAID_AFTER_EXPIRY = "paid_after_expiry"
    UNDERPAID = "underpaid"
    CURRENCY_MISMATCH = "currency_mismatch"
    MODE_MISMATCH = "mode_mismatch"
    PROVIDER_MISMATCH = "provider_mismatch"
    REFUNDED = "refunded"
    DISPUTED = "disputed"
    LATE_PAYMENT_ACCEPTED = "late_payment_accepted"
    ALREADY_QUARANTINED = "already_quarantined"


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    """The locked session row, as much of it as a decision needs."""

    status: SessionStatus
    mode: Mode
    amount: Money
    # Provider reference of the payment that paid the session; set exactly when status is paid.
    paid_reference: str | None = None
    expires_at: datetime | None = None
    # When the session reached paid, failed or expired (the row's `closed_at`); None while it is open.
    closed_at: datetime | None = None
    # "stripe", "onecom", "web3", or CARD while no card rail has claimed it. Empty only in tests of the rest
    # of the decision (then any provider matches).
    provider: str = ""
    # The payments whose money this session already holds in quarantine, as (provider, provider_reference):
    # the keys of its entries that `holds_payment`.
    quarantined_payments: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    """A verified provider event, normalised by the gateway."""

    kind: EventKind
    provider_reference: str | None
    occurred_at: datetime
    amount: Money | None = None
    # Stripe's livemode, or for One.com and web3 the mode whose secret verified the event; None when unknown.
    mode: Mode | None = None
    # "stripe", "onecom" or "web3". Empty only in tests of the rest of the decision.
    provider: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """What to write. `new_status` None means no move; `history` says whether to write a history row
    (always for a move; also for attempt_failed, whose row has from == to)."""

    outcome: ApplyOutcome
    note: Note
    new_status: SessionStatus | None = None
    quarantine: QuarantineReason | None = None
    surplus: Money | None = None
    history: bool = False
    # The reference to store as the session's paid_reference; set exactly when new_status is paid.
    paid_reference: str | None = None
    # The card rail a `card` session is bound to by this event (only for a decision that records something).
    bind_provider: str | None = None
    # The quarantine entry holds one provider payment's money (an event that reports money received), so it
    # is the one entry of that payment (see `payment_key`).
    holds_payment: bool = False

    def __post_init__(self) -> None:
        if self.new_status is not None and not self.history:
            raise ValueError("every move writes a history row")
        if (self.new_status is SessionStatus.PAID) != (self.paid_reference is not None):
            raise ValueError("paid_reference is set exactly when the session becomes paid")
        if self.bind_provider is not None and not self.history:
            raise ValueError("only an event the session records binds it to a rail")
        if self.holds_payment and self.quarantine is None:
            raise ValueError("only a quarantine entry holds a payment")


_CLOSED_FOR_MONEY = {
    SessionStatus.FAILED: Note.PAYMENT_ON_FAILED_SESSION,
    SessionStatus.EXPIRED: Note.PAID_AFTER_EXPIRY,
    SessionStatus.PAID: Note.SECOND_PAYMENT,
    # Money arriving for a session whose payment was refunded is another payment: the merchant must see it.
    SessionStatus.REFUNDED: Note.SECOND_PAYMENT,
}
# Statuses that keep the reference of the payment that paid them.
_PAID_BY_REFERENCE = frozenset({SessionStatus.PAID, SessionStatus.REFUNDED})


def decide(snapshot: SessionSnapshot, event: PaymentEvent) -> Decision:
    """Decide the outcome of one new event on one locked session. Pure and deterministic.

    Raises InvalidArgument `missing_amount` / `missing_provider_reference` for a `succeeded` event that
    lacks them: without an amount nothing can be checked, and without a reference a re-report of the same
    payment cannot be told from a double charge.
    """
    if event.kind is EventKind.SUCCEEDED:
        if event.amount is None:
            raise InvalidArgument("missing_amount", "a succeeded event must carry an amount", field="amount")
        if not event.provider_reference:
            raise InvalidArgument(
                "missing_provider_reference",
                "a succeeded event must carry the provider's payment reference",
                field="provider_reference",
            )
    binding = check_binding(snapshot, event)
    decision = binding if binding is not None else _decide_bound(snapshot, event)
    if decision.quarantine is not None and (key := payment_key(event)) is not None:
        if key in snapshot.quarantined_payments:
            return Decision(ApplyOutcome.ALREADY_QUARANTINED, Note.ALREADY_QUARANTINED)
        decision = replace(decision, holds_payment=True)
    if binding is None and snapshot.provider == CARD and decision.history and event.provider in CARD_RAILS:
        return replace(decision, bind_provider=event.provider)
    return decision


def payment_key(event: PaymentEvent) -> tuple[str, str] | None:
    """The provider payment whose money an event reports as received, as (provider, provider_reference); None
    for an event that reports no money received (pending, failed, refunds and disputes: those entries are
    about the event, not about holding a payment's money)."""
    if event.kind is not EventKind.SUCCEEDED or not event.provider_reference:
        return None
    return (event.provider, event.provider_reference)


def check_binding(snapshot: SessionSnapshot, event: PaymentEvent) -> Decision | None:
    """The quarantine decision for an event of another mode or another provider, or None when the event
    belongs to this session. Mode first: a live event must never touch a test session whatever its provider."""
    if event.mode is not None and event.mode is not snapshot.mode:
        return Decision(
            ApplyOutcome.MODE_MISMATCH, Note.MODE_MISMATCH, quarantine=QuarantineReason.MODE_MISMATCH
        )
    if not provider_may_pay(snapshot.provider, event.provider):
        return Decision(
            ApplyOutcome.PROVIDER_MISMATCH,
            Note.PROVIDER_MISMATCH,
            quarantine=QuarantineReason.PROVIDER_MISMATCH,
        )
    return None


def provider_may_pay(session_provider: str, event_provider: str) -> bool:
    """Whether an event of `event_provider` belongs to a session of `session_provider` (§6a)."""
    if not session_provider or not event_provider:
        return True  # a decision tested without providers
    if session_provider == CARD:
        return event_provider in CARD_RAILS
    return session_provider == event_provider


def _decide_bound(snapshot: SessionSnapshot, event: PaymentEvent) -> Decision:
    if event.kind is EventKind.REFUNDED:
        return Decision(ApplyOutcome.RECORDED_FOR_REVIEW, Note.REFUNDED, quarantine=QuarantineReason.REFUNDED)
    if event.kind is EventKind.DISPUTED:
        return Decision(ApplyOutcome.RECORDED_FOR_REVIEW, Note.DISPUTED, quarantine=QuarantineReason.DISPUTED)
    if event.kind is EventKind.SUCCEEDED:
        return _decide_money(snapshot, event)
    return _decide_news(snapshot.status, event.kind)


def _decide_money(snapshot: SessionSnapshot, event: PaymentEvent) -> Decision:
    assert event.amount is not None and event.provider_reference
    status = snapshot.status
    if status in _PAID_BY_REFERENCE and event.provider_reference == snapshot.paid_reference:
        return Decision(ApplyOutcome.ALREADY_PAID, Note.SAME_PAYMENT)
    if status in _CLOSED_FOR_MONEY:
        note = _CLOSED_FOR_MONEY[status]
        if status is SessionStatus.EXPIRED and _paid_in_time(snapshot, event):
            note = Note.PAID_BEFORE_EXPIRY
        return Decision(
            ApplyOutcome.PAYMENT_ON_CLOSED_SESSION,
            note,
            quarantine=QuarantineReason.PAYMENT_ON_CLOSED_SESSION,
        )
    if not event.amount.same_currency(snapshot.amount):
        return Decision(
            ApplyOutcome.AMOUNT_MISMATCH, Note.CURRENCY_MISMATCH, quarantine=QuarantineReason.AMOUNT_MISMATCH
        )
    comparison = event.amount.compare(snapshot.amount)
    if comparison < 0:
        return Decision(
            ApplyOutcome.AMOUNT_MISMATCH, Note.UNDERPAID, quarantine=QuarantineReason.AMOUNT_MISMATCH
        )
    assert can_move(status, SessionStatus.PAID)
    if comparison == 0:
        return Decision(
            ApplyOutcome.APPLIED,
            Note.PAID,
            new_status=SessionStatus.PAID,
            history=True,
            paid_reference=event.provider_reference,
        )
    return Decision(
        ApplyOutcome.OVERPAID,
        Note.OVERPAID,
        new_status=SessionStatus.PAID,
        quarantine=QuarantineReason.OVERPAID,
        surplus=_surplus(event.amount, snapshot.amount),
        history=True,
        paid_reference=event.provider_reference,
    )


def _surplus(received: Money, price: Money) -> Money:
    """received - price, in the session's own minor units whenever the value fits them."""
    surplus = received.minus(price)
    try:
        return surplus.rescaled(price.exponent)
    except ValueError:
        return surplus


def _paid_in_time(snapshot: SessionSnapshot, event: PaymentEvent) -> bool:
    """Whether the money was paid while the session was open: before the earlier of `expires_at` and the
    moment it was expired (a merchant's expire closes it before `expires_at`; the sweeper's only after)."""
    ends = [at for at in (snapshot.expires_at, snapshot.closed_at) if at is not None]
    return bool(ends) and event.occurred_at <= min(ends)


def _decide_news(status: SessionStatus, kind: EventKind) -> Decision:
    """Events that carry no money: pending, failed, attempt_failed, expired."""
    if kind is EventKind.PENDING and status is SessionStatus.PENDING:
        return Decision(ApplyOutcome.APPLIED, Note.ALREADY_PENDING)
    if kind is EventKind.EXPIRED and status is SessionStatus.PENDING:
        return Decision(ApplyOutcome.IGNORED_TERMINAL, Note.PENDING_NEVER_EXPIRES)
    if kind is EventKind.ATTEMPT_FAILED:
        if status in (SessionStatus.CREATED, SessionStatus.PENDING):
            return Decision(ApplyOutcome.APPLIED, Note.ATTEMPT_FAILED, history=True)
        return Decision(ApplyOutcome.IGNORED_TERMINAL, Note.IGNORED_ON_CLOSED_SESSION)
    target, note = _NEWS_TARGET[kind]
    if can_move(status, target):
        return Decision(ApplyOutcome.APPLIED, note, new_status=target, history=True)
    return Decision(ApplyOutcome.IGNORED_TERMINAL, Note.IGNORED_ON_CLOSED_SESSION)


_NEWS_TARGET = {
    EventKind.PENDING: (SessionStatus.PENDING, Note.PENDING),
    EventKind.FAILED: (SessionStatus.FAILED, Note.FAILED),
    EventKind.EXPIRED: (SessionStatus.EXPIRED, Note.EXPIRED),
}


def accept_late_payment(
    snapshot: SessionSnapshot,
    reason: QuarantineReason,
    payment: Money,
    provider_reference: str,
    provider: str = "",
) -> Decision:
    """The one audited override: a merchant accepts a late payment quarantined on an expired session.

    Moves expired -> paid only. Refuses with FailedPrecondition `session_not_expired` when the session is in
    any other state (a failed session's money must be refunded; a paid session's second payment is a
    double charge), `not_a_late_payment` for any other quarantine reason, and `late_payment_amount_mismatch`
    when the payment is in another currency or short: accepting it would mark a session paid that was not.
    """
    if snapshot.status is not SessionStatus.EXPIRED:
        raise FailedPrecondition(
            "session_not_expired",
            f"only a late payment on an expired session can be accepted, this session is {snapshot.status}",
            field="decision",
        )
    if reason is not QuarantineReason.PAYMENT_ON_CLOSED_SESSION:
        raise FailedPrecondition(
            "not_a_late_payment", f"a {reason} entry cannot be accepted as a late payment", field="decision"
        )
    if not provider_reference:
        raise InvalidArgument(
            "missing_provider_reference", "the payment has no reference", field="provider_reference"
        )
    if not payment.same_currency(snapshot.amount) or payment.compare(snapshot.amount) < 0:
        raise FailedPrecondition(
            "late_payment_amount_mismatch",
            f"the late payment of {payment.display()} does not cover {snapshot.amount.display()}",
            field="decision",
        )
    assert can_override(snapshot.status, SessionStatus.PAID)
    surplus = _surplus(payment, snapshot.amount) if payment.compare(snapshot.amount) > 0 else None
    return Decision(
        ApplyOutcome.APPLIED,
        Note.LATE_PAYMENT_ACCEPTED,
        new_status=SessionStatus.PAID,
        surplus=surplus,
        history=True,
        paid_reference=provider_reference,
        # A card session paid late by one rail is bound to it, as it would have been on time.
        bind_provider=provider if snapshot.provider == CARD and provider in CARD_RAILS else None,
    )


def resolve_quarantine(current: QuarantineStatus, decision: QuarantineDecision) -> QuarantineStatus | None:
    """The entry's new status, or None when the same decision was already recorded (an idempotent replay).

    A different decision on a resolved entry is FailedPrecondition `quarantine_already_resolved`: a merchant
    who marked money refunded must not later accept it (or the other way round) by a stray retry.
    """
    resolved = QuarantineStatus(decision.value)
    if current is QuarantineStatus.OPEN:
        return resolved
    if current is resolved:
        return None
    raise FailedPrecondition(
        "quarantine_already_resolved", f"the entry is already {current}", field="decision"
    )


def parse_quarantine_decision(raw: object, *, field: str = "decision") -> QuarantineDecision:
    """Parse the merchant's decision from a request body; InvalidArgument `invalid_<field>` otherwise."""
    if isinstance(raw, str):
        try:
            return QuarantineDecision(raw)
        except ValueError:
            pass
    allowed = ", ".join(decision.value for decision in QuarantineDecision)
    raise InvalidArgument(f"invalid_{field}", f"{field} must be one of {allowed}", field=field)
