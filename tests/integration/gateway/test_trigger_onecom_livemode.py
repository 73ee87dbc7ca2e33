"""`paygate trigger onecom --livemode`, as `trigger stripe --livemode`: a live-mode One.com event is one the
gateway's live One.com secret verifies, so it pays a live session; without the flag the event is a test one."""

from __future__ import annotations

import argparse
import base64
import secrets
from typing import Any

import pytest
from gateway_webhook_support import FAST_RELAY_ENV, create_session, wait_for_session_status, wait_for_status

from paygate_dev.devtools import trigger_cmd
from support.stack import ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    live = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    return {**stack_env, **FAST_RELAY_ENV, "PAYGATE_ONECOM_WEBHOOK_SECRETS_LIVE": live}


def _facts(stack: ServiceStack) -> dict[str, Any]:
    """What `paygate up` writes to stack.json (its webhook secrets), for this in-process stack."""
    return {
        "gateway_url": stack.base_url,
        "grpc": {name: stack.addr(name) for name in ("session", "billing", "keys")},
        "webhook_secrets": {
            "stripe": stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"],
            "onecom": stack.env["PAYGATE_ONECOM_WEBHOOK_SECRETS"],
            "onecom_live": stack.env["PAYGATE_ONECOM_WEBHOOK_SECRETS_LIVE"],
        },
    }


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    trigger_cmd.configure(parser)
    return parser.parse_args(list(argv))


async def test_trigger_onecom_livemode_pays_a_live_session(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant("Live Shop", "live", mode="live")
    facts = _facts(stack)
    session = await create_session(stack, merchant, amount="7.50", provider="onecom")
    assert session["mode"] == "live", session

    # A test-mode event (no flag) does not pay a live session.
    test_args = _parse("onecom", "payment.succeeded", "--session", session["id"], "--event-id", "msg_test_1")
    assert await trigger_cmd.trigger(test_args, facts) == 0
    await wait_for_status(stack, "onecom", "msg_test_1", {"quarantined"})

    live_args = _parse(
        "onecom", "payment.succeeded", "--session", session["id"], "--livemode", "--event-id", "msg_live_1"
    )
    assert live_args.livemode is True
    assert await trigger_cmd.trigger(live_args, facts) == 0
    await wait_for_status(stack, "onecom", "msg_live_1", {"applied"})
    await wait_for_session_status(stack, merchant, session["id"], "paid")


async def test_trigger_stripe_and_onecom_take_the_same_livemode_flag() -> None:
    stripe = _parse("stripe", "payment_intent.succeeded", "--session", "s", "--livemode")
    onecom = _parse("onecom", "payment.succeeded", "--session", "s", "--livemode")
    assert stripe.livemode is onecom.livemode is True
    assert _parse("onecom", "payment.succeeded", "--session", "s").livemode is False


async def test_trigger_onecom_livemode_without_a_live_secret_says_so() -> None:
    facts = {"gateway_url": "http://127.0.0.1:9", "webhook_secrets": {"onecom": "whsec_" + "A" * 44}}
    args = _parse(
        "onecom", "payment.succeeded", "--session", "s", "--amount", "1.00", "--currency", "EUR", "--livemode"
    )
    with pytest.raises(trigger_cmd.TriggerError, match=r"no webhook_secrets\.onecom_live"):
        await trigger_cmd.trigger(args, facts)
