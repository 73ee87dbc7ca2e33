"""Which currency a new session is priced in, and validation of a merchant's payment settings."""

from __future__ import annotations

import pytest

from paygate_runtime.errors import FailedPrecondition, InvalidArgument
from paygate_runtime.money import CurrencyKind
from session_service.domain.payment_settings import (
    AcceptedToken,
    OnchainSettings,
    PaymentSettings,
    parse_provider,
    price_currency,
    validate_settings,
    web3_target,
)

USDC = AcceptedToken("0x5FbDB2315678afecb367f032d93F642f64180aa3", "USDC", 6)
ONCHAIN = OnchainSettings(31337, "xpub-test", 3, (USDC,))


def test_fiat_sessions_use_the_default_currency_and_refuse_crypto() -> None:
    settings = PaymentSettings("m", "JPY")
    assert price_currency(settings, "onecom", "").code == "JPY"
    assert price_currency(settings, "stripe", "eur").code == "EUR"
    for code in ("ETH", "USDC"):
        with pytest.raises(InvalidArgument) as caught:
            price_currency(PaymentSettings("m", onchain=ONCHAIN), "onecom", code)
        # The merchant's own token is a currency paygate knows, which a card or bank provider cannot collect.
        assert caught.value.code == "currency_not_supported", code


def test_web3_needs_onchain_settings_and_takes_eth_or_tokens() -> None:
    with pytest.raises(FailedPrecondition) as caught:
        price_currency(PaymentSettings("m"), "web3", "ETH")
    assert caught.value.code == "onchain_not_configured"
    settings = PaymentSettings("m", onchain=ONCHAIN)
    eth = price_currency(settings, "web3", "")
    assert (eth.code, eth.exponent, eth.kind) == ("ETH", 18, CurrencyKind.CRYPTO)
    usdc = price_currency(settings, "web3", "usdc")
    assert (usdc.code, usdc.exponent) == ("USDC", 6)
    assert web3_target(ONCHAIN, usdc).token_address == USDC.address
    assert web3_target(ONCHAIN, eth).token_address is None
    with pytest.raises(InvalidArgument) as caught:
        price_currency(settings, "web3", "EUR")
    assert caught.value.code == "currency_not_supported"


def test_provider_parsing() -> None:
    # No provider: a card session that either card rail may pay until the first payment event binds it.
    assert parse_provider("") == "card"
    assert parse_provider("web3") == "web3"
    with pytest.raises(InvalidArgument):
        parse_provider("paypal")


@pytest.mark.parametrize(
    ("onchain", "code"),
    [
        (OnchainSettings(0, "x", 1), "invalid_chain_id"),
        (OnchainSettings(1, "x", 0), "invalid_min_confirmations"),
        (OnchainSettings(1, "x", 1, (AcceptedToken("0x12", "USDC", 6),)), "invalid_token_address"),
        (
            OnchainSettings(1, "x", 1, (AcceptedToken(USDC.address, "ETH", 18),)),
            "token_conflicts_with_currency",
        ),
        (
            OnchainSettings(1, "x", 1, (AcceptedToken(USDC.address, "USD", 6),)),
            "token_conflicts_with_currency",
        ),
        (
            OnchainSettings(1, "x", 1, (USDC, AcceptedToken(USDC.address.lower(), "USDT", 6))),
            "duplicate_token_address",
        ),
        (OnchainSettings(1, "x", 1, (AcceptedToken(USDC.address, "USDC", 19),)), "invalid_token_decimals"),
    ],
)
def test_bad_onchain_settings_are_refused(onchain: OnchainSettings, code: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_settings("m", "EUR", onchain)
    assert caught.value.code == code


def test_settings_are_normalised() -> None:
    token = AcceptedToken(USDC.address.lower(), "usdc", 6)
    settings = validate_settings("m", "usd", OnchainSettings(1, " xpub ", 2, (token,)), checksum=str.upper)
    assert settings.default_currency == "USD"
    assert settings.onchain is not None and settings.onchain.xpub == "xpub"
    assert settings.onchain.tokens == (AcceptedToken(USDC.address.lower().upper(), "USDC", 6),)
    with pytest.raises(InvalidArgument) as caught:
        validate_settings("m", "ETH", None)
    assert caught.value.code == "invalid_default_currency"
