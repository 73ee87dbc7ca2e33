"""The relay's pure rules: retry schedule, ApplyPaymentEvent building and outcome -> inbox status."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from paygate_dev.devtools.stripe_fixtures import build_stripe_event
from webhook_gateway.providers.normalized import NormalizedEvent, VerifiedEnvelope
from webhook_gateway.providers.stripe_webhooks import normalize_stripe
from webhook_gateway.service_layer.payment_events import apply_request, verdict_for
from webhook_gateway.service_layer.relay import backoff_delay

SESSION_ID = "3b2b0a52-4a53-4b0e-9a7e-0d8f1f1f2a10"
RECEIVED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _normalized(event: dict[str, Any]) -> NormalizedEvent:
    raw = json.dumps(event).encode()
    envelope = VerifiedEnvelope(event["id"], event["type"], json.loads(raw), raw)
    return normalize_stripe(envelope)


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    rng = random.Random(7)
    for attempts, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (12, 300.0), (10_000, 300.0)]:
        for _ in range(50):
            delay = backoff_delay(attempts, 1.0, 300.0, rng)
            assert ceiling / 2 <= delay <= ceiling, (attempts, delay)
    delays = {round(backoff_delay(3, 1.0, 300.0, rng), 6) for _ in range(20)}
    assert len(delays) > 10  # jittered, so an outage's retries spread out


def test_apply_request_carries_mode_time_and_iso_minor_units() -> None:
    # ISK: Stripe writes 5 ISK as 500; paygate's minor units for ISK have exponent 0.
    event = build_stripe_event(
        "payment_intent.succeeded", SESSION_ID, 5, "ISK", livemode=True, created=1_767_323_045
    )
    request = apply_request(_normalized(event), RECEIVED_AT)
    assert request.session_id == SESSION_ID
    assert request.kind == session_pb2.EVENT_KIND_SUCCEEDED
    assert (request.amount.amount_minor, request.amount.currency, request.amount.exponent) == ("5", "ISK", 0)
    assert request.mode == common_pb2.MODE_LIVE
    assert request.occurred_at.seconds == 1_767_323_045
    assert request.provider_reference == event["data"]["object"]["id"]
    assert request.provider_event_type == "payment_intent.succeeded"


def test_apply_request_for_refund_without_session_and_pending_without_amount() -> None:
    refund = build_stripe_event("charge.refunded", SESSION_ID, 1000, "EUR", payment_intent_id="pi_123")
    refund["data"]["object"]["metadata"] = {}
    request = apply_request(_normalized(refund), RECEIVED_AT)
    assert request.session_id == ""
    assert request.kind == session_pb2.EVENT_KIND_REFUNDED
    assert request.provider_reference == "pi_123"
    assert request.mode == common_pb2.MODE_TEST

    pending = build_stripe_event("payment_intent.processing", SESSION_ID, 1000, "EUR")
    request = apply_request(_normalized(pending), RECEIVED_AT)
    assert request.kind == session_pb2.EVENT_KIND_PENDING
    assert not request.HasField("amount")


@pytest.mark.parametrize(
    ("outcome", "first", "status", "name"),
    [
        (session_pb2.APPLY_OUTCOME_APPLIED, 0, "applied", "applied"),
        (session_pb2.APPLY_OUTCOME_DUPLICATE, session_pb2.APPLY_OUTCOME_APPLIED, "applied", "applied"),
        (
            session_pb2.APPLY_OUTCOME_DUPLICATE,
            session_pb2.APPLY_OUTCOME_AMOUNT_MISMATCH,
            "quarantined",
            "amount_mismatch",
        ),
        (session_pb2.APPLY_OUTCOME_ALREADY_PAID, 0, "duplicate", "already_paid"),
        (session_pb2.APPLY_OUTCOME_IGNORED_TERMINAL, 0, "ignored", "ignored_terminal"),
        (session_pb2.APPLY_OUTCOME_AMOUNT_MISMATCH, 0, "quarantined", "amount_mismatch"),
        (session_pb2.APPLY_OUTCOME_OVERPAID, 0, "quarantined", "overpaid"),
        (session_pb2.APPLY_OUTCOME_PAYMENT_ON_CLOSED_SESSION, 0, "quarantined", "payment_on_closed_session"),
        (session_pb2.APPLY_OUTCOME_MODE_MISMATCH, 0, "quarantined", "mode_mismatch"),
        (session_pb2.APPLY_OUTCOME_RECORDED_FOR_REVIEW, 0, "quarantined", "recorded_for_review"),
    ],
)
def test_outcome_to_inbox_status(outcome: int, first: int, status: str, name: str) -> None:
    reply = session_pb2.ApplyPaymentEventResponse(
        outcome=outcome,  # type: ignore[arg-type]
        first_outcome=first,  # type: ignore[arg-type]
        session=session_pb2.Session(merchant_id="m-1", mode=common_pb2.MODE_LIVE),
        quarantine_id="q-1" if status == "quarantined" else "",
    )
    verdict = verdict_for(reply)
    assert (verdict.status, verdict.outcome) == (status, name)
    assert verdict.merchant_id == "m-1" and verdict.mode == "live"
    assert verdict.quarantine_id == ("q-1" if status == "quarantined" else None)


def test_unspecified_outcome_is_refused() -> None:
    with pytest.raises(ValueError):
        verdict_for(session_pb2.ApplyPaymentEventResponse())
