"""From a normalised provider event to the session service's ApplyPaymentEvent, and from its outcome back to
an inbox status.

Outcome -> inbox status (the session service's outcome is kept beside it in `outcome`):
- applied -> applied.
- duplicate -> the status of the first outcome: the session service saw this event id before, which for the
  gateway means an earlier attempt landed but its reply was lost (a deadline, a restart).
- already_paid -> duplicate: the same payment (provider reference) was already counted under another event
  id, e.g. `payment_intent.succeeded` after `checkout.session.completed`. Final; nothing was applied twice.
- already_quarantined -> duplicate: the same payment's money is already in quarantine under another event id
  (the webhook after reconciliation found it, or the other way round); `quarantine_id` names that one entry.
- ignored_terminal -> ignored: news for a closed session (`failed` after `paid`), recorded as a no-op.
- amount_mismatch, overpaid, payment_on_closed_session, mode_mismatch, provider_mismatch, recorded_for_review ->
  quarantined:
  the money needs the merchant (overpaid sessions are paid, but the surplus sits in quarantine).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from google.protobuf.timestamp_pb2 import Timestamp

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from paygate_runtime.proto_convert import mode_name as proto_mode_name
from paygate_runtime.proto_convert import timestamp
from webhook_gateway.adapters.inbox_repository import APPLIED, DUPLICATE, IGNORED, QUARANTINED
from webhook_gateway.providers.normalized import NormalizedEvent

_KINDS: Final[dict[str, int]] = {
    "pending": session_pb2.EVENT_KIND_PENDING,
    "succeeded": session_pb2.EVENT_KIND_SUCCEEDED,
    "failed": session_pb2.EVENT_KIND_FAILED,
    "attempt_failed": session_pb2.EVENT_KIND_ATTEMPT_FAILED,
    "expired": session_pb2.EVENT_KIND_EXPIRED,
    "refunded": session_pb2.EVENT_KIND_REFUNDED,
    "disputed": session_pb2.EVENT_KIND_DISPUTED,
}

_STATUS_BY_OUTCOME: Final[dict[int, str]] = {
    session_pb2.APPLY_OUTCOME_APPLIED: APPLIED,
    session_pb2.APPLY_OUTCOME_ALREADY_PAID: DUPLICATE,
    session_pb2.APPLY_OUTCOME_ALREADY_QUARANTINED: DUPLICATE,
    session_pb2.APPLY_OUTCOME_IGNORED_TERMINAL: IGNORED,
    session_pb2.APPLY_OUTCOME_AMOUNT_MISMATCH: QUARANTINED,
    session_pb2.APPLY_OUTCOME_OVERPAID: QUARANTINED,
    session_pb2.APPLY_OUTCOME_PAYMENT_ON_CLOSED_SESSION: QUARANTINED,
    session_pb2.APPLY_OUTCOME_MODE_MISMATCH: QUARANTINED,
    session_pb2.APPLY_OUTCOME_PROVIDER_MISMATCH: QUARANTINED,
    session_pb2.APPLY_OUTCOME_RECORDED_FOR_REVIEW: QUARANTINED,
}


@dataclass(frozen=True, slots=True)
class InboxVerdict:
    """What to write on the inbox row once the session service has answered."""

    status: str
    outcome: str
    merchant_id: str | None = None
    mode: str | None = None
    quarantine_id: str | None = None
    last_error: str | None = None
    # The session the session service matched the event to: recorded on the row where the event named none
    # itself (a Stripe dispute or refund names only the charge; InboxRepository.finish_many keeps a named one).
    session_id: str | None = None


def outcome_name(outcome: int) -> str:
    """APPLY_OUTCOME_AMOUNT_MISMATCH -> "amount_mismatch"."""
    return session_pb2.ApplyOutcome.Name(outcome).removeprefix("APPLY_OUTCOME_").lower()


def mode_name(mode: int) -> str | None:
    return proto_mode_name(mode)


def _timestamp(value: datetime) -> Timestamp:
    return timestamp(value)


def apply_request(event: NormalizedEvent, received_at: datetime) -> session_pb2.ApplyPaymentEventRequest:
    """The ApplyPaymentEvent for a normalised, non-ignored event.

    `occurred_at` is the provider's own time when it gives one (Stripe's `created`), else the moment the
    gateway received the event. The mode is Stripe's `livemode`, or for One.com the mode whose secret verified
    the event (normalised into `livemode` too); unset only when neither is known.
    """
    if event.kind is None:
        raise ValueError("an ignored event is never applied")
    request = session_pb2.ApplyPaymentEventRequest(
        session_id=event.session_id or "",
        provider=event.provider,
        provider_event_id=event.event_id,
        kind=_KINDS[event.kind],  # type: ignore[arg-type]  # a PaymentEventKind value, an int at run time
        provider_reference=event.provider_reference or "",
        occurred_at=_timestamp(event.occurred_at or received_at),
        mode=(
            common_pb2.MODE_UNSPECIFIED
            if event.livemode is None
            else (common_pb2.MODE_LIVE if event.livemode else common_pb2.MODE_TEST)
        ),
        provider_event_type=event.event_type,
    )
    if event.amount_minor is not None and event.currency is not None and event.exponent is not None:
        request.amount.CopyFrom(
            common_pb2.Money(
                amount_minor=str(event.amount_minor), currency=event.currency, exponent=event.exponent
            )
        )
    if event.money_back is not None:
        add_money_back(request, event)
    return request


def add_money_back(request: session_pb2.ApplyPaymentEventRequest, event: NormalizedEvent) -> None:
    """The refunds, the provider's refunded total and the dispute of a refund or dispute event (§8)."""
    back = event.money_back
    assert back is not None
    currency, exponent = event.currency or "", event.exponent or 0

    def money(minor: int) -> common_pb2.Money:
        return common_pb2.Money(amount_minor=str(minor), currency=currency, exponent=exponent)

    for refund in back.refunds:
        request.refunds.append(
            session_pb2.ProviderRefund(
                refund_id=refund.refund_id,
                amount=money(refund.amount_minor),
                status=refund.status,
                paygate_refund_id=refund.paygate_refund_id or "",
                failure_reason=refund.failure_reason or "",
            )
        )
    if back.refunded_total_minor is not None:
        request.refunded_total.CopyFrom(money(back.refunded_total_minor))
    if back.dispute_id:
        request.dispute.CopyFrom(
            session_pb2.DisputeReport(
                dispute_id=back.dispute_id,
                action=back.dispute_action or "",
                status=back.dispute_status or "",
                amount=money(event.amount_minor or 0),
            )
        )
    request.provider_charge_id = back.charge_id or ""


def verdict_for(reply: session_pb2.ApplyPaymentEventResponse) -> InboxVerdict:
    outcome = reply.outcome
    if outcome == session_pb2.APPLY_OUTCOME_DUPLICATE:
        outcome = reply.first_outcome or session_pb2.APPLY_OUTCOME_APPLIED
    status = _STATUS_BY_OUTCOME.get(outcome)
    if status is None:
        raise ValueError(f"unexpected ApplyPaymentEvent outcome {reply.outcome}")
    session = reply.session
    return InboxVerdict(
        status=status,
        outcome=outcome_name(outcome),
        merchant_id=session.merchant_id or None,
        mode=mode_name(session.mode),
        quarantine_id=reply.quarantine_id or None,
        session_id=session.id or None,
    )
