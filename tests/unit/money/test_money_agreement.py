"""Every unit the session service accepts, billing invoices and the gateway parses, in both directions.

Each service is driven through its own entry point (the session's pricing, billing's invoice draft, the
gateway's Stripe normaliser), not through paygate_runtime.money directly, so a service that grew its own
table again would fail here. Before the shared module, billing refused `UNI`, `OP`, `X` and a 6-decimal
`DAI` that the session service had accepted (a paid session without an invoice), and BGN was accepted.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_service.domain.invoices import Address, Party, draft_invoice
from paygate_dev.devtools.signing import encode_body, sign_stripe
from paygate_dev.devtools.stripe_fixtures import build_onecom_event, build_stripe_event
from paygate_runtime.errors import InvalidArgument
from paygate_runtime.money import BUILTIN_CURRENCIES, ISO_4217, Currency, CurrencyKind
from paygate_runtime.money.currencies import ISO_RESERVED, NOT_PAYABLE, WITHDRAWN
from paygate_runtime.money.stripe_minor_units import stripe_exponent
from session_service.domain.payment_settings import (
    AcceptedToken,
    OnchainSettings,
    PaymentSettings,
    price_currency,
    validate_settings,
)
from webhook_gateway.providers.normalized import NormalizedEvent, VerifiedEnvelope
from webhook_gateway.providers.standard_webhooks import normalize_onecom
from webhook_gateway.providers.stripe_webhooks import normalize_stripe, verify_stripe

NOW = 1_750_000_000
SECRET = "whsec_money_agreement"
SESSION = str(uuid.uuid4())
TOKEN_ADDRESS = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
SELLER = Party(name="Seller GmbH", address=Address(country="DE"))
CARD = PaymentSettings(merchant_id="m1")


# --- each service through its own entry point -------------------------------------------------------------


def session_prices(code: str, tokens: dict[str, int] | None = None) -> Currency:
    """The unit the session service prices a new session in (web3 for ETH and tokens, else a card)."""
    if tokens is None and code.upper() not in {"ETH"} and code.upper() in ISO_4217:
        return price_currency(CARD, "stripe", code)
    onchain = OnchainSettings(
        chain_id=1,
        xpub="xpub-test",
        min_confirmations=1,
        tokens=tuple(
            AcceptedToken(f"0x{index + 1:040x}", symbol, decimals)
            for index, (symbol, decimals) in enumerate((tokens or {}).items())
        ),
    )
    settings_ = validate_settings("m1", "EUR", onchain)
    return price_currency(settings_, "web3", code)


def billing_invoices(code: str, exponent: int) -> tuple[str, int]:
    draft = draft_invoice(
        merchant_id="m1", mode="test", session_id="s1", amount_minor=1, currency=code, exponent=exponent,
        seller=SELLER, buyer=Party(email="buyer@example.com"),
    )  # fmt: skip
    return draft.currency, draft.exponent


def gateway_parses(stripe_currency: str, stripe_amount: int) -> NormalizedEvent:
    event: dict[str, Any] = build_stripe_event(
        "payment_intent.succeeded", SESSION, stripe_amount, stripe_currency, created=NOW - 5,
        amount_is_stripe_units=True,
    )  # fmt: skip
    raw = encode_body(event)
    return normalize_stripe(verify_stripe(raw, sign_stripe(raw, SECRET, NOW), [SECRET], now=NOW))


def gateway_parses_onecom(currency: str, amount_minor: int) -> NormalizedEvent:
    body = build_onecom_event("payment.succeeded", SESSION, amount_minor, currency, "txn_1")
    return normalize_onecom(VerifiedEnvelope("msg_1", body["type"], body, encode_body(body)))


def refused(call: Any, *args: Any) -> str:
    with pytest.raises(InvalidArgument) as caught:
        call(*args)
    return caught.value.code


# --- ISO 4217 currencies ----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(ISO_4217))
def test_every_payable_iso_currency_is_accepted_invoiced_and_parsed_alike(code: str) -> None:
    priced = session_prices(code)
    assert (priced.code, priced.kind) == (code, CurrencyKind.FIAT)
    assert priced.exponent == ISO_4217[code].exponent
    assert session_prices(code.lower()) == priced  # Stripe and clients may send lower case
    assert billing_invoices(code, priced.exponent) == (code, priced.exponent)
    # Stripe sends the code in lower case and the amount in its own minor units: 7 whole units.
    event = gateway_parses(code.lower(), 7 * 10 ** stripe_exponent(code))
    assert event.ignore_reason is None, event
    assert (event.currency, event.exponent) == (code, priced.exponent)
    assert event.amount_minor == 7 * 10**priced.exponent
    # One.com sends ISO minor units already; the gateway reads the same exponent.
    onecom = gateway_parses_onecom(code.lower(), 7 * 10**priced.exponent)
    assert (onecom.currency, onecom.exponent, onecom.amount_minor) == (
        code,
        priced.exponent,
        event.amount_minor,
    )


@pytest.mark.parametrize("code", sorted(NOT_PAYABLE) + sorted(WITHDRAWN))
def test_fund_metal_and_withdrawn_codes_are_refused_everywhere(code: str) -> None:
    assert refused(session_prices, code) == "unknown_currency"
    assert refused(session_prices, code, {code: 2}) == "token_conflicts_with_currency"
    for exponent in (0, 2, 4):
        assert refused(billing_invoices, code, exponent) == "unknown_currency"
    # The gateway still reads a Stripe event in such a code, but never as a currency any session uses:
    # the session service then quarantines it as a currency mismatch (the money stays visible).
    event = gateway_parses(code.lower(), 500)
    assert event.currency == code and event.currency not in BUILTIN_CURRENCIES


@settings(max_examples=300, deadline=None)
@given(code=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3))
def test_gateway_to_session_any_three_letter_code(code: str) -> None:
    """Whatever Stripe reports, the gateway's reading and the session's pricing agree on the exponent, and a
    code the session cannot price a card session in is never read as a payable currency."""
    event = gateway_parses(code.lower(), 1000)
    assert event.ignore_reason is None and event.currency == code
    try:
        priced = price_currency(CARD, "stripe", code)
    except InvalidArgument:
        assert code not in ISO_4217
        return
    assert code in ISO_4217 and event.exponent == priced.exponent


def test_bgn_is_withdrawn_since_bulgaria_adopted_the_euro() -> None:
    assert "BGN" not in ISO_4217 and WITHDRAWN["BGN"] == "EUR"
    with pytest.raises(InvalidArgument) as caught:
        session_prices("BGN")
    assert "withdrawn" in caught.value.message and "EUR" in caught.value.message
    assert refused(billing_invoices, "BGN", 2) == "unknown_currency"


@pytest.mark.parametrize(("code", "wrong"), [("EUR", 3), ("JPY", 2), ("ISK", 2), ("KWD", 2), ("ETH", 6)])
def test_billing_refuses_a_known_code_with_another_exponent(code: str, wrong: int) -> None:
    assert refused(billing_invoices, code, wrong) == "invalid_exponent"


def test_every_builtin_the_session_knows_is_one_billing_invoices() -> None:
    for code, unit in BUILTIN_CURRENCIES.items():
        assert billing_invoices(code, unit.exponent) == (code, unit.exponent)


# --- ETH and merchant tokens ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "decimals"),
    [("UNI", 18), ("OP", 18), ("X", 0), ("DAI", 6), ("DAI", 18), ("USDC", 6), ("TUSD", 6), ("PYUSD", 6)],
)
def test_a_paid_token_session_can_always_be_invoiced(symbol: str, decimals: int) -> None:
    priced = session_prices(symbol, {symbol: decimals})
    assert (priced.code, priced.exponent, priced.kind) == (symbol, decimals, CurrencyKind.TOKEN)
    assert billing_invoices(priced.code, priced.exponent) == (symbol, decimals)


def test_eth_is_built_in_with_18_decimals() -> None:
    assert session_prices("eth", {}) == Currency("ETH", 18, CurrencyKind.CRYPTO)
    assert billing_invoices("ETH", 18) == ("ETH", 18)
    assert refused(session_prices, "ETH", {"ETH": 18}) == "token_conflicts_with_currency"


SYMBOLS = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=11
)
ANY_CODE = st.one_of(SYMBOLS, st.sampled_from(sorted(ISO_RESERVED | {"ETH"})), st.text(max_size=13))
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(symbol=ANY_CODE, decimals=st.integers(min_value=-2, max_value=20))
def test_session_to_billing_whatever_a_merchant_token_prices_billing_invoices(
    symbol: str, decimals: int
) -> None:
    try:
        priced = session_prices(symbol, {symbol: decimals})
    except InvalidArgument:
        return
    assert billing_invoices(priced.code, priced.exponent) == (priced.code, priced.exponent)


@PROPERTY
@given(code=ANY_CODE, exponent=st.integers(min_value=-2, max_value=20))
def test_billing_to_session_whatever_billing_invoices_a_session_can_be_priced_in(
    code: str, exponent: int
) -> None:
    try:
        invoiced = billing_invoices(code, exponent)
    except InvalidArgument:
        return
    builtin = BUILTIN_CURRENCIES.get(code)
    if builtin is not None:
        assert builtin.exponent == exponent
        assert session_prices(code, {} if code == "ETH" else None) == builtin
    else:
        # Not built in: billing took it as a token, so a merchant can configure exactly that token.
        priced = session_prices(code, {code: exponent})
        assert (priced.code, priced.exponent) == invoiced
