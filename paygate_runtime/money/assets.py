"""On-chain assets: the chain's native coin and the ERC-20 tokens a merchant accepts, with their decimals.

ETH is the one built-in asset (18 decimals, fixed by the chain). Tokens are NOT built in: a token's
decimals are a property of its contract, and the same symbol differs between contracts (USDT has 6 decimals
on Ethereum and 18 on BNB Chain; nothing stops a contract calling itself DAI with 6). So a merchant
configures each token it accepts as symbol + contract + decimals, and every service takes the decimals from
that configuration, within 0..MAX_DECIMALS. A table of "well-known" token decimals would be exactly the bug
this module replaces: billing once refused a DAI session configured with 6 decimals.

A token symbol is 1 to 11 ASCII letters or digits (`X`, `OP`, `UNI`, `USDC`, `PYUSD` are all real), upper-
cased, and may not borrow a code ISO 4217 gave a meaning (current, fund, metal or withdrawn) or the native
coin's: "USD" with 6 decimals would make every USD amount of that merchant wrong by a factor of 10,000.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from paygate_runtime.errors import InvalidArgument

from .currencies import ISO_RESERVED

NATIVE_COIN: Final = "ETH"
NATIVE_DECIMALS: Final = 18
# The widest exponent anywhere in paygate: ETH's 18. A configured token may use 0..18.
MAX_DECIMALS: Final = 18
MAX_SYMBOL_LENGTH: Final = 11

# ASCII only: str.isalnum() and Decimal() both accept non-ASCII digits, which must never name a currency.
_CODE_RE = re.compile(r"[A-Za-z0-9]{1,11}")
_CANONICAL_RE = re.compile(r"[A-Z0-9]{1,11}")


def normalise_code(raw: object, *, field: str = "currency") -> str:
    """Upper-case a currency code or token symbol, refusing anything but 1-11 ASCII letters/digits.

    Lower case is accepted because Stripe sends `eur`; whitespace is refused rather than stripped.
    """
    if not isinstance(raw, str) or not _CODE_RE.fullmatch(raw):
        raise InvalidArgument(
            f"invalid_{field}",
            f"{field} must be a currency code or token symbol (1-11 letters or digits)",
            field=field,
        )
    return raw.upper()


def is_canonical_code(raw: object) -> bool:
    """True for a code as it travels between services: already upper case, 1-11 ASCII letters/digits."""
    return isinstance(raw, str) and _CANONICAL_RE.fullmatch(raw) is not None


def is_valid_decimals(decimals: object) -> bool:
    return not isinstance(decimals, bool) and isinstance(decimals, int) and 0 <= decimals <= MAX_DECIMALS


def validate_token_decimals(decimals: object, symbol: str, *, field: str = "tokens") -> int:
    if isinstance(decimals, int) and is_valid_decimals(decimals):
        return decimals
    raise InvalidArgument(
        "invalid_token_decimals",
        f"decimals of {symbol} must be an integer 0..{MAX_DECIMALS}",
        field=field,
    )


def reserved_symbol_reason(symbol: str) -> str | None:
    """Why an (upper-case) symbol cannot name a token, or None when it can."""
    if symbol == NATIVE_COIN:
        return f"{NATIVE_COIN} is the native coin, not a token"
    if symbol in ISO_RESERVED:
        return f"{symbol} is an ISO 4217 code"
    return None


def validate_token_symbol(raw: object, *, field: str = "tokens") -> str:
    symbol = normalise_code(raw, field="token_symbol")
    reason = reserved_symbol_reason(symbol)
    if reason is not None:
        raise InvalidArgument(
            "token_conflicts_with_currency", f"token {symbol} cannot be configured: {reason}", field=field
        )
    return symbol


def validate_token_definitions(tokens: Mapping[str, object], *, field: str = "tokens") -> dict[str, int]:
    """Check a merchant's token list (symbol -> decimals) and return it with upper-case symbols.

    Errors (InvalidArgument, field=`field`): invalid_token_symbol, token_conflicts_with_currency,
    invalid_token_decimals, duplicate_token_symbol.
    """
    checked: dict[str, int] = {}
    for raw_symbol, decimals in tokens.items():
        symbol = validate_token_symbol(raw_symbol, field=field)
        digits = validate_token_decimals(decimals, symbol, field=field)
        if symbol in checked:
            raise InvalidArgument("duplicate_token_symbol", f"token {symbol} is defined twice", field=field)
        checked[symbol] = digits
    return checked
