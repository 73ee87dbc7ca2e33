"""A session paid in a merchant-configured token gets its invoice, whatever the token is called.

Before paygate_runtime.money, the session service accepted tokens such as `UNI`, `OP`, `X` or a 6-decimal
`DAI`, and billing refused to invoice them (its own table knew only 4+ letter tokens and an 18-decimal DAI):
the session was paid and its fulfilment retried for ever without an invoice, key or access link. Real
services throughout: session, billing, keys and the gateway on a throwaway PostgreSQL.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from support.stack import Merchant, ServiceStack
from support.web3_chain import create_web3_session, random_xpub, wait_for

# Addresses only need to be well-formed: nothing is sent to them, the payment event is applied directly.
TOKENS = {"UNI": 18, "OP": 18, "X": 0, "DAI": 6}


# No node is configured for this chain, so the settings are stored without asking the token contracts
# (their symbol and decimals are checked against the chain only when a node for it is configured).
CHAIN_WITHOUT_NODE = 11155111


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    # Fulfilment retries quickly, so a refused invoice would show as "never done" within the waits below.
    return {**stack_env, "PAYGATE_OUTBOX_POLL_MS": "100", "PAYGATE_FULFILMENT_BACKOFF_BASE_MS": "50"}


async def _token_merchant(stack: ServiceStack, tokens: dict[str, tuple[str, int]]) -> Merchant:
    merchant = await stack.create_merchant("Token Shop", f"tok{uuid.uuid4().hex[:6]}")
    await stack.session.UpdatePaymentSettings(
        session_pb2.UpdatePaymentSettingsRequest(
            settings=session_pb2.PaymentSettings(
                merchant_id=merchant.id,
                default_currency="EUR",
                onchain=session_pb2.OnchainSettings(
                    chain_id=CHAIN_WITHOUT_NODE,
                    xpub=random_xpub(),
                    min_confirmations=1,
                    tokens=[
                        session_pb2.AcceptedToken(address=address, symbol=symbol, decimals=decimals)
                        for symbol, (address, decimals) in tokens.items()
                    ],
                ),
            )
        ),
        timeout=10,
    )
    return merchant


async def _invoice_of(stack: ServiceStack, merchant: Merchant, session_id: str) -> dict[str, Any] | None:
    status, body = await stack.request("GET", f"/v1/sessions/{session_id}", headers=merchant.headers)
    assert status == 200, body
    if not body.get("invoice_id"):
        return None
    status, invoice = await stack.request(
        "GET", f"/v1/invoices/{body['invoice_id']}", headers=merchant.headers
    )
    assert status == 200, invoice
    return invoice


async def test_paid_sessions_in_merchant_tokens_get_their_invoices(stack: ServiceStack) -> None:
    merchant = await _token_merchant(
        stack,
        {
            symbol: (f"0x{index + 1:040x}", decimals)
            for index, (symbol, decimals) in enumerate(TOKENS.items())
        },
    )
    for symbol, decimals in TOKENS.items():
        session = await create_web3_session(stack, merchant, "12", symbol.lower())
        assert (session["currency"], session["amount_minor"]) == (symbol, 12 * 10**decimals)
        reply = await stack.session.ApplyPaymentEvent(
            session_pb2.ApplyPaymentEventRequest(
                session_id=session["id"],
                provider="web3",
                provider_event_id=f"evt_{uuid.uuid4().hex}",
                kind=session_pb2.EVENT_KIND_SUCCEEDED,
                provider_reference=f"0x{uuid.uuid4().hex}{uuid.uuid4().hex}:0",
                amount=common_pb2.Money(
                    amount_minor=str(12 * 10**decimals), currency=symbol, exponent=decimals
                ),
            ),
            timeout=10,
        )
        assert reply.session.status == session_pb2.SESSION_STATUS_PAID, reply
        invoice = await wait_for(
            lambda sid=session["id"]: _invoice_of(stack, merchant, sid),
            timeout=30,
            what=f"the invoice of a session paid in {symbol}",
        )
        assert invoice["currency"] == symbol
        assert invoice["amount_minor"] == 12 * 10**decimals
        assert invoice["amount"] == ("12" if decimals == 0 else "12." + "0" * decimals)
        assert invoice["session_id"] == session["id"]


@pytest.mark.parametrize("currency", ["BGN", "bgn", "XAU", "CLF", "HRK"])
async def test_withdrawn_and_fund_codes_are_refused_at_the_api(stack: ServiceStack, currency: str) -> None:
    merchant = await stack.create_merchant("Card Shop", f"card{uuid.uuid4().hex[:6]}")
    status, body = await stack.request(
        "POST", "/v1/sessions", json={"amount": "10.00", "currency": currency}, headers=merchant.headers
    )
    assert 400 <= status < 500, body
    assert body["error"]["code"] == "unknown_currency", body
