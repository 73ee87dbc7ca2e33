"""Which dispute write sends a merchant event (contract §7): the one that opens a dispute (`dispute.created`),
escalates an open inquiry to a chargeback (`dispute.updated`) or closes it (`dispute.closed`), each once. The
escalation is told when it happens, since a chargeback is answered with evidence before it closes. Every other
dispute event (funds moved, an update that changes no kind, a late or re-sent event) is recorded only."""

from __future__ import annotations

import pytest

from session_service.domain.merchant_events import DISPUTE_EVENTS, EVENT_TYPES, check_events, dispute_event
from session_service.domain.refunds import DisputeAction, Ledger, Outcome, apply_dispute
from session_service.domain.states import SessionStatus

DP = "dp_rule_1"


def _then(*steps: tuple[DisputeAction, str]) -> list[str | None]:
    """The event each step of one dispute's history sends, in order."""
    ledger = Ledger(status=SessionStatus.PAID, amount_minor=10_000)
    sent: list[str | None] = []
    for action, status in steps:
        outcome: Outcome = apply_dispute(ledger, action, dispute_id=DP, provider_status=status)
        sent.append(dispute_event(outcome.note))
        ledger = outcome.ledger
    return sent


C, U, W, R, X = (
    DisputeAction.CREATED,
    DisputeAction.UPDATED,
    DisputeAction.FUNDS_WITHDRAWN,
    DisputeAction.FUNDS_REINSTATED,
    DisputeAction.CLOSED,
)


@pytest.mark.parametrize(
    ("steps", "sent"),
    [
        # An inquiry escalated by Stripe's charge.dispute.updated, then the funds withdrawn: told once.
        (
            [(C, "warning_needs_response"), (U, "warning_under_review"), (U, "needs_response"), (U, "needs_response"),
             (W, "needs_response"), (X, "lost")],
            ["dispute.created", None, "dispute.updated", None, None, "dispute.closed"],
        ),
        # Escalated by its funds withdrawn alone (whatever status the event carries), then won.
        (
            [(C, "warning_under_review"), (W, ""), (R, "under_review"), (X, "won")],
            ["dispute.created", "dispute.updated", None, "dispute.closed"],
        ),
        # A re-sent created carrying the escalated status escalates too; sent again, it is a no-op.
        (
            [(C, "warning_needs_response"), (C, "needs_response"), (C, "needs_response")],
            ["dispute.created", "dispute.updated", None],
        ),
        # An inquiry that ends without a chargeback never escalated.
        ([(C, "warning_needs_response"), (X, "warning_closed")], ["dispute.created", "dispute.closed"]),
        # A chargeback from the start has nothing to escalate; a late warning_* snapshot changes nothing.
        (
            [(C, "needs_response"), (U, "under_review"), (W, "under_review"), (U, "warning_under_review")],
            ["dispute.created", None, None, None],
        ),
        # Closed: a late created or another closed sends nothing.
        ([(C, "needs_response"), (X, "lost"), (C, "needs_response"), (X, "lost")],
         ["dispute.created", "dispute.closed", None, None]),
    ],
)  # fmt: skip
def test_each_dispute_change_is_sent_once(
    steps: list[tuple[DisputeAction, str]], sent: list[str | None]
) -> None:
    assert _then(*steps) == sent


def test_dispute_events_are_event_types_an_endpoint_can_subscribe_to() -> None:
    assert set(DISPUTE_EVENTS.values()) == {"dispute.created", "dispute.updated", "dispute.closed"}
    assert set(DISPUTE_EVENTS.values()) <= EVENT_TYPES
    assert check_events(["dispute.updated"]) == ["dispute.updated"]
