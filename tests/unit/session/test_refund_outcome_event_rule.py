"""Which write of a refund sends `refund.succeeded` / `refund.failed` (contract §7): the one that settles it in a
status it was not in. Replays and late reports write the same status again and send nothing."""

from __future__ import annotations

import pytest

from session_service.domain.merchant_events import EVENT_TYPES, REFUND_OUTCOME_EVENTS, refund_outcome_event


@pytest.mark.parametrize(
    ("before", "after", "sent"),
    [
        ("pending", "succeeded", "refund.succeeded"),
        ("pending", "failed", "refund.failed"),
        # Stripe: a refund that succeeded can still fail (the customer's bank returned it).
        ("succeeded", "failed", "refund.failed"),
        # New rows: a refund recorded as made elsewhere (succeeded at once), a lost dispute's, a provider's
        # refund first heard of settled or failed.
        (None, "succeeded", "refund.succeeded"),
        (None, "failed", "refund.failed"),
        # Canceled at the provider, or paygate's own pending record merged into the provider's (its object
        # names the refund that stands, `replaced_by`); a provider's refund first heard of canceled, like failed.
        ("pending", "canceled", "refund.canceled"),
        (None, "canceled", "refund.canceled"),
        # No outcome yet.
        (None, "pending", None),
        ("pending", "pending", None),
        # The same outcome written again (a replayed or late report): nothing new.
        ("succeeded", "succeeded", None),
        ("failed", "failed", None),
        ("canceled", "canceled", None),
    ],
)
def test_a_refund_outcome_is_sent_when_the_write_settles_it(
    before: str | None, after: str, sent: str | None
) -> None:
    assert refund_outcome_event(before, after) == sent


def test_refund_outcome_events_are_event_types_an_endpoint_can_subscribe_to() -> None:
    assert set(REFUND_OUTCOME_EVENTS.values()) == {"refund.succeeded", "refund.failed", "refund.canceled"}
    assert set(REFUND_OUTCOME_EVENTS.values()) <= EVENT_TYPES
