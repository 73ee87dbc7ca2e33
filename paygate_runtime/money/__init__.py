"""Money and currencies, one copy for every service and the gateway. Pure: no I/O, no service imports.

- currencies: ISO 4217 as SIX publishes it (list one), payable codes with their exponents; fund codes,
  metals and withdrawn codes (BGN since 2026-01-01) refused.
- stripe_minor_units: Stripe's API minor units where they differ from ISO (ISK, UGX, MGA, ...).
- assets: ETH and merchant-configured ERC-20 tokens with their decimals.
- units: the rule that says which unit an amount may be counted in (session pricing, billing, the gateway).
- amounts: exact parse/format of major-unit decimal strings to integer minor units; never a float.
"""

from .amounts import (
    MAX_AMOUNT_MINOR,
    MAX_EXPONENT,
    Money,
    format_major,
    max_minor_from_major,
    parse_amount,
    parse_minor,
    parse_money,
    plain_decimal_text,
)
from .assets import (
    MAX_DECIMALS,
    NATIVE_COIN,
    NATIVE_DECIMALS,
    normalise_code,
    validate_token_definitions,
    validate_token_symbol,
)
from .currencies import ISO_4217, iso_exponent, reported_exponent
from .units import BUILTIN_CURRENCIES, Currency, CurrencyKind, check_unit, resolve_currency

__all__ = [
    "BUILTIN_CURRENCIES",
    "ISO_4217",
    "MAX_AMOUNT_MINOR",
    "MAX_DECIMALS",
    "MAX_EXPONENT",
    "NATIVE_COIN",
    "NATIVE_DECIMALS",
    "Currency",
    "CurrencyKind",
    "Money",
    "check_unit",
    "format_major",
    "iso_exponent",
    "max_minor_from_major",
    "normalise_code",
    "parse_amount",
    "parse_minor",
    "parse_money",
    "plain_decimal_text",
    "reported_exponent",
    "resolve_currency",
    "validate_token_definitions",
    "validate_token_symbol",
]
