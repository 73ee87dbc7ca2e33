"""A merchant's payment settings, and which currency a new session is priced in.

Pure: the storage layer loads the settings row into `PaymentSettings`, the use case asks
`price_currency(...)` which currency applies and `web3_target(...)` where the money goes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from paygate_runtime.errors import FailedPrecondition, InvalidArgument
from paygate_runtime.money import (
    NATIVE_COIN,
    Currency,
    CurrencyKind,
    Money,
    normalise_code,
    resolve_currency,
    validate_token_definitions,
)
from paygate_runtime.money.stripe_minor_units import stripe_charge_refusal

DEFAULT_CURRENCY = "EUR"
PROVIDERS = ("stripe", "onecom", "web3")
# A session created without a provider is a card session: either card rail may pay it, and the first payment
# event binds it (contract §6a; the binding is decided in domain.payment_events).
DEFAULT_PROVIDER = "card"
MAX_MIN_CONFIRMATIONS = 10_000

_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")


@dataclass(frozen=True, slots=True)
class AcceptedToken:
    address: str
    symbol: str
    decimals: int


@dataclass(frozen=True, slots=True)
class OnchainSettings:
    chain_id: int
    xpub: str
    min_confirmations: int
    tokens: tuple[AcceptedToken, ...] = ()

    def token_decimals(self) -> dict[str, int]:
        return {token.symbol: token.decimals for token in self.tokens}

    def token(self, symbol: str) -> AcceptedToken | None:
        for token in self.tokens:
            if token.symbol == symbol:
                return token
        return None


@dataclass(frozen=True, slots=True)
class PaymentSettings:
    merchant_id: str
    default_currency: str = DEFAULT_CURRENCY
    onchain: OnchainSettings | None = None
    next_derivation_index: int = 0


@dataclass(frozen=True, slots=True)
class Web3Target:
    """Where a web3 session is paid: chain, confirmations, and the token contract (None for ETH)."""

    chain_id: int
    min_confirmations: int
    token_address: str | None


def parse_provider(raw: str) -> str:
    """Empty means a card session (`card`, not yet bound to a rail); anything else must be one we speak."""
    if not raw:
        return DEFAULT_PROVIDER
    if raw not in PROVIDERS:
        raise InvalidArgument("invalid_provider", "provider must be stripe, onecom or web3", field="provider")
    return raw


def check_chargeable(provider: str, amount: Money) -> None:
    """A session bound to Stripe must be priced in an amount Stripe can charge: three-decimal currencies only in
    multiples of 10 of their minor unit (KWD 1.230, not 1.234), ISK and UGX in whole units. Anything else could
    never get its Checkout Session, so it is refused at creation (InvalidArgument `amount_not_chargeable`).
    One.com sessions keep such an amount. So do card sessions here: which card rails exist is the gateway's
    configuration, so the gateway refuses a card session none of its rails can charge, and a card session's
    page offers no Stripe button for such an amount."""
    if provider != "stripe":
        return
    reason = stripe_charge_refusal(amount.amount_minor, amount.currency, amount.exponent)
    if reason is not None:
        # The gateway refuses a card session that only Stripe could take with this very code and message.
        raise InvalidArgument("amount_not_chargeable", f"amount: {reason}", field="amount")


def price_currency(settings: PaymentSettings, provider: str, raw_currency: str) -> Currency:
    """The currency a session is priced in: the one asked for, or the merchant's default.

    A web3 session is priced in ETH or one of the merchant's accepted tokens, and needs on-chain settings
    (FailedPrecondition `onchain_not_configured`). Card and bank providers take fiat only: ETH or a token
    there is `currency_not_supported` (the provider could never collect it).
    """
    if provider == "web3":
        if settings.onchain is None:
            raise FailedPrecondition(
                "onchain_not_configured",
                "this merchant has no on-chain settings; configure them before creating web3 sessions",
                field="provider",
            )
        currency = resolve_currency(raw_currency or NATIVE_COIN, settings.onchain.token_decimals())
        if currency.kind is CurrencyKind.FIAT:
            raise InvalidArgument(
                "currency_not_supported",
                f"a web3 session is priced in {NATIVE_COIN} or an accepted token, not {currency.code}",
                field="currency",
            )
        return currency
    # The merchant's accepted tokens are known here too, so that one of them is refused as a currency this
    # provider cannot collect (as ETH is), not as an unknown code.
    tokens = settings.onchain.token_decimals() if settings.onchain is not None else None
    currency = resolve_currency(raw_currency or settings.default_currency, tokens)
    if currency.kind is not CurrencyKind.FIAT:
        raise InvalidArgument(
            "currency_not_supported",
            f"{provider} sessions cannot be priced in {currency.code}",
            field="currency",
        )
    return currency


def web3_target(onchain: OnchainSettings, currency: Currency) -> Web3Target:
    token = None if currency.code == NATIVE_COIN else onchain.token(currency.code)
    if currency.code != NATIVE_COIN and token is None:
        raise InvalidArgument("unknown_currency", f"token {currency.code} is not accepted", field="currency")
    return Web3Target(onchain.chain_id, onchain.min_confirmations, token.address if token else None)


def validate_settings(
    merchant_id: str,
    default_currency: str,
    onchain: OnchainSettings | None,
    *,
    checksum: Callable[[str], str] | None = None,
    validate_xpub: Callable[[str], str] | None = None,
) -> PaymentSettings:
    """Check new settings and return them normalised.

    `checksum` turns a token address into its EIP-55 form and `validate_xpub` checks the xpub; both are
    injected so that this module needs neither web3 nor bip-utils.
    """
    if not merchant_id:
        raise InvalidArgument("missing_merchant_id", "merchant_id is required", field="merchant_id")
    default = resolve_currency(default_currency or DEFAULT_CURRENCY, field="default_currency")
    if default.kind is not CurrencyKind.FIAT:
        raise InvalidArgument(
            "invalid_default_currency",
            "the default currency must be a fiat currency",
            field="default_currency",
        )
    if onchain is None:
        return PaymentSettings(merchant_id, default.code, None)
    if not 0 < onchain.chain_id < 2**53:
        raise InvalidArgument("invalid_chain_id", "chain_id must be a positive integer", field="chain_id")
    if not 1 <= onchain.min_confirmations <= MAX_MIN_CONFIRMATIONS:
        raise InvalidArgument(
            "invalid_min_confirmations",
            f"min_confirmations must be 1..{MAX_MIN_CONFIRMATIONS}",
            field="min_confirmations",
        )
    xpub = validate_xpub(onchain.xpub) if validate_xpub else onchain.xpub.strip()
    tokens: list[AcceptedToken] = []
    seen_addresses: set[str] = set()
    for token in onchain.tokens:
        symbol = normalise_code(token.symbol, field="token_symbol")
        if symbol == NATIVE_COIN:
            raise InvalidArgument(
                "token_conflicts_with_currency",
                f"{NATIVE_COIN} is the native coin, not a token",
                field="tokens",
            )
        if not isinstance(token.address, str) or not _ADDRESS_RE.fullmatch(token.address):
            raise InvalidArgument(
                "invalid_token_address", f"token {symbol}: bad contract address", field="tokens"
            )
        address = checksum(token.address) if checksum else token.address
        if address.lower() in seen_addresses:
            raise InvalidArgument(
                "duplicate_token_address", f"token {address} is listed twice", field="tokens"
            )
        seen_addresses.add(address.lower())
        tokens.append(AcceptedToken(address, symbol, token.decimals))
    checked = validate_token_definitions({t.symbol: t.decimals for t in tokens})
    if len(checked) != len(tokens):
        raise InvalidArgument("duplicate_token_symbol", "a token symbol is listed twice", field="tokens")
    return PaymentSettings(
        merchant_id,
        default.code,
        OnchainSettings(onchain.chain_id, xpub, onchain.min_confirmations, tuple(tokens)),
    )


# Mainnet chain ids a live web3 session may settle on, unless PAYGATE_CHAIN_MAINNET_IDS says otherwise.
DEFAULT_MAINNET_CHAIN_IDS: frozenset[int] = frozenset({1})


def require_chain_for_mode(chain_id: int, mode: str, mainnet_chain_ids: frozenset[int]) -> None:
    """A live session's money must be real: refuse a live web3 session on a test chain (contract §6a).

    FailedPrecondition `test_chain_in_live_mode`: the merchant's on-chain settings name a chain that is not
    one of the configured mainnet ids, so a live key cannot sell on it. Test sessions may use any chain.
    """
    if mode == "live" and chain_id not in mainnet_chain_ids:
        allowed = ", ".join(str(c) for c in sorted(mainnet_chain_ids)) or "none"
        raise FailedPrecondition(
            "test_chain_in_live_mode",
            f"chain {chain_id} is not a mainnet chain ({allowed}); live web3 sessions need one",
            field="mode",
        )


def check_token_metadata(token: AcceptedToken, symbol_on_chain: str, decimals_on_chain: int) -> None:
    """Refuse a token whose configured symbol or decimals differ from what its contract says.

    Wrong decimals would price every session 10^k times too high or too low, so they must match exactly.
    The symbol is compared case-insensitively (contracts are inconsistent about case; our codes are upper).
    """
    if decimals_on_chain != token.decimals:
        raise InvalidArgument(
            "token_decimals_mismatch",
            f"token {token.symbol} at {token.address} has {decimals_on_chain} decimals on chain, "
            f"not {token.decimals}",
            field="tokens",
        )
    if symbol_on_chain.strip().upper() != token.symbol.upper():
        raise InvalidArgument(
            "token_symbol_mismatch",
            f"token at {token.address} is {symbol_on_chain!r} on chain, not {token.symbol}",
            field="tokens",
        )
