"""`paygate trigger stripe` sends refund and dispute events too: built from Stripe's published refund, charge and
dispute shapes, naming the PaymentIntent that paid the session, so a merchant can test refunds and disputes
locally without signing events by hand."""

from __future__ import annotations

import argparse
import secrets
from typing import Any

import pytest
from gateway_webhook_support import (
    FAST_RELAY_ENV,
    create_session,
    session_of,
    wait_for_session_status,
    wait_for_status,
    wait_until,
)

from paygate_dev.devtools import trigger_cmd
from support.stack import Merchant, ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **FAST_RELAY_ENV}


def _facts(stack: ServiceStack) -> dict[str, Any]:
    """What `paygate up` writes to stack.json, for this in-process stack."""
    return {
        "gateway_url": stack.base_url,
        "grpc": {name: stack.addr(name) for name in ("session", "billing", "keys")},
        "webhook_secrets": {
            "stripe": stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"],
            "onecom": stack.env["PAYGATE_ONECOM_WEBHOOK_SECRETS"],
        },
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paygate trigger")
    trigger_cmd.configure(parser)
    return parser


async def _trigger(stack: ServiceStack, *argv: str) -> str:
    """Send one event with `paygate trigger`; its event id, once the gateway applied it."""
    event_id = "evt_" + secrets.token_hex(12)
    args = _parser().parse_args([*argv, "--event-id", event_id])
    assert await trigger_cmd.trigger(args, _facts(stack)) == 0, argv
    await wait_for_status(stack, "stripe", event_id, {"applied"})
    return event_id


async def _wait_for(
    stack: ServiceStack, merchant: Merchant, session_id: str, field: str, value: Any
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        body = await session_of(stack, merchant, session_id)
        return body if body.get(field) == value else None

    return await wait_until(check, what=f"session {session_id} {field} == {value!r}")


async def test_trigger_stripe_refunds_and_disputes_a_paid_session(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant, amount="25.00", currency="EUR")
    sid = session["id"]

    await _trigger(stack, "stripe", "checkout.session.completed", "--session", sid)
    await wait_for_session_status(stack, merchant, sid, "paid")

    refund_id = "re_" + secrets.token_hex(12)
    await _trigger(
        stack, "stripe", "refund.created", "--session", sid, "--amount", "10.00", "--refund-id", refund_id
    )
    body = await _wait_for(stack, merchant, sid, "amount_refunded", "10.00")
    assert body["status"] == "paid", body
    [refund] = body["refunds"]
    assert (refund["provider_refund_id"], refund["amount"], refund["status"]) == (
        refund_id,
        "10.00",
        "succeeded",
    )

    await _trigger(stack, "stripe", "charge.dispute.created", "--session", sid)
    await _wait_for(stack, merchant, sid, "dispute_status", "open")

    await _trigger(stack, "stripe", "charge.dispute.closed", "--session", sid, "--status", "won")
    body = await _wait_for(stack, merchant, sid, "dispute_status", "won")
    assert (body["status"], body["amount_refunded"]) == ("paid", "10.00"), body


async def test_trigger_stripe_refund_updates_default_to_the_latest_refund_and_charge_refunded_to_the_rest(
    stack: ServiceStack,
) -> None:
    merchant = await stack.create_merchant()
    sid = (await create_session(stack, merchant, amount="25.00", currency="EUR"))["id"]
    await _trigger(stack, "stripe", "payment_intent.succeeded", "--session", sid)
    await wait_for_session_status(stack, merchant, sid, "paid")

    await _trigger(stack, "stripe", "refund.created", "--session", sid, "--amount", "5.00")
    [refund] = (await _wait_for(stack, merchant, sid, "amount_refunded", "5.00"))["refunds"]

    # No --refund-id: the session's latest Stripe refund, with its amount.
    await _trigger(stack, "stripe", "refund.updated", "--session", sid, "--status", "failed")
    body = await _wait_for(stack, merchant, sid, "amount_refunded", "0.00")
    assert [(r["provider_refund_id"], r["status"]) for r in body["refunds"]] == [
        (refund["provider_refund_id"], "failed")
    ]

    # No --amount: what is left to refund, so the session is refunded in full.
    await _trigger(stack, "stripe", "charge.refunded", "--session", sid)
    body = await wait_for_session_status(stack, merchant, sid, "refunded")
    assert body["amount_refunded"] == "25.00", body


async def test_trigger_stripe_help_lists_the_refund_and_dispute_events(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(["stripe", "--help"])
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out
    for event_type in (
        "checkout.session.completed",
        "refund.created",
        "refund.updated",
        "charge.refunded",
        "charge.refund.updated",
        "charge.dispute.created",
        "charge.dispute.closed",
    ):
        assert event_type in shown, event_type


async def test_trigger_stripe_refuses_an_unknown_event_type_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(["stripe", "invoice.paid", "--session", "s"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "invoice.paid" in err, err
