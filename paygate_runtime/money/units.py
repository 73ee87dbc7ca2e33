"""What an amount is counted in, and the one rule every service applies to it.

A unit is an ISO 4217 currency (fiat), the chain's native coin (ETH), or a merchant-configured token. Two
entry points, one rule:

- `resolve_currency(raw, tokens)`: the session service pricing a new session. It knows the merchant's
  tokens, so a token symbol resolves only when the merchant configured it, with its configured decimals.
- `check_unit(code, exponent)`: every service that receives an amount from another one (billing issuing the
  invoice of a paid session, a receipt, a refund). It does not know the merchant's tokens, so it takes a
  token's decimals from the request. It accepts exactly what `resolve_currency` can produce: a payable ISO
  code with its ISO exponent, ETH with 18, or a code that could name a token (not an ISO-reserved code,
  not ETH) with 0..18 decimals. So a session paid in `UNI`, `OP`, `X` or a 6-decimal `DAI` always gets its
  invoice; tests/unit/money proves the two agree in both directions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from paygate_runtime.errors import InvalidArgument

from .assets import (
    MAX_DECIMALS,
    NATIVE_COIN,
    NATIVE_DECIMALS,
    is_canonical_code,
    is_valid_decimals,
    normalise_code,
    reserved_symbol_reason,
)
from .currencies import ISO_4217, why_not_payable


class CurrencyKind(StrEnum):
    FIAT = "fiat"
    CRYPTO = "crypto"
    TOKEN = "token"


@dataclass(frozen=True, slots=True)
class Currency:
    code: str
    exponent: int
    kind: CurrencyKind


def _builtins() -> dict[str, Currency]:
    table = {code: Currency(code, iso.exponent, CurrencyKind.FIAT) for code, iso in ISO_4217.items()}
    table[NATIVE_COIN] = Currency(NATIVE_COIN, NATIVE_DECIMALS, CurrencyKind.CRYPTO)
    return table


# Units that need no merchant configuration: every payable ISO 4217 currency, and ETH.
BUILTIN_CURRENCIES: Final[Mapping[str, Currency]] = MappingProxyType(_builtins())


def _refuse_unknown(code: str, field: str) -> InvalidArgument:
    reason = why_not_payable(code)
    message = f"{field} {code} is not supported" + (f": {reason}" if reason else "")
    return InvalidArgument(f"unknown_{field}", message, field=field)


def resolve_currency(
    raw: object, tokens: Mapping[str, int] | None = None, *, field: str = "currency"
) -> Currency:
    """Find a unit by code, case-insensitively: built-ins first, then the merchant's tokens.

    Raises InvalidArgument `invalid_<field>` for a malformed code and `unknown_<field>` for one that is not
    known (withdrawn ISO codes such as BGN and fund codes such as CLF included, with the reason).
    """
    code = normalise_code(raw, field=field)
    builtin = BUILTIN_CURRENCIES.get(code)
    if builtin is not None:
        return builtin
    if reserved_symbol_reason(code) is None:
        for symbol, decimals in (tokens or {}).items():
            if symbol.upper() == code:
                if not is_valid_decimals(decimals):
                    raise InvalidArgument(
                        "invalid_token_decimals", f"decimals of {code} are invalid", field=field
                    )
                return Currency(code, decimals, CurrencyKind.TOKEN)
    raise _refuse_unknown(code, field)


def check_unit(currency: object, exponent: object) -> Currency:
    """The unit of an amount received from another service; refuses what no session could be priced in.

    Errors (InvalidArgument): missing_currency, invalid_currency (not an upper-case code of 1-11 ASCII
    letters/digits), unknown_currency (an ISO-reserved code that is not payable: BGN, XAU, CLF, ...),
    invalid_exponent (outside 0..18, or not the exponent ISO 4217 or the chain fixes for that code).
    """
    if currency is None or currency == "":
        raise InvalidArgument("missing_currency", "currency is required", field="currency")
    if not isinstance(currency, str) or not is_canonical_code(currency):
        raise InvalidArgument(
            "invalid_currency",
            "currency must be an upper-case code of 1 to 11 letters or digits",
            field="currency",
        )
    if isinstance(exponent, bool) or not isinstance(exponent, int) or not is_valid_decimals(exponent):
        raise InvalidArgument(
            "invalid_exponent", f"exponent must be an integer from 0 to {MAX_DECIMALS}", field="exponent"
        )
    builtin = BUILTIN_CURRENCIES.get(currency)
    if builtin is not None:
        if builtin.exponent != exponent:
            raise InvalidArgument(
                "invalid_exponent",
                f"{currency} has {builtin.exponent} decimal digits, not {exponent}",
                field="exponent",
            )
        return builtin
    if reserved_symbol_reason(currency) is not None:
        raise _refuse_unknown(currency, "currency")
    return Currency(currency, exponent, CurrencyKind.TOKEN)
