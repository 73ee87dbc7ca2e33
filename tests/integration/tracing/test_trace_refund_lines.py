"""`paygate trace` of a refunded session: each refund line says what happened at its time.

A walk of README's command table: a refund asked for and later failed at the provider showed one line at the
time it was asked for, "refund (merchant) failed", next to the audit row of its request: the timeline read
as if it had failed when it was created. Now the creation line says created (pending), and the failure has its
own line at the time the audit log recorded it. A refund whose settling the data does not date (no audit
row names it, e.g. from before the audit rows named refunds) shows its creation without a status and its
current status once, labelled "now"."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from support import refund_flows
from support.cli import cli_env, run_paygate
from support.merchant_webhooks import FAST_ENV
from support.refund_flows import FakeStripeRefunds
from support.stack import ServiceStack

pytestmark = pytest.mark.slow


@pytest.fixture
async def fake_stripe() -> AsyncIterator[FakeStripeRefunds]:
    async with FakeStripeRefunds() as fake:
        yield fake


@pytest.fixture
def stack_env(stack_env: dict[str, str], fake_stripe: FakeStripeRefunds) -> dict[str, str]:
    return {**stack_env, **FAST_ENV, **fake_stripe.env()}


async def _trace(stack: ServiceStack, sid: str) -> list[dict[str, Any]]:
    code, out, err = await run_paygate(
        cli_env(), "trace", sid, "--database-url", stack.db.admin_dsn, "--json", timeout=60
    )
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


async def _refund_row(stack: ServiceStack, refund_id: str) -> Any:
    conn = await stack.db.admin()
    try:
        return await conn.fetchrow(
            "SELECT created_at, status FROM session.refunds WHERE id = $1", uuid.UUID(refund_id)
        )
    finally:
        await conn.close()


async def test_a_failed_refund_is_created_pending_and_fails_on_its_own_line(
    stack: ServiceStack, fake_stripe: FakeStripeRefunds
) -> None:
    merchant = await stack.create_merchant()
    paid = await refund_flows.paid_session(stack, merchant, "100.00")
    fake_stripe.payments[paid.payment_intent] = 10000
    status, asked = await refund_flows.refund(stack, merchant, paid.id, {"amount": "10.00"}, key="trace-1")
    assert status == 202 and asked["status"] == "pending", asked
    failed = refund_flows.refund_object(
        asked["provider_refund_id"], 1000, paid.payment_intent, paid.charge, "failed"
    )
    sent = await refund_flows.send_stripe(
        stack, refund_flows.stripe_envelope("charge.refund.updated", failed)
    )
    assert await refund_flows.applied(stack, "stripe", sent["event_id"]) == "applied"
    row = await _refund_row(stack, asked["id"])
    assert row["status"] == "failed"

    refund_lines = [e for e in await _trace(stack, paid.id) if e["what"].startswith("refund (")]

    created = [e for e in refund_lines if datetime.fromisoformat(e["at"]) == row["created_at"]]
    assert [e["what"] for e in created] == ["refund (merchant) created, pending"], refund_lines
    assert "1000 minor units of EUR" in created[0]["detail"], created
    later = [e for e in refund_lines if datetime.fromisoformat(e["at"]) > row["created_at"]]
    assert [e["what"] for e in later] == ["refund (merchant) failed"], refund_lines


def test_a_refund_whose_settling_is_not_dated_shows_its_status_as_now() -> None:
    from paygate_runtime.cli.trace_cmd import refund_entries

    created_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    refund = {
        "id": uuid.uuid4(),
        "status": "failed",
        "origin": "provider",
        "amount_minor": 500,
        "currency": "EUR",
        "provider_refund_id": "re_1",
        "failure_reason": None,
        "created_at": created_at,
    }

    entries = refund_entries(refund, [])

    assert [(e.at, e.what) for e in entries] == [(created_at, "refund (provider) created")]
    assert entries[0].detail.endswith("status now: failed (when it changed is not recorded)"), entries
