"""Refunds and disputes of a paid session (contract §8): pure rules, no I/O.

A session that was paid keeps a ledger of refunds. Each refund has an amount, a status and, once it has
succeeded, the amount it *credits*: that credited amount is exactly what its credit note says, so the credit
notes of a session add up to its `amount_refunded`, except the credit note of a refund that failed after it
succeeded (it stands, a legal document, and a `refund_failed` quarantine entry names it). The rules:

- The price is the ceiling: the credited total never exceeds the session's amount (a surplus of an overpaid
  session is quarantine money, not the invoice's). Where the provider reports the total it refunded for the
  payment (Stripe's `amount_refunded` on the charge), the credited total never exceeds that either: a refund
  that would go past it credits only what is left, possibly nothing.
- A provider can report more returned than was paid (a refund larger than the price, or refunds that add up
  past it): the price still caps the credit, the refund shows its full amount, and the money beyond the price
  is a surplus the merchant must see (quarantine `refund_exceeds_price`). Where the provider reports its total,
  the surplus is bounded by that total, as the credit is. The entries of a session add up to the highest
  surplus ever reported (a high-water mark): a report that adds nothing opens nothing, a larger surplus opens
  one entry for what it adds, and a surplus that shrinks (a refund failed since) opens nothing and takes no
  entry back (`Outcome.surplus_minor`, `Ledger.surplus_quarantined_minor`).
- A refund is one refund whoever reports it: it is matched by the provider's refund id, or by paygate's own
  refund id that the provider echoes back (Stripe refund metadata). A report never creates a second credit.
- Pending refunds reserve their amount: a merchant cannot ask for more than price - credited - reserved
  (`amount_too_large`). A failed or canceled refund releases its reservation and credits nothing.
- Statuses move forward only: pending -> succeeded | failed | canceled, and succeeded -> failed (Stripe reports
  a refund that succeeded and then failed: the money did not go back, so it stops crediting and the merchant
  is told; see `Outcome.failed_after_success`). Otherwise a settled refund never changes again (a late
  `pending` or a replayed report changes nothing). A refund that fails no longer counts in the provider's
  total either, so that total never explains it as money returned.
- The provider's total is a snapshot, dated by the provider's event (Stripe's `created`), and the newest one
  stands: Stripe delivers out of order, so a `charge.refunded` sent before a refund failed can arrive after
  the failure, still counting the failed money, and must not raise the total again. A total from a newer
  event replaces the stored one even when smaller (a failure paygate has not heard of yet); one from the same
  second can only raise it; an older one is recorded and changes nothing. A failure lowers the stored total
  only when that total was taken before the failure: a total taken after it (or carried by the same event)
  already leaves the failed refund out.
- When the credited total reaches the price the session moves `paid -> refunded` (the one writer does it).
- Disputes: `created` opens one and suspends the customer keys; `closed` won (or Stripe's `warning_closed`,
  an inquiry that ended without a chargeback) restores them; lost acts as a full refund of what is left of
  the price (a refund made before, during an inquiry, still counts: the loss never credits past the price).
  `funds_withdrawn`, `funds_reinstated` and `updated` are otherwise recorded only. A dispute's status moves one
  way: open -> won | lost. A closed dispute never reopens: a `created` (or another `closed`) of it arriving late
  is a recorded no-op, so the keys follow its final state.
- A dispute is an inquiry or a chargeback (`DisputeKind`). Stripe's inquiries (pre-dispute retrievals, status
  `warning_*`) withdraw no money and the charge stays refundable (`is_charge_refundable`): a merchant's refund
  is allowed and usually settles it. A chargeback (any other status) is refused (`dispute_open`): the network
  holds the money. An inquiry escalates on a later event of the same dispute with a non-warning status, or
  when its funds are withdrawn; a chargeback never becomes an inquiry again. Both kinds suspend the keys.
- Customer key access follows from the facts: revoked once the session is refunded, suspended while a
  dispute is open, else active.
- The credit notes add up to what went back (`credit_note_amount`): a refund's credit note first uses the credit
  already on paper that no standing refund accounts for (the note of a refund that failed after it succeeded),
  so refunding the customer again after a failure never credits the same money twice, and a later refund is
  credited in full by the standing note and its own together.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from paygate_runtime.errors import FailedPrecondition, InvalidArgument
from paygate_runtime.money import Money

from .states import SessionStatus, can_move


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


SETTLED = frozenset({RefundStatus.SUCCEEDED, RefundStatus.FAILED, RefundStatus.CANCELED})
# Settled without money going back: a failed or canceled refund releases what it reserved or credited.
GONE = frozenset({RefundStatus.FAILED, RefundStatus.CANCELED})


class RefundOrigin(StrEnum):
    # The merchant asked paygate, which asked the provider's API (settled by the provider's webhook).
    MERCHANT = "merchant"
    # The merchant made it outside paygate and recorded it here.
    OUTSIDE = "outside"
    # The provider reported a refund paygate had not heard of (made in the provider's dashboard).
    PROVIDER = "provider"
    # A lost dispute: the money went back through the card network.
    DISPUTE = "dispute"


class DisputeStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class DisputeAction(StrEnum):
    CREATED = "created"
    CLOSED = "closed"
    FUNDS_WITHDRAWN = "funds_withdrawn"
    FUNDS_REINSTATED = "funds_reinstated"
    # Stripe's charge.dispute.updated: the dispute's status changed (an inquiry escalating, evidence sent).
    UPDATED = "updated"


class DisputeKind(StrEnum):
    # A pre-dispute retrieval (Stripe `warning_*`): no money withdrawn, the charge still refundable.
    INQUIRY = "inquiry"
    # A formal dispute: the network holds the money; a lost one counts as a full refund.
    CHARGEBACK = "chargeback"


class KeyAccess(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


# Stripe's dispute statuses that end a dispute in the merchant's favour: won, an inquiry closed without a
# chargeback (warning_closed), and a dispute the network prevented (prevented).
_WON = frozenset({"won", "warning_closed", "prevented"})
# Stripe's statuses of an inquiry (warning_closed: one that ended without a chargeback).
_INQUIRY = frozenset({"warning_needs_response", "warning_under_review", "warning_closed"})


@dataclass(frozen=True, slots=True)
class Refund:
    id: uuid.UUID
    amount_minor: int
    status: RefundStatus
    origin: RefundOrigin
    credited_minor: int = 0
    provider_refund_id: str | None = None
    reason: str = ""
    # Why it failed, as the provider said (a short token, paygate_runtime.refund_failures); only a failed
    # refund has one, and it keeps the first one it failed with.
    failure_reason: str | None = None
    # The refund that stands for this one: paygate's own pending record canceled because the provider's webhook
    # had recorded the same refund first (`attach_provider_refund`). Only a canceled refund has one.
    replaced_by: uuid.UUID | None = None

    def __post_init__(self) -> None:
        if self.amount_minor <= 0:
            raise ValueError("a refund is for a positive amount")
        if self.failure_reason is not None and self.status is not RefundStatus.FAILED:
            raise ValueError("only a failed refund has a failure reason")
        if self.replaced_by is not None and self.status is not RefundStatus.CANCELED:
            raise ValueError("only a canceled refund is replaced by another")
        if not 0 <= self.credited_minor <= self.amount_minor:
            raise ValueError("a refund credits at most its amount")
        if self.credited_minor and self.status is not RefundStatus.SUCCEEDED:
            raise ValueError("only a succeeded refund credits anything")


@dataclass(frozen=True, slots=True)
class Ledger:
    """A session's money going back, as stored (the session row and its refunds)."""

    status: SessionStatus
    amount_minor: int  # the price: the most that can ever be credited
    refunds: tuple[Refund, ...] = ()
    # The provider's newest total refunded for this payment (None: never reported), and the time of the provider
    # event that reported it (None: not known, as for totals stored before the time was kept).
    provider_total_minor: int | None = None
    provider_total_as_of: datetime | None = None
    dispute_status: DisputeStatus | None = None
    dispute_id: str | None = None
    # Whether the dispute `dispute_id` is an inquiry or a chargeback (None: never told; an open dispute without
    # a kind is a chargeback, the side that never pays the customer twice).
    dispute_kind: DisputeKind | None = None
    # The refund surplus already shown to the merchant: the sum of the session's `refund_exceeds_price`
    # quarantine entries, whatever their status (see `refund_surplus_minor`).
    surplus_quarantined_minor: int = 0
    # The session's currency and exponent, to say amounts in the major units merchants write them in ("" when
    # not known: then in minor units).
    currency: str = ""
    exponent: int = 0

    @property
    def credited_minor(self) -> int:
        return sum(r.credited_minor for r in self.refunds)

    @property
    def reserved_minor(self) -> int:
        return sum(r.amount_minor for r in self.refunds if r.status is RefundStatus.PENDING)

    @property
    def refundable_minor(self) -> int:
        """What a merchant may still ask for: price - credited - pending."""
        return max(0, self.amount_minor - self.credited_minor - self.reserved_minor)

    @property
    def fully_refunded(self) -> bool:
        return self.credited_minor >= self.amount_minor

    def find(self, provider_refund_id: str | None, refund_id: uuid.UUID | None = None) -> Refund | None:
        for refund in self.refunds:
            if provider_refund_id and refund.provider_refund_id == provider_refund_id:
                return refund
        for refund in self.refunds:
            if refund_id is not None and refund.id == refund_id:
                return refund
        return None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a refund or dispute decision writes: the refunds to insert or update, the session's new facts,
    and whether the session moves paid -> refunded. `changed` False means a recorded no-op."""

    ledger: Ledger
    upserts: tuple[Refund, ...] = ()
    moves_to_refunded: bool = False
    note: str = ""
    changed: bool = True
    # Refunds of `upserts` that had succeeded and now failed: their money did not go back after all.
    failed_after_success: tuple[Refund, ...] = ()
    # Money returned beyond the price that no quarantine entry shows yet: open one entry for it
    # (`refund_exceeds_price`); already counted in `ledger.surplus_quarantined_minor`.
    surplus_minor: int = 0

    @property
    def key_access(self) -> KeyAccess:
        return key_access(self.ledger.status, self.ledger.dispute_status)


def credit_note_amount(credited_minor: int, *, covered_minor: int, on_paper_minor: int) -> int:
    """What a succeeded refund's credit note credits. `covered_minor` is what the session's other succeeded
    refunds credit whose credit note is settled (issued, or not needed); `on_paper_minor` what the credit notes
    already issued for its refunds credit, those of refunds that failed since included (a credit note is a legal
    document and stands). The credit on paper beyond what standing refunds account for is used first: with it,
    the notes add up to the money that went back, never more, never less."""
    if credited_minor < 0 or covered_minor < 0 or on_paper_minor < 0:
        raise ValueError("credited, covered and on-paper amounts are never negative")
    unused = max(0, on_paper_minor - covered_minor)
    return credited_minor - min(credited_minor, unused)


def refund_surplus_minor(ledger: Ledger) -> int:
    """What the provider says it returned beyond the price: the full amounts of the refunds that succeeded,
    bounded by the provider's total when it reports one (as the credit is), minus the price; never negative.
    Merchant requests cannot make one (they are capped at what is refundable): only provider reports do."""
    returned = sum(r.amount_minor for r in ledger.refunds if r.status is RefundStatus.SUCCEEDED)
    if ledger.provider_total_minor is not None:
        # The total is the provider's truth about the payment; what is credited is already returned.
        returned = min(returned, max(ledger.provider_total_minor, ledger.credited_minor))
    return max(0, returned - ledger.amount_minor)


def _new_surplus(ledger: Ledger) -> tuple[Ledger, int]:
    """The surplus no entry shows yet (above the highest one already quarantined), and the ledger counting it."""
    new = max(0, refund_surplus_minor(ledger) - ledger.surplus_quarantined_minor)
    return replace(ledger, surplus_quarantined_minor=ledger.surplus_quarantined_minor + new), new


def key_access(status: SessionStatus, dispute: DisputeStatus | None) -> KeyAccess:
    if status is SessionStatus.REFUNDED:
        return KeyAccess.REVOKED
    if dispute is DisputeStatus.OPEN:
        return KeyAccess.SUSPENDED
    return KeyAccess.ACTIVE


def require_refundable_session(status: SessionStatus) -> None:
    """A refund needs a session that was paid; FailedPrecondition names the state otherwise (409)."""
    if status is SessionStatus.REFUNDED:
        raise FailedPrecondition("session_refunded", "this session is already fully refunded", field="status")
    if status is not SessionStatus.PAID:
        raise FailedPrecondition(
            "session_not_paid", f"only a paid session can be refunded, this one is {status}", field="status"
        )


def request_refund(
    ledger: Ledger,
    amount_minor: int | None,
    *,
    refund_id: uuid.UUID,
    origin: RefundOrigin,
    provider_refund_id: str | None = None,
    reason: str = "",
) -> Outcome:
    """The merchant asks for `amount_minor` (None: all that is left). Through the provider's API the refund
    starts `pending` (the webhook settles it); recorded as made outside paygate it has succeeded already.

    InvalidArgument `invalid_amount` (not positive) or `amount_too_large` (more than is still refundable);
    FailedPrecondition `session_not_paid` / `session_refunded`, `dispute_open` while a formal dispute
    (chargeback) of the payment is open (an open inquiry allows the refund), or `refund_in_progress` when pending refunds hold the whole rest."""
    require_refundable_session(ledger.status)
    if ledger.dispute_status is DisputeStatus.OPEN and ledger.dispute_kind is not DisputeKind.INQUIRY:
        # The card network holds the disputed money: a refund now would pay the customer twice if the dispute
        # is then lost (a lost dispute counts as a full refund); Stripe does not refund a payment under a formal
        # dispute either. An inquiry withdrew nothing and Stripe refunds it (a refund usually settles it); if it
        # escalates and is lost, the loss credits only what is left of the price. Once won, refund.
        raise FailedPrecondition(
            "dispute_open",
            "a dispute of this payment is open (a chargeback: the card network holds the money); refund once it "
            "is closed",
            field="status",
        )
    if origin not in (RefundOrigin.MERCHANT, RefundOrigin.OUTSIDE):
        raise ValueError("a merchant's request is a merchant or outside refund")
    if provider_refund_id and ledger.find(provider_refund_id) is not None:
        raise FailedPrecondition(
            "refund_already_recorded",
            "a refund with this provider_refund_id is already recorded",
            field="provider_refund_id",
        )
    refundable = ledger.refundable_minor
    if amount_minor is None:
        if refundable == 0:
            raise FailedPrecondition(
                "refund_in_progress", "pending refunds already cover the rest of the amount", field="amount"
            )
        amount_minor = refundable
    if amount_minor <= 0:
        raise InvalidArgument("invalid_amount", "amount must be greater than zero", field="amount")
    if amount_minor > refundable:
        raise InvalidArgument(
            "amount_too_large",
            f"at most {_shown(ledger, refundable)} can still be refunded",
            field="amount",
        )
    if origin is RefundOrigin.OUTSIDE:
        refund = Refund(
            refund_id,
            amount_minor,
            RefundStatus.SUCCEEDED,
            origin,
            credited_minor=amount_minor,
            provider_refund_id=provider_refund_id or None,
            reason=reason,
        )
    else:
        refund = Refund(refund_id, amount_minor, RefundStatus.PENDING, origin, reason=reason)
    return _with(ledger, refund, note=f"refund_{refund.status}")


def _shown(ledger: Ledger, amount_minor: int) -> str:
    """An amount of the session's money as a merchant reads it ("2.60 EUR")."""
    if not ledger.currency:
        return f"{amount_minor} minor units"
    return Money(amount_minor, ledger.currency, ledger.exponent).display()


@dataclass(frozen=True, slots=True)
class RefundReport:
    """What a provider says about one refund (amounts in the session's minor units)."""

    provider_refund_id: str
    amount_minor: int
    status: RefundStatus
    # paygate's refund id when the provider echoes it back (metadata of a refund paygate created).
    paygate_refund_id: uuid.UUID | None = None
    # With status failed: the provider's reason, when it gave one.
    failure_reason: str | None = None


def apply_reports(
    ledger: Ledger,
    reports: tuple[RefundReport, ...],
    *,
    provider_total_minor: int | None,
    reported_at: datetime | None = None,
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> Outcome:
    """A provider event about refunds: each report settles (or creates) one refund, and `provider_total_minor`
    (the provider's running total for the payment, when the event carries it) caps what is credited.
    `reported_at` is the provider's time of the event (None: not known; totals are then compared by size).

    A total larger than what the listed refunds explain (an event without its refund list) is recorded as one
    refund keyed by that total, so money the provider says it returned is never lost, and the cap keeps any
    later report of the same money from crediting it twice. Only the newest total counts (`_newest_total`), so
    an older event never credits the money of a refund that has failed since."""
    if ledger.status not in (SessionStatus.PAID, SessionStatus.REFUNDED):
        raise ValueError("refund reports apply to a session that was paid")
    total, as_of, carried = _newest_total(ledger, provider_total_minor, reported_at)
    current = replace(ledger, provider_total_minor=total, provider_total_as_of=as_of)
    # A failure this event reports is already out of a total it carries, and out of a total taken after it.
    total_predates = not (carried or (as_of is not None and reported_at is not None and as_of > reported_at))
    upserts: list[Refund] = []
    for report in reports:
        current, refund = _settle(current, report, new_id, total_predates=total_predates)
        if refund is not None:
            upserts.append(refund)
    before = {r.id: r.status for r in ledger.refunds}
    if (
        total_predates
        and reported_at is not None
        and current.provider_total_minor is not None
        and any(r.status in GONE and r.id in before and before[r.id] not in GONE for r in upserts)
    ):
        # The total lowered by this failure is the provider's as of this event: an event older than the failure
        # is older than it too.
        as_of = current.provider_total_as_of
        current = replace(
            current, provider_total_as_of=reported_at if as_of is None else max(as_of, reported_at)
        )
    failed_after_success = tuple(
        r for r in upserts if r.status is RefundStatus.FAILED and before.get(r.id) is RefundStatus.SUCCEEDED
    )
    if total is not None and total > _explained(current):
        # The provider returned money no listed refund explains: record it under the total's own key.
        key = f"total:{total}"
        if current.find(key) is None:
            amount = total - _explained(current)
            room = _room(current)
            if amount > 0 and room > 0:
                refund = Refund(
                    new_id(),
                    amount,
                    RefundStatus.SUCCEEDED,
                    RefundOrigin.PROVIDER,
                    credited_minor=min(amount, room),
                    provider_refund_id=key,
                )
                current = replace(current, refunds=(*current.refunds, refund))
                upserts.append(refund)
    current, surplus = _new_surplus(current)
    changed = (
        bool(upserts)
        or surplus > 0
        or current.provider_total_minor != ledger.provider_total_minor
        or current.provider_total_as_of != ledger.provider_total_as_of
    )
    outcome = _finish(ledger, current, tuple(upserts), note="refund_reported", changed=changed)
    return replace(outcome, failed_after_success=failed_after_success, surplus_minor=surplus)


def _newest_total(
    ledger: Ledger, reported: int | None, at: datetime | None
) -> tuple[int | None, datetime | None, bool]:
    """The provider's total after this event, the time it was taken, and whether it is this event's own. A
    newer event's total replaces the stored one; one from the same second (or of unknown time) can only raise
    it; an older event's changes nothing."""
    stored, as_of = ledger.provider_total_minor, ledger.provider_total_as_of
    if reported is None:
        return stored, as_of, False
    if stored is None:
        return reported, at, True
    if at is None or as_of is None or at == as_of:
        newest = as_of if at is None else at if as_of is None else max(as_of, at)
        return max(stored, reported), newest, reported >= stored
    if at > as_of:
        return reported, at, True
    return stored, as_of, False


def _explained(ledger: Ledger) -> int:
    """How much of the provider's total the known refunds explain: what they credit, and the refunds the
    provider has told us of that are still pending (its total already counts them)."""
    pending = sum(
        r.amount_minor for r in ledger.refunds if r.status is RefundStatus.PENDING and r.provider_refund_id
    )
    return ledger.credited_minor + pending


def _room(ledger: Ledger, excluding: uuid.UUID | None = None) -> int:
    """What may still be credited: the price, and the provider's total when known, minus what others credit."""
    others = sum(r.credited_minor for r in ledger.refunds if r.id != excluding)
    room = ledger.amount_minor - others
    if ledger.provider_total_minor is not None:
        room = min(room, ledger.provider_total_minor - others)
    return max(0, room)


def _settle(
    ledger: Ledger, report: RefundReport, new_id: Callable[[], uuid.UUID], *, total_predates: bool
) -> tuple[Ledger, Refund | None]:
    existing = ledger.find(report.provider_refund_id, report.paygate_refund_id)
    if existing is None and report.amount_minor <= 0:
        return ledger, None  # a report of nothing is not a refund
    if existing is None:
        if report.status is not RefundStatus.SUCCEEDED and report.status is not RefundStatus.PENDING:
            # A refund we never knew that failed: nothing happened to the money; remember it all the same.
            refund = Refund(
                new_id(),
                report.amount_minor,
                report.status,
                RefundOrigin.PROVIDER,
                provider_refund_id=report.provider_refund_id,
                failure_reason=_failure_reason(report),
            )
        else:
            refund = Refund(
                new_id(),
                report.amount_minor,
                RefundStatus.PENDING,
                RefundOrigin.PROVIDER,
                provider_refund_id=report.provider_refund_id,
            )
            ledger = replace(ledger, refunds=(*ledger.refunds, refund))
            refund = _advance(ledger, refund, report)
        return _replace_refund(ledger, refund), refund
    updated = replace(existing, provider_refund_id=existing.provider_refund_id or report.provider_refund_id)
    if existing.status is RefundStatus.PENDING:
        updated = _advance(ledger, updated, report)
    elif existing.status is RefundStatus.SUCCEEDED and report.status is RefundStatus.FAILED:
        # Stripe: a refund that succeeded can still fail (the customer's bank returned it).
        updated = replace(
            updated, status=RefundStatus.FAILED, credited_minor=0, failure_reason=_failure_reason(report)
        )
    elif existing.status is RefundStatus.FAILED and existing.failure_reason is None:
        # A failure first reported without its reason (a charge's refund list) learns it from a later report;
        # a reason once known is never replaced nor erased.
        updated = replace(updated, failure_reason=_failure_reason(report))
    if updated == existing:
        return ledger, None
    after = _replace_refund(ledger, updated)
    if updated.status in GONE and existing.status not in GONE and total_predates:
        after = _without_failed(after, existing)
    return after, updated


def _without_failed(ledger: Ledger, failed: Refund) -> Ledger:
    """The provider's total once `failed` no longer counts in it (the provider gives its amount back): lowered
    by its amount, but never below what the remaining refunds explain, so a total reported before the failure
    cannot make the failed money look returned, and real credits are never capped away."""
    if ledger.provider_total_minor is None:
        return ledger
    lowered = max(_explained(ledger), ledger.provider_total_minor - failed.amount_minor)
    return replace(ledger, provider_total_minor=min(ledger.provider_total_minor, lowered))


def _advance(ledger: Ledger, refund: Refund, report: RefundReport) -> Refund:
    if report.status is RefundStatus.PENDING:
        return refund
    if report.status is RefundStatus.SUCCEEDED:
        # The provider's amount is the truth about this refund; the credit is capped by the room left.
        amount = report.amount_minor if report.amount_minor > 0 else refund.amount_minor
        credited = min(amount, _room(ledger, excluding=refund.id))
        return replace(refund, amount_minor=amount, status=RefundStatus.SUCCEEDED, credited_minor=credited)
    return replace(refund, status=report.status, credited_minor=0, failure_reason=_failure_reason(report))


def _failure_reason(report: RefundReport) -> str | None:
    return report.failure_reason if report.status is RefundStatus.FAILED else None


def _replace_refund(ledger: Ledger, refund: Refund) -> Ledger:
    others = tuple(r for r in ledger.refunds if r.id != refund.id)
    return replace(ledger, refunds=(*others, refund))


def _with(ledger: Ledger, refund: Refund, *, note: str) -> Outcome:
    return _finish(ledger, _replace_refund(ledger, refund), (refund,), note=note, changed=True)


def _finish(
    before: Ledger, after: Ledger, upserts: tuple[Refund, ...], *, note: str, changed: bool
) -> Outcome:
    moves = before.status is SessionStatus.PAID and after.fully_refunded
    if moves:
        assert can_move(SessionStatus.PAID, SessionStatus.REFUNDED)
        after = replace(after, status=SessionStatus.REFUNDED)
    return Outcome(after, upserts, moves_to_refunded=moves, note=note, changed=changed)


def apply_dispute(
    ledger: Ledger,
    action: DisputeAction,
    *,
    dispute_id: str,
    provider_status: str = "",
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> Outcome:
    """A provider event about a dispute on the session's payment."""
    if ledger.status not in (SessionStatus.PAID, SessionStatus.REFUNDED):
        raise ValueError("disputes apply to a session that was paid")
    kind = _kind_after(ledger, action, dispute_id, provider_status)
    if action is DisputeAction.CREATED:
        if ledger.dispute_status is DisputeStatus.OPEN and ledger.dispute_id == dispute_id:
            if kind is not ledger.dispute_kind:
                # The same dispute, re-sent with an escalated status: a chargeback from now on.
                return Outcome(replace(ledger, dispute_kind=kind), note="dispute_escalated")
            return Outcome(ledger, note="dispute_already_open", changed=False)
        if (
            ledger.dispute_status in (DisputeStatus.WON, DisputeStatus.LOST)
            and ledger.dispute_id == dispute_id
        ):
            # A late `created` of a dispute that is already closed: it never reopens.
            return Outcome(ledger, note="dispute_already_closed", changed=False)
        after = replace(
            ledger,
            dispute_status=DisputeStatus.OPEN,
            dispute_id=dispute_id,
            dispute_kind=kind or DisputeKind.CHARGEBACK,
        )
        return Outcome(after, note="dispute_created")
    if action is not DisputeAction.CLOSED:
        # Money moved between the merchant's balance and the network, or the status changed; the session's facts
        # do not change, except an inquiry that escalates (or the kind of a dispute not opened here yet).
        after = replace(ledger, dispute_id=ledger.dispute_id or dispute_id)
        note = f"dispute_{action}"
        if after.dispute_id == dispute_id and kind is not None and kind is not ledger.dispute_kind:
            after = replace(after, dispute_kind=kind)
            if ledger.dispute_status is DisputeStatus.OPEN and kind is DisputeKind.CHARGEBACK:
                note = "dispute_escalated"
        return Outcome(after, note=note)
    if ledger.dispute_status in (DisputeStatus.WON, DisputeStatus.LOST) and ledger.dispute_id == dispute_id:
        return Outcome(ledger, note="dispute_already_closed", changed=False)
    if provider_status in _WON:
        won = replace(ledger, dispute_status=DisputeStatus.WON, dispute_id=dispute_id, dispute_kind=kind)
        return Outcome(won, note="dispute_won")
    if provider_status != "lost":
        raise InvalidArgument(
            "invalid_dispute_status",
            "a closed dispute is won, warning_closed or lost",
            field="dispute_status",
        )
    closed = replace(
        ledger, dispute_status=DisputeStatus.LOST, dispute_id=dispute_id, dispute_kind=DisputeKind.CHARGEBACK
    )
    # Lost: the network took back what the refunds have not returned yet. Not capped by the provider's refunded
    # total: that is the charge's refunds (Stripe's amount_refunded), and a chargeback is not one of them.
    left = max(0, closed.amount_minor - closed.credited_minor)
    if left <= 0 or closed.find(dispute_id) is not None:
        return _finish(ledger, closed, (), note="dispute_lost", changed=True)
    # It is a refund of everything not yet credited (a refund made during an inquiry is not paid twice).
    refund = Refund(
        new_id(),
        left,
        RefundStatus.SUCCEEDED,
        RefundOrigin.DISPUTE,
        credited_minor=left,
        provider_refund_id=dispute_id,
        reason="dispute_lost",
    )
    after = replace(closed, refunds=(*closed.refunds, refund))
    return _finish(ledger, after, (refund,), note="dispute_lost", changed=True)


def _kind_after(
    ledger: Ledger, action: DisputeAction, dispute_id: str, provider_status: str
) -> DisputeKind | None:
    """The kind of dispute `dispute_id` after an event of it (None: not told). One way: a chargeback never
    becomes an inquiry again, so a late event still carrying a `warning_*` snapshot changes nothing."""
    known = ledger.dispute_kind if ledger.dispute_id == dispute_id else None
    if known is None and ledger.dispute_id == dispute_id and ledger.dispute_status is DisputeStatus.OPEN:
        known = DisputeKind.CHARGEBACK  # opened before the kind was kept: refused as before
    if known is DisputeKind.CHARGEBACK or action is DisputeAction.FUNDS_WITHDRAWN:
        # An inquiry withdraws nothing: funds withdrawn mean a chargeback, whatever status the event carries.
        return DisputeKind.CHARGEBACK
    if provider_status in _INQUIRY:
        return DisputeKind.INQUIRY
    if provider_status:
        return DisputeKind.CHARGEBACK
    return known


def attach_provider_refund(
    ledger: Ledger,
    refund_id: uuid.UUID,
    provider_refund_id: str,
    status: RefundStatus,
    failure_reason: str | None = None,
) -> tuple[Outcome, Refund]:
    """The provider's API answered a refund paygate asked for: remember its id (the webhook settles it). An
    answer of failed or canceled settles it at once. Returns the outcome and the refund that now stands for
    the request: when the provider's webhook came first and recorded the refund under its id, that record
    stands and the request's own pending record is canceled, so the money is counted once."""
    mine = ledger.find(None, refund_id)
    if mine is None:
        raise ValueError("attach to a refund of this session")
    holder = ledger.find(provider_refund_id)
    if holder is not None and holder.id != mine.id:
        if mine.status is not RefundStatus.PENDING:
            return Outcome(ledger, note="refund_merged", changed=False), holder
        canceled = replace(
            mine, status=RefundStatus.CANCELED, reason=mine.reason or "merged", replaced_by=holder.id
        )
        return _with(ledger, canceled, note="refund_merged"), holder
    updated = replace(mine, provider_refund_id=mine.provider_refund_id or provider_refund_id)
    if updated.status is RefundStatus.PENDING and status in GONE:
        # A refusal's reason is the provider's error code (failed only; a cancel has none).
        reason = failure_reason if status is RefundStatus.FAILED else None
        updated = replace(updated, status=status, failure_reason=reason)
    if updated == mine:
        return Outcome(ledger, note="refund_attached", changed=False), mine
    return _with(ledger, updated, note="refund_attached"), updated
