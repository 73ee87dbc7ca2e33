"""An event applies only to a session of its own provider and mode (contract §6a): every other pair is
answered 200, recorded, quarantined with `provider_mismatch` or `mode_mismatch`, and never moves the session.
Stripe's mode is its `livemode`; One.com's is the mode whose secret verified the event. A session created
without a provider is a card session that either card rail may pay, and the first payment binds it.
Also: Idempotency-Key is scoped to (merchant, mode), and an empty currency is refused.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from paygate_runtime.money import Money
from session_service.domain.deposit_addresses import dev_xpub_from_mnemonic
from session_service.domain.modes import Mode
from session_service.domain.payment_events import EventKind
from session_service.service_layer.payment_events import EventCommand, apply_payment_event
from support.database import TestDatabase
from support.stack import ServiceStack
from support.two_modes import (
    TwoModeMerchant,
    create_session,
    final_inbox_row,
    send_onecom,
    send_stripe,
    two_mode_merchant,
    two_mode_stack,
)

MODES = ("test", "live")
SESSION_PROVIDERS = ("stripe", "onecom", "web3", "card")
PROTO_MODE = {"test": common_pb2.MODE_TEST, "live": common_pb2.MODE_LIVE}


def expected(event_provider: str, event_mode: str, session_provider: str, session_mode: str) -> str:
    """The outcome the contract asks for: mode first, then the provider binding, else the payment applies."""
    if event_mode != session_mode:
        return "mode_mismatch"
    if session_provider == "card":
        return "applied" if event_provider in ("stripe", "onecom") else "provider_mismatch"
    return "applied" if session_provider == event_provider else "provider_mismatch"


@pytest.fixture(scope="module")
async def stack(database: TestDatabase) -> AsyncIterator[ServiceStack]:
    extra = {
        # The local chain (31337) counts as a mainnet here, so live web3 sessions can exist in this matrix.
        "PAYGATE_CHAIN_MAINNET_IDS": "1,31337",
    }
    async with two_mode_stack(database, extra) as services:
        yield services


@pytest.fixture(scope="module")
async def merchant(stack: ServiceStack) -> TwoModeMerchant:
    owner = await two_mode_merchant(stack, "Binder", "binder")
    await stack.session.UpdatePaymentSettings(
        session_pb2.UpdatePaymentSettingsRequest(
            settings=session_pb2.PaymentSettings(
                merchant_id=owner.id,
                default_currency="EUR",
                onchain=session_pb2.OnchainSettings(
                    chain_id=31337, xpub=dev_xpub_from_mnemonic(), min_confirmations=1
                ),
            )
        ),
        timeout=5,
    )
    return owner


async def new_session(
    stack: ServiceStack, merchant: TwoModeMerchant, provider: str, mode: str
) -> dict[str, Any]:
    body: dict[str, Any] = {"amount": "25.00", "currency": "EUR"}
    if provider == "web3":
        body.update(provider="web3", currency="ETH", amount="0.01")
    elif provider != "card":
        body["provider"] = provider
    status, reply = await stack.request("POST", "/v1/sessions", json=body, headers=merchant.key(mode).headers)
    if provider == "web3" and mode == "live" and status in (400, 409, 422):
        pytest.skip(f"no live web3 session on this test chain: {reply}")
    assert status == 201, reply
    assert reply["provider"] == provider, reply
    return reply


async def session_view(
    stack: ServiceStack, merchant: TwoModeMerchant, session: dict[str, Any]
) -> dict[str, Any]:
    status, body = await stack.request(
        "GET", f"/v1/sessions/{session['id']}", headers=merchant.key(session["mode"]).headers
    )
    assert status == 200, body
    return body


async def quarantine_reasons(
    stack: ServiceStack, merchant: TwoModeMerchant, mode: str, session_id: str
) -> list[str]:
    status, body = await stack.request("GET", "/v1/quarantine?limit=100", headers=merchant.key(mode).headers)
    assert status == 200, body
    return [entry["reason"] for entry in body["data"] if entry["session_id"] == session_id]


HTTP_CASES = list(itertools.product(("stripe", "onecom"), MODES, SESSION_PROVIDERS, MODES))


@pytest.mark.parametrize(("event_provider", "event_mode", "session_provider", "session_mode"), HTTP_CASES)
async def test_a_webhook_event_applies_only_to_a_session_of_its_provider_and_mode(
    stack: ServiceStack,
    merchant: TwoModeMerchant,
    event_provider: str,
    event_mode: str,
    session_provider: str,
    session_mode: str,
) -> None:
    session = await new_session(stack, merchant, session_provider, session_mode)
    if session_provider == "web3":
        # The card webhooks carry card money: name the web3 session's own price in a card currency.
        session = {**session, "amount_minor": 2500, "currency": "EUR"}
    send = send_stripe if event_provider == "stripe" else send_onecom
    event_id = await send(stack, event_mode, session)
    row = await final_inbox_row(stack, event_provider, event_id)
    want = expected(event_provider, event_mode, session_provider, session_mode)
    if want == "applied" and session_provider == "web3":
        pytest.fail("a card event can never apply to a web3 session")
    after = await session_view(stack, merchant, session)
    if want == "applied":
        assert (row["status"], row["outcome"]) == ("applied", "applied"), row
        assert after["status"] == "paid", after
        assert after["provider"] == event_provider, after  # a card session is now bound to that rail
        return
    assert (row["status"], row["outcome"]) == ("quarantined", want), row
    assert after["status"] == "created" and after["provider"] == session_provider, after
    assert after["history"] == [], after
    # The entry belongs to the event's own mode: a live event's money is shown to the live world.
    assert await quarantine_reasons(stack, merchant, event_mode, session["id"]) == [want]
    other = "live" if event_mode == "test" else "test"
    assert await quarantine_reasons(stack, merchant, other, session["id"]) == []
    assert row["mode"] == event_mode, row


@pytest.mark.parametrize(
    ("event_mode", "session_provider", "session_mode"),
    list(itertools.product(MODES, SESSION_PROVIDERS, MODES)),
)
async def test_a_web3_event_applies_only_to_a_web3_session_of_its_mode(
    stack: ServiceStack, merchant: TwoModeMerchant, event_mode: str, session_provider: str, session_mode: str
) -> None:
    """web3 payments reach the session service from the chain settlement: the same binding holds there."""
    session = await new_session(stack, merchant, session_provider, session_mode)
    request = session_pb2.ApplyPaymentEventRequest(
        session_id=session["id"],
        provider="web3",
        provider_event_id=f"0x{uuid.uuid4().hex}:0",
        kind=session_pb2.EVENT_KIND_SUCCEEDED,
        provider_reference=f"0x{uuid.uuid4().hex}",
        mode=PROTO_MODE[event_mode],
        amount=common_pb2.Money(
            amount_minor=str(session["amount_minor"]),
            currency=session["currency"],
            exponent=18 if session["currency"] == "ETH" else 2,
        ),
    )
    reply = await stack.session.ApplyPaymentEvent(request, timeout=10)
    outcome = session_pb2.ApplyOutcome.Name(reply.outcome).removeprefix("APPLY_OUTCOME_").lower()
    want = expected("web3", event_mode, session_provider, session_mode)
    assert outcome == want, (outcome, reply)
    after = await session_view(stack, merchant, session)
    if want == "applied":
        assert after["status"] == "paid", after
    else:
        assert after["status"] == "created" and after["provider"] == session_provider, after
        assert await quarantine_reasons(stack, merchant, event_mode, session["id"]) == [want]


async def test_a_card_session_paid_by_onecom_refuses_a_stripe_event(
    stack: ServiceStack, merchant: TwoModeMerchant
) -> None:
    session = await create_session(stack, merchant.test)  # no provider: a card session
    assert session["provider"] == "card", session
    await final_inbox_row(stack, "onecom", await send_onecom(stack, "test", session, "payment.pending"))
    bound = await session_view(stack, merchant, session)
    assert (bound["status"], bound["provider"]) == ("pending", "onecom"), bound
    stripe_row = await final_inbox_row(stack, "stripe", await send_stripe(stack, "test", session))
    assert (stripe_row["status"], stripe_row["outcome"]) == ("quarantined", "provider_mismatch"), stripe_row
    paid_row = await final_inbox_row(stack, "onecom", await send_onecom(stack, "test", session))
    assert paid_row["outcome"] == "applied", paid_row
    after = await session_view(stack, merchant, session)
    assert (after["status"], after["provider"]) == ("paid", "onecom"), after
    assert [move["to"] for move in after["history"]] == ["pending", "paid"], after
    assert await quarantine_reasons(stack, merchant, "test", session["id"]) == ["provider_mismatch"]


async def test_a_live_onecom_event_is_live_because_its_secret_is(
    stack: ServiceStack, merchant: TwoModeMerchant
) -> None:
    """The body of a One.com event says nothing of its mode: a test-signed event never pays a live session,
    and a live-signed one never a test session."""
    live = await new_session(stack, merchant, "onecom", "live")
    test_signed = await final_inbox_row(stack, "onecom", await send_onecom(stack, "test", live))
    assert (test_signed["outcome"], test_signed["mode"]) == ("mode_mismatch", "test"), test_signed
    live_signed = await final_inbox_row(stack, "onecom", await send_onecom(stack, "live", live))
    assert (live_signed["outcome"], live_signed["mode"]) == ("applied", "live"), live_signed
    # Each key sees its own mode's event only.
    for mode, row in (("test", test_signed), ("live", live_signed)):
        status, listed = await stack.request(
            "GET", "/v1/events?limit=100", headers=merchant.key(mode).headers
        )
        assert status == 200, listed
        ids = {event["id"] for event in listed["data"]}
        assert str(row["id"]) in ids, (mode, listed)
        other = live_signed if mode == "test" else test_signed
        assert str(other["id"]) not in ids, (mode, listed)


async def test_an_idempotency_key_belongs_to_one_mode(stack: ServiceStack, merchant: TwoModeMerchant) -> None:
    body = {"amount": "10.00", "currency": "EUR"}
    key = {"Idempotency-Key": f"order-{uuid.uuid4().hex}"}
    status, first = await stack.request(
        "POST", "/v1/sessions", json=body, headers={**merchant.test.headers, **key}
    )
    assert status == 201, first
    status, again = await stack.request(
        "POST", "/v1/sessions", json=body, headers={**merchant.test.headers, **key}
    )
    assert (status, again["id"]) == (201, first["id"])
    status, live = await stack.request(
        "POST", "/v1/sessions", json=body, headers={**merchant.live.headers, **key}
    )
    assert status == 201, live
    assert live["id"] != first["id"] and live["mode"] == "live", live
    status, live_again = await stack.request(
        "POST", "/v1/sessions", json=body, headers={**merchant.live.headers, **key}
    )
    assert (status, live_again["id"]) == (201, live["id"])
    # The session service scopes its own idempotency the same way (a caller without the gateway's store).
    request = session_pb2.CreateSessionRequest(
        merchant_id=merchant.id,
        amount="3.00",
        currency="EUR",
        idempotency_key="rpc-key",
        request_fingerprint="f",
    )
    request.mode = common_pb2.MODE_TEST
    in_test = await stack.session.CreateSession(request, timeout=5)
    request.mode = common_pb2.MODE_LIVE
    in_live = await stack.session.CreateSession(request, timeout=5)
    assert not in_live.replayed and in_live.session.id != in_test.session.id


async def test_an_empty_currency_is_refused_and_a_missing_one_is_the_default(
    stack: ServiceStack, merchant: TwoModeMerchant
) -> None:
    for currency in ("", "   ", None):
        status, body = await stack.request(
            "POST",
            "/v1/sessions",
            json={"amount": "5.00", "currency": currency},
            headers=merchant.test.headers,
        )
        assert (status, body["error"]["code"]) == (400, "invalid_currency"), (currency, body)
    status, body = await stack.request(
        "POST", "/v1/sessions", json={"amount": "5.00"}, headers=merchant.test.headers
    )
    assert (status, body["currency"]) == (201, "EUR"), body


async def test_the_other_modes_session_is_not_found_over_grpc(
    stack: ServiceStack, merchant: TwoModeMerchant
) -> None:
    """The services themselves answer NOT_FOUND for the other mode, so a route cannot leak what it never gets."""
    live = await create_session(stack, merchant.live)
    scope = {"merchant_id": merchant.id, "mode": common_pb2.MODE_TEST}
    calls = [
        stack.session.GetSession(session_pb2.GetSessionRequest(session_id=live["id"], **scope), timeout=5),
        stack.session.ExpireSession(
            session_pb2.ExpireSessionRequest(session_id=live["id"], **scope), timeout=5
        ),
        stack.session.SetProviderCheckout(
            session_pb2.SetProviderCheckoutRequest(
                session_id=live["id"],
                provider_session_id="cs_x",
                provider_checkout_url="https://x.test",
                **scope,
            ),
            timeout=5,
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    found = await stack.session.GetSession(
        session_pb2.GetSessionRequest(
            session_id=live["id"], merchant_id=merchant.id, mode=common_pb2.MODE_LIVE
        ),
        timeout=5,
    )
    assert found.id == live["id"]


async def _attempt(
    stack: ServiceStack, session_id: str, provider: str
) -> session_pb2.ApplyPaymentEventResponse:
    request = session_pb2.ApplyPaymentEventRequest(
        session_id=session_id,
        provider=provider,
        provider_event_id=f"evt_{uuid.uuid4().hex}",
        kind=session_pb2.EVENT_KIND_ATTEMPT_FAILED,
        provider_reference=f"ref_{uuid.uuid4().hex}",
        mode=common_pb2.MODE_TEST,
    )
    return await stack.session.ApplyPaymentEvent(request, timeout=10)


async def test_a_declined_attempt_binds_a_card_session_without_moving_it(
    stack: ServiceStack, merchant: TwoModeMerchant
) -> None:
    """Grouped path (the RPC) and the one-event path (its fallback) bind alike, and only once."""
    session = await create_session(stack, merchant.test)
    reply = await _attempt(stack, session["id"], "stripe")
    assert (reply.outcome, reply.session.provider) == (session_pb2.APPLY_OUTCOME_APPLIED, "stripe")
    other = await _attempt(stack, session["id"], "onecom")
    assert other.outcome == session_pb2.APPLY_OUTCOME_PROVIDER_MISMATCH
    after = await session_view(stack, merchant, session)
    assert (after["status"], after["provider"]) == ("created", "stripe"), after

    alone = await create_session(stack, merchant.test)
    command = EventCommand(
        session_id=alone["id"],
        provider="onecom",
        provider_event_id=f"evt_{uuid.uuid4().hex}",
        kind=EventKind.ATTEMPT_FAILED,
        amount=None,
        provider_reference="txn_alone",
        occurred_at=datetime.now(UTC),
        mode=Mode.TEST,
    )
    applied = await apply_payment_event(stack.pools["session"], command)
    assert (applied.outcome.value, applied.session["provider"]) == ("applied", "onecom")
    paid = await apply_payment_event(
        stack.pools["session"],
        EventCommand(
            session_id=alone["id"],
            provider="stripe",
            provider_event_id=f"evt_{uuid.uuid4().hex}",
            kind=EventKind.SUCCEEDED,
            amount=Money(alone["amount_minor"], "EUR", 2),
            provider_reference="pi_alone",
            occurred_at=datetime.now(UTC),
            mode=Mode.TEST,
        ),
    )
    assert paid.outcome.value == "provider_mismatch"
    view = await session_view(stack, merchant, alone)
    assert (view["status"], view["provider"]) == ("created", "onecom"), view


async def test_two_card_rails_racing_for_one_session_bind_it_once(
    stack: ServiceStack, merchant: TwoModeMerchant
) -> None:
    """Both rails report a payment at the same moment: one pays and binds, the other is provider_mismatch,
    whichever wins (the write is conditional on the provider the decision saw)."""

    async def pay(session: dict[str, Any], provider: str) -> session_pb2.ApplyPaymentEventResponse:
        request = session_pb2.ApplyPaymentEventRequest(
            session_id=session["id"],
            provider=provider,
            provider_event_id=f"evt_{uuid.uuid4().hex}",
            kind=session_pb2.EVENT_KIND_SUCCEEDED,
            provider_reference=f"ref_{provider}_{uuid.uuid4().hex}",
            mode=common_pb2.MODE_TEST,
            amount=common_pb2.Money(amount_minor=str(session["amount_minor"]), currency="EUR", exponent=2),
        )
        return await stack.session.ApplyPaymentEvent(request, timeout=10)

    sessions = [await create_session(stack, merchant.test) for _ in range(10)]
    replies = await asyncio.gather(*(pay(s, p) for s in sessions for p in ("stripe", "onecom")))
    for index, session in enumerate(sessions):
        stripe, onecom = replies[2 * index], replies[2 * index + 1]
        outcomes = sorted(
            session_pb2.ApplyOutcome.Name(r.outcome).removeprefix("APPLY_OUTCOME_").lower()
            for r in (stripe, onecom)
        )
        assert outcomes == ["applied", "provider_mismatch"], outcomes
        winner = "stripe" if stripe.outcome == session_pb2.APPLY_OUTCOME_APPLIED else "onecom"
        after = await session_view(stack, merchant, session)
        assert (after["status"], after["provider"]) == ("paid", winner), after
