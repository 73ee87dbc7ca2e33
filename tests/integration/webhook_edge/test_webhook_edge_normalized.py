"""An event is normalised once, by the handler that verified it, and stored normalised: the relay applies the
stored reading and never parses or normalises the provider's body again (issue 15 item 4, issue 16)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from paygate.session.v1 import session_pb2
from paygate_dev.devtools.signing import stripe_delivery
from paygate_dev.devtools.stripe_fixtures import build_stripe_event
from paygate_runtime.db import create_pool
from support.database import TestDatabase
from support.session_fakes import BatchesAsSingleApplies
from webhook_gateway.adapters.inbox_repository import InboxRepository, InboxWriter
from webhook_gateway.providers.normalized import MoneyBack, NormalizedEvent, RefundInfo
from webhook_gateway.providers.normalized_json import (
    dump_normalized,
    load_normalized,
    storable_normalized,
)
from webhook_gateway.providers.stripe_webhooks import STRIPE_EVENT_TYPES, normalize_stripe, verify_stripe
from webhook_gateway.service_layer import relay as relay_module
from webhook_gateway.service_layer.inbox import receive
from webhook_gateway.service_layer.payment_events import apply_request
from webhook_gateway.service_layer.relay import EventProcessor, RelaySettings

SECRET = "whsec_" + "b" * 32


def _verified(event: dict[str, Any]) -> tuple[Any, NormalizedEvent]:
    now = int(time.time())
    raw, headers = stripe_delivery(event, SECRET, now)
    envelope = verify_stripe(raw, headers["Stripe-Signature"], [SECRET], now)
    return envelope, normalize_stripe(envelope)


@pytest.mark.parametrize("event_type", STRIPE_EVENT_TYPES)
def test_the_stored_form_reads_back_as_the_same_event(event_type: str) -> None:
    _, normalized = _verified(build_stripe_event(event_type, str(uuid.uuid4()), 2599, "EUR"))
    assert load_normalized(dump_normalized(normalized)) == normalized


def test_money_back_and_large_amounts_read_back_exactly() -> None:
    event = NormalizedEvent(
        provider="stripe",
        event_id="evt_1",
        event_type="charge.refunded",
        kind="refunded",
        session_id=None,
        provider_reference="pi_1",
        amount_minor=10**77 + 1,  # no float on the way: amounts travel as digit strings
        currency="EUR",
        exponent=2,
        livemode=True,
        occurred_at=datetime(2026, 12, 5, 20, 0, 1, tzinfo=UTC),
        ignore_reason=None,
        money_back=MoneyBack(
            refunds=(RefundInfo("re_a", 1000, "succeeded", "rf_1"), RefundInfo("re_b", 5, "pending")),
            refunded_total_minor=1005,
            dispute_id="dp_1",
            dispute_action="created",
            dispute_status="needs_response",
            charge_id="ch_1",
        ),
    )
    assert load_normalized(dump_normalized(event)) == event


def test_another_version_or_damage_is_refused_and_unstorable_text_is_not_stored() -> None:
    _, normalized = _verified(build_stripe_event("checkout.session.completed", str(uuid.uuid4()), 100, "EUR"))
    text = dump_normalized(normalized)
    for bad in (text.replace('"v":2', '"v":1'), text.replace('"amount_minor":"100"', '"amount_minor":100.0')):
        with pytest.raises(ValueError):
            load_normalized(bad)
    with_nul = NormalizedEvent(**{**_fields(normalized), "provider_reference": "pi_\x00"})
    assert storable_normalized(with_nul) is None
    assert storable_normalized(normalized) == text


def _fields(event: NormalizedEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in NormalizedEvent.__dataclass_fields__}


class RecordingSession(BatchesAsSingleApplies):
    """Stands in for the session service's stub: records each ApplyPaymentEvent and answers `applied`."""

    def __init__(self) -> None:
        self.requests: list[session_pb2.ApplyPaymentEventRequest] = []

    async def ApplyPaymentEvent(
        self, request: session_pb2.ApplyPaymentEventRequest, timeout: float | None = None
    ) -> session_pb2.ApplyPaymentEventResponse:
        self.requests.append(request)
        return session_pb2.ApplyPaymentEventResponse(outcome=session_pb2.APPLY_OUTCOME_APPLIED)


def _no_second_reading(*args: object, **kwargs: object) -> Any:
    raise AssertionError("the relay parsed or normalised the provider's body again")


async def test_the_relay_applies_the_stored_normalised_event_without_parsing_the_body(
    clean_db: TestDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = await create_pool(clean_db.runtime_dsn("gateway"), "gateway", min_size=1, max_size=2)
    try:
        repo = InboxRepository(pool)
        session = RecordingSession()
        processor = EventProcessor(repo, session, RelaySettings(lease_s=30))  # type: ignore[arg-type]
        envelope, normalized = _verified(
            build_stripe_event("checkout.session.completed", str(uuid.uuid4()), 2599, "EUR")
        )
        stored = await receive(InboxWriter(repo), envelope, normalized, claim=False, lease_s=30)
        assert stored.inserted and stored.event is not None
        column = await pool.fetchval(
            "SELECT normalized::text FROM inbox_events WHERE id = $1", uuid.UUID(stored.event.id)
        )
        assert load_normalized(column) == normalized

        # From here on, reading the raw body would fail the test.
        monkeypatch.setattr(relay_module, "parse_json_object", _no_second_reading)
        processor.handlers["stripe"] = processor._normalizing_handler(_no_second_reading, "stripe")
        claimed = await repo.claim_due(10, 30, ["stripe"])
        assert [event.id for event in claimed] == [stored.event.id]
        await processor.process(claimed[0])

        assert session.requests == [apply_request(normalized, claimed[0].received_at)]
        row = await pool.fetchrow(
            "SELECT status, outcome FROM inbox_events WHERE id = $1", uuid.UUID(stored.event.id)
        )
        assert (row["status"], row["outcome"]) == ("applied", "applied")
    finally:
        await pool.close()


async def test_rows_without_a_readable_stored_form_are_normalised_from_their_body(
    clean_db: TestDatabase,
) -> None:
    """Rows stored before the column existed, or by another version, still apply: from the raw body."""
    pool = await create_pool(clean_db.runtime_dsn("gateway"), "gateway", min_size=1, max_size=2)
    try:
        repo = InboxRepository(pool)
        session = RecordingSession()
        processor = EventProcessor(repo, session, RelaySettings(lease_s=30))  # type: ignore[arg-type]
        expected = []
        for stored_form in (None, '{"v": 0}'):
            envelope, normalized = _verified(
                build_stripe_event("payment_intent.succeeded", str(uuid.uuid4()), 700, "EUR")
            )
            stored = await receive(InboxWriter(repo), envelope, normalized, claim=False, lease_s=30)
            assert stored.event is not None
            # As the superuser, past the evidence trigger: nobody else may write this column after the insert.
            admin = await clean_db.admin()
            try:
                async with admin.transaction():
                    await admin.execute("SET LOCAL session_replication_role = replica")
                    await admin.execute(
                        "UPDATE gateway.inbox_events SET normalized = $2::jsonb WHERE id = $1",
                        uuid.UUID(stored.event.id),
                        stored_form,
                    )
            finally:
                await admin.close()
            expected.append(normalized)
        claimed = await repo.claim_due(10, 30, ["stripe"])
        await asyncio.gather(*(processor.process(event) for event in claimed))
        by_id = {r.provider_event_id: r for r in session.requests}
        for event, normalized in zip(
            sorted(claimed, key=lambda e: e.event_id), sorted(expected, key=lambda n: n.event_id), strict=True
        ):
            assert by_id[normalized.event_id] == apply_request(normalized, event.received_at)
    finally:
        await pool.close()
