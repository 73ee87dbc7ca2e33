"""Stripe's own minor units per currency, and exact conversion to and from ISO 4217 minor units.

Stripe's API does not always use the ISO 4217 exponent (https://docs.stripe.com/currencies, sections
"Zero-decimal currencies", "Three-decimal currencies" and "Special cases"):

- Zero-decimal in Stripe: BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF VND VUV XAF XOF XPF. MGA is 2 in ISO 4217,
  so 5 MGA is `5` at Stripe and `500` for us.
- Three-decimal: BHD JOD KWD OMR TND. Stripe's payment partners need the last digit to be 0.
- ISK and UGX are listed by Stripe as zero-decimal but, for backwards compatibility, the API keeps them
  two-decimal with the decimals always 00: 5 ISK is `500` at Stripe and `5` for us (ISO exponent 0).
  Stripe refuses amounts not divisible by 100 (`invalid_charge_amount_no_decimal_compatible`).
- HUF and TWD are two-decimal in the API (as in ISO 4217); only payouts are whole units, which does not
  concern checkout amounts.
- Every other currency is two-decimal.

Conversions never round: an amount that does not convert exactly raises ValueError.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

STRIPE_ZERO_DECIMAL: Final[frozenset[str]] = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "VND", "VUV", "XAF", "XOF", "XPF"}
)
STRIPE_THREE_DECIMAL: Final[frozenset[str]] = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
# Whole-unit currencies that Stripe's API still writes with two (always zero) decimals.
STRIPE_TWO_DECIMAL_WHOLE_UNITS: Final[frozenset[str]] = frozenset({"ISK", "UGX"})

# ISO 4217 minor units of the currencies whose exponent is not 2 (active codes; funds codes included).
_ISO_4217_NOT_TWO: Final[Mapping[str, int]] = {
    **dict.fromkeys(
        (
            "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
            "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}  # fmt: skip


def _check_code(currency: str) -> str:
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isascii() and currency.isalpha()):
        raise ValueError(f"currency must be a three-letter code, got {currency!r}")
    return currency.upper()


def _check_amount(amount: int) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValueError(f"amount must be an integer number of minor units, got {amount!r}")
    if amount < 0:
        raise ValueError(f"amount must not be negative, got {amount}")
    return amount


def stripe_exponent(currency: str) -> int:
    """Digits of the minor unit in Stripe's API amounts for `currency` (any case)."""
    code = _check_code(currency)
    if code in STRIPE_ZERO_DECIMAL:
        return 0
    if code in STRIPE_THREE_DECIMAL:
        return 3
    return 2


def stripe_charge_step(currency: str) -> int:
    """Stripe units that a charge amount must be a multiple of (1 for most currencies)."""
    code = _check_code(currency)
    if code in STRIPE_TWO_DECIMAL_WHOLE_UNITS:
        return 100
    if code in STRIPE_THREE_DECIMAL:
        return 10
    return 1


def iso_exponent(currency: str) -> int:
    """ISO 4217 minor-unit digits of a currency code (2 unless the standard says otherwise)."""
    return _ISO_4217_NOT_TWO.get(_check_code(currency), 2)


def _rescale(amount: int, from_exponent: int, to_exponent: int, what: str) -> int:
    if from_exponent < 0 or to_exponent < 0:
        raise ValueError("exponents must not be negative")
    if to_exponent >= from_exponent:
        return amount * 10 ** (to_exponent - from_exponent)
    divisor = 10 ** (from_exponent - to_exponent)
    whole, rest = divmod(amount, divisor)
    if rest:
        raise ValueError(f"{what} {amount} is not a whole number of units after dividing by {divisor}")
    return whole


def stripe_to_iso_minor(amount: int, currency: str, iso_exponent: int) -> int:
    """Convert a Stripe API amount to ISO minor units with `iso_exponent` digits (ISK 10000 -> 100)."""
    code = _check_code(currency)
    return _rescale(_check_amount(amount), stripe_exponent(code), iso_exponent, f"Stripe {code} amount")


def iso_minor_to_stripe(amount: int, currency: str, iso_exponent: int) -> int:
    """Convert ISO minor units to the amount Stripe's API expects when creating a charge (ISK 100 -> 10000).

    Raises ValueError when Stripe cannot charge the amount exactly: a fraction of a Stripe unit (MGA 5.50),
    or a three-decimal amount whose last digit is not 0 (BHD 5.124), since Stripe would refuse or round it.
    """
    code = _check_code(currency)
    stripe_amount = _rescale(_check_amount(amount), iso_exponent, stripe_exponent(code), f"{code} amount")
    step = stripe_charge_step(code)
    if stripe_amount % step:
        raise ValueError(f"Stripe charges {code} only in multiples of {step} units, got {stripe_amount}")
    return stripe_amount
