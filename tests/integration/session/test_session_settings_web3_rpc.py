"""Payment settings, web3 deposit allocation, the chain watcher's look-ups, alerts and provider checkout."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from session_itest_support import STATUS, apply, create_session

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from paygate_runtime.grpc_errors import error_code
from session_service.domain.deposit_addresses import derive_deposit_address, dev_xpub_from_mnemonic
from support.stack import ServiceStack

TOKEN = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
CHAIN = 31337


async def _configure(stack: ServiceStack, merchant_id: str) -> session_pb2.PaymentSettings:
    return await stack.session.UpdatePaymentSettings(
        session_pb2.UpdatePaymentSettingsRequest(
            settings=session_pb2.PaymentSettings(
                merchant_id=merchant_id,
                default_currency="USD",
                onchain=session_pb2.OnchainSettings(
                    chain_id=CHAIN,
                    xpub=dev_xpub_from_mnemonic(),
                    min_confirmations=2,
                    tokens=[session_pb2.AcceptedToken(address=TOKEN, symbol="usdc", decimals=6)],
                ),
            )
        ),
        timeout=5,
    )


async def _expect_error(call: object, code: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert error_code(caught.value) == code, caught.value
    return caught.value


async def test_default_settings_and_web3_refused_without_onchain(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    settings = await stack.session.GetPaymentSettings(
        session_pb2.GetPaymentSettingsRequest(merchant_id=merchant.id), timeout=5
    )
    assert settings.default_currency == "EUR" and not settings.HasField("onchain")
    error = await _expect_error(
        create_session(stack, merchant.id, "0.5", provider="web3", currency="ETH"), "onchain_not_configured"
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    status, body = await stack.request(
        "POST", "/v1/sessions", json={"amount": "1", "provider": "web3"}, headers=merchant.headers
    )
    assert (status, body["error"]["code"]) == (409, "onchain_not_configured")


async def test_settings_validation(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    bad_xpub = session_pb2.PaymentSettings(
        merchant_id=merchant.id,
        onchain=session_pb2.OnchainSettings(chain_id=1, xpub="xpubnope", min_confirmations=1),
    )
    await _expect_error(
        stack.session.UpdatePaymentSettings(
            session_pb2.UpdatePaymentSettingsRequest(settings=bad_xpub), timeout=5
        ),
        "invalid_xpub",
    )
    eth_token = session_pb2.PaymentSettings(
        merchant_id=merchant.id,
        onchain=session_pb2.OnchainSettings(
            chain_id=1,
            xpub=dev_xpub_from_mnemonic(),
            min_confirmations=1,
            tokens=[session_pb2.AcceptedToken(address=TOKEN, symbol="ETH", decimals=18)],
        ),
    )
    await _expect_error(
        stack.session.UpdatePaymentSettings(
            session_pb2.UpdatePaymentSettingsRequest(settings=eth_token), timeout=5
        ),
        "token_conflicts_with_currency",
    )
    await _expect_error(
        stack.session.UpdatePaymentSettings(
            session_pb2.UpdatePaymentSettingsRequest(
                settings=session_pb2.PaymentSettings(merchant_id=merchant.id, default_currency="ETH")
            ),
            timeout=5,
        ),
        "invalid_default_currency",
    )


async def test_web3_sessions_get_unique_addresses_in_eth_or_tokens(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    saved = await _configure(stack, merchant.id)
    assert saved.onchain.tokens[0].symbol == "USDC"
    assert saved.onchain.tokens[0].address == "0x5FbDB2315678afecb367f032d93F642f64180aa3"  # EIP-55
    sessions = await asyncio.gather(
        *(create_session(stack, merchant.id, "0.25", provider="web3", currency="ETH") for _ in range(10))
    )
    indexes = sorted(s.payment.derivation_index for s in sessions)
    assert indexes == list(range(10))
    xpub = dev_xpub_from_mnemonic()
    for s in sessions:
        assert s.payment.deposit_address == derive_deposit_address(xpub, s.payment.derivation_index)
        assert (s.payment.chain_id, s.payment.min_confirmations, s.payment.token) == (CHAIN, 2, "")
        assert (s.amount.currency, s.amount.exponent, s.amount.amount_minor) == ("ETH", 18, str(25 * 10**16))
    token_session = await create_session(stack, merchant.id, "12.5", provider="web3", currency="USDC")
    assert token_session.payment.token == "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    assert (token_session.amount.exponent, token_session.amount.amount_minor) == (6, "12500000")
    await _expect_error(
        create_session(stack, merchant.id, "1", provider="web3", currency="EUR"), "currency_not_supported"
    )
    await _expect_error(
        create_session(stack, merchant.id, "1", provider="onecom", currency="ETH"), "currency_not_supported"
    )
    # The merchant's default currency now applies to fiat sessions that name none.
    fiat = await create_session(stack, merchant.id, "3.00")
    assert fiat.amount.currency == "USD"
    after = await stack.session.GetPaymentSettings(
        session_pb2.GetPaymentSettingsRequest(merchant_id=merchant.id), timeout=5
    )
    assert after.next_derivation_index == 11

    status, body = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": "0.1", "currency": "ETH", "provider": "web3"},
        headers=merchant.headers,
    )
    assert status == 201 and body["payment"]["chain_id"] == CHAIN and body["payment"]["token"] is None
    assert body["amount_minor"] == 10**17

    found = await stack.session.GetSessionByDepositAddress(
        session_pb2.GetSessionByDepositAddressRequest(
            chain_id=CHAIN, deposit_address=sessions[3].payment.deposit_address.lower()
        ),
        timeout=5,
    )
    assert found.id == sessions[3].id
    await _expect_error(
        stack.session.GetSessionByDepositAddress(
            session_pb2.GetSessionByDepositAddressRequest(
                chain_id=1, deposit_address=sessions[3].payment.deposit_address
            ),
            timeout=5,
        ),
        "session_not_found",
    )
    await apply(stack, sessions[0].id, "pending", provider="web3", reference="0xabc")
    await apply(stack, sessions[1].id, "failed", provider="web3", reference="0xdef")
    active = await stack.session.ListActiveDeposits(
        session_pb2.ListActiveDepositsRequest(chain_id=CHAIN), timeout=5
    )
    ids = {d.session_id for d in active.deposits}
    assert sessions[0].id in ids and sessions[1].id not in ids and token_session.id in ids
    with_closed = await stack.session.ListActiveDeposits(
        session_pb2.ListActiveDepositsRequest(chain_id=CHAIN, include_closed_within_seconds=600), timeout=5
    )
    assert sessions[1].id in {d.session_id for d in with_closed.deposits}
    by_id = {d.session_id: d for d in active.deposits}
    assert STATUS[by_id[sessions[0].id].status] == "pending"
    assert by_id[token_session.id].payment.token == token_session.payment.token


async def test_alerts_are_idempotent_and_provider_checkout_is_set_once(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant.id, provider="stripe", expires_in_seconds=3600)
    for _ in range(2):
        alerted = await stack.session.RaiseSessionAlert(
            session_pb2.RaiseSessionAlertRequest(
                session_id=session.id, code="reorged_after_paid", detail="block gone", reference="0xtx"
            ),
            timeout=5,
        )
    assert [(a.code, a.reference) for a in alerted.alerts] == [("reorged_after_paid", "0xtx")]
    request = session_pb2.SetProviderCheckoutRequest(
        session_id=session.id,
        merchant_id=merchant.id,
        provider_session_id="cs_test_1",
        provider_checkout_url="https://checkout.stripe.com/c/pay/cs_test_1",
    )
    first = await stack.session.SetProviderCheckout(request, timeout=5)
    again = await stack.session.SetProviderCheckout(request, timeout=5)
    assert first.provider_session_id == again.provider_session_id == "cs_test_1"
    request.provider_session_id = "cs_test_2"
    await _expect_error(stack.session.SetProviderCheckout(request, timeout=5), "provider_checkout_conflict")
    _status, body = await stack.request("GET", f"/v1/sessions/{session.id}", headers=merchant.headers)
    assert body["provider_checkout_url"] == "https://checkout.stripe.com/c/pay/cs_test_1"
    assert body["alerts"][0]["code"] == "reorged_after_paid"
    assert body["mode"] == "test"
    assert first.mode == common_pb2.MODE_TEST
