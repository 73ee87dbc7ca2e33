"""The currency table: which codes a session may be priced in, and each one's exponent (digits of minor unit).

ISO 4217 gives the fiat exponents. Fund codes (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI, UYW), precious
metals, SDR/test codes and withdrawn codes (HRK, SLL, ZWL, CUC, ANG) are left out on purpose: nobody pays a
checkout in them, and accepting them would only widen what a typo can do. ETH is the one built-in crypto
currency. ERC-20 tokens are NOT built in, because a token's decimals depend on the contract (USDT has 6 on
Ethereum and 18 on BNB Chain): they come from the merchant's on-chain settings as symbol -> decimals.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from paygate_runtime.errors import InvalidArgument

# Billing refuses wider exponents; ETH's 18 is the widest a session needs.
MAX_EXPONENT = 18


class CurrencyKind(StrEnum):
    FIAT = "fiat"
    CRYPTO = "crypto"
    TOKEN = "token"


@dataclass(frozen=True, slots=True)
class Currency:
    code: str
    exponent: int
    kind: CurrencyKind


_ZERO_DECIMAL = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"
_THREE_DECIMAL = "BHD IQD JOD KWD LYD OMR TND"
_TWO_DECIMAL = (
    "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF "
    "CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG "
    "HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU "
    "MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR "
    "SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VED "
    "VES WST XCD XCG YER ZAR ZMW ZWG"
)


def _table() -> dict[str, Currency]:
    table: dict[str, Currency] = {}
    for codes, exponent in ((_ZERO_DECIMAL, 0), (_TWO_DECIMAL, 2), (_THREE_DECIMAL, 3)):
        for code in codes.split():
            table[code] = Currency(code, exponent, CurrencyKind.FIAT)
    table["ETH"] = Currency("ETH", 18, CurrencyKind.CRYPTO)
    return table


BUILTIN_CURRENCIES: Mapping[str, Currency] = _table()

# Stripe's API keeps its own minor units for a few currencies (https://docs.stripe.com/currencies):
# zero-decimal on Stripe (MGA is 2 in ISO), ISK kept two-decimal for backwards compatibility (0 in ISO),
# and only five three-decimal currencies. Everything else Stripe takes is two-decimal.
_STRIPE_ZERO_DECIMAL = frozenset(
    (
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    )
)
_STRIPE_THREE_DECIMAL = frozenset(("BHD", "JOD", "KWD", "OMR", "TND"))

# ASCII only: str.isalnum() and Decimal() both accept non-ASCII digits, which must never name a currency.
_CODE_RE = re.compile(r"[A-Za-z0-9]{1,11}")


def normalise_code(raw: object, *, field: str = "currency") -> str:
    """Upper-case a currency code or token symbol, refusing anything that is not 1-11 ASCII letters/digits.

    Lower case is accepted because Stripe sends `eur`; whitespace is refused rather than stripped.
    """
    if not isinstance(raw, str) or not _CODE_RE.fullmatch(raw):
        raise InvalidArgument(
            f"invalid_{field}",
            f"{field} must be a currency code or token symbol (1-11 letters or digits)",
            field=field,
        )
    return raw.upper()


def validate_token_definitions(tokens: Mapping[str, int], *, field: str = "tokens") -> dict[str, int]:
    """Check a merchant's token list (symbol -> decimals) and return it with normalised symbols.

    A token may not redefine a built-in currency with another exponent: "USD" with 6 decimals would make
    every USD amount of that merchant wrong by a factor of 10,000.
    """
    checked: dict[str, int] = {}
    for raw_symbol, decimals in tokens.items():
        symbol = normalise_code(raw_symbol, field="token_symbol")
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= MAX_EXPONENT:
            raise InvalidArgument(
                "invalid_token_decimals",
                f"decimals of {symbol} must be an integer 0..{MAX_EXPONENT}",
                field=field,
            )
        builtin = BUILTIN_CURRENCIES.get(symbol)
        if builtin is not None and builtin.exponent != decimals:
            raise InvalidArgument(
                "token_conflicts_with_currency",
                f"token {symbol} ({decimals} decimals) conflicts with built-in {symbol} ({builtin.exponent})",
                field=field,
            )
        if symbol in checked and checked[symbol] != decimals:
            raise InvalidArgument("duplicate_token_symbol", f"token {symbol} is defined twice", field=field)
        checked[symbol] = decimals
    return checked


def resolve_currency(
    raw: object, tokens: Mapping[str, int] | None = None, *, field: str = "currency"
) -> Currency:
    """Find a currency by code, case-insensitively: built-ins first, then the merchant's tokens.

    Raises InvalidArgument `invalid_<field>` for a malformed code and `unknown_<field>` for one not known.
    """
    code = normalise_code(raw, field=field)
    builtin = BUILTIN_CURRENCIES.get(code)
    if builtin is not None:
        return builtin
    for symbol, decimals in (tokens or {}).items():
        if symbol.upper() == code:
            if (
                isinstance(decimals, bool)
                or not isinstance(decimals, int)
                or not 0 <= decimals <= MAX_EXPONENT
            ):
                raise InvalidArgument(
                    "invalid_token_decimals", f"decimals of {code} are invalid", field=field
                )
            return Currency(code, decimals, CurrencyKind.TOKEN)
    raise InvalidArgument(f"unknown_{field}", f"{field} {code} is not supported", field=field)


def stripe_exponent(code: str) -> int:
    """The exponent Stripe's API uses for amounts in this currency (differs from ISO for ISK, MGA, ...)."""
    upper = code.upper()
    if upper in _STRIPE_ZERO_DECIMAL:
        return 0
    if upper in _STRIPE_THREE_DECIMAL:
        return 3
    return 2
