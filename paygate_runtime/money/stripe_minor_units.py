"""Stripe's own minor units per currency, and exact conversion to and from ISO 4217 minor units.

paygate stores every amount in ISO 4217 minor units (currencies.py). Stripe's API writes amounts in its own
minor units, which differ from ISO for a few currencies. Source: Stripe's "Supported currencies" page,
sections "Zero-decimal currencies", "Three-decimal currencies" and "Special cases"
(https://docs.stripe.com/currencies#zero-decimal, #three-decimal, #special-cases), and for ISK the notice
https://support.stripe.com/questions/deprecation-of-fractional-isk-charges-and-refunds ("ISK will remain a
two-decimal currency in the Stripe API, and an ISK amount of `100` will continue to represent 1 króna";
amounts not divisible by 100 get `invalid_charge_amount_no_decimal_compatible`).

- Zero-decimal in Stripe's API: BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF VND VUV XAF XOF XPF. MGA is 2 in
  ISO 4217, so 5 MGA is `5` at Stripe and `500` for us.
- Three-decimal: BHD JOD KWD OMR TND. Stripe's payment partners need the last digit to be 0, so a charge is
  a multiple of 10 (5.124 KWD cannot be charged; 5.120 can).
- Special cases, ISK and UGX: Stripe lists both as zero-decimal but, for backwards compatibility, its API
  keeps them two-decimal with the decimals always 00: 5 ISK is `500` at Stripe and `5` for us (ISO
  exponent 0), and a charge must be a multiple of 100.
- Special cases, HUF and TWD: two-decimal in the API, as in ISO 4217. Only payouts are whole units, which
  does not concern checkout amounts, so they need no entry here.
- Every other currency Stripe supports is two-decimal. IQD and LYD are three-decimal in ISO but not
  Stripe presentment currencies; converting one follows the default (2) and never rounds.
- Minimum charge amounts (section "Minimum and maximum charge amounts", https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts):
  Stripe states a minimum per settlement currency (0.50 USD, 0.30 GBP, 50 JPY, ...), and a charge in
  another currency must convert to at least the settlement currency's. paygate knows no exchange rate, so it
  holds a charge in one of those currencies to that currency's own minimum (a 0.01 EUR session could never
  be charged) and leaves other currencies to Stripe.

Conversions never round: an amount that does not convert exactly raises ValueError.
"""

from __future__ import annotations

from typing import Final

from .amounts import format_major
from .currencies import ISO_4217

STRIPE_ZERO_DECIMAL: Final[frozenset[str]] = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "VND", "VUV", "XAF", "XOF", "XPF"}
)
STRIPE_THREE_DECIMAL: Final[frozenset[str]] = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
# Whole-unit currencies that Stripe's API still writes with two (always zero) decimals.
STRIPE_TWO_DECIMAL_WHOLE_UNITS: Final[frozenset[str]] = frozenset({"ISK", "UGX"})
STRIPE_DEFAULT_EXPONENT: Final = 2
# Stripe's minimum charge per currency it states one for, in Stripe's API units (0.50 USD is 50).
STRIPE_MINIMUM_CHARGE: Final[dict[str, int]] = {
    "AED": 200,
    "AUD": 50,
    "BRL": 50,
    "CAD": 50,
    "CHF": 50,
    "CZK": 1500,
    "DKK": 250,
    "EUR": 50,
    "GBP": 30,
    "HKD": 400,
    "HUF": 17500,
    "INR": 50,
    "JPY": 50,
    "MXN": 1000,
    "MYR": 200,
    "NOK": 300,
    "NZD": 50,
    "PLN": 200,
    "RON": 200,
    "SEK": 300,
    "SGD": 50,
    "THB": 1000,
    "USD": 50,
}


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
    return STRIPE_DEFAULT_EXPONENT


def stripe_charge_step(currency: str) -> int:
    """Stripe units that a charge amount must be a multiple of (1 for most currencies)."""
    code = _check_code(currency)
    if code in STRIPE_TWO_DECIMAL_WHOLE_UNITS:
        return 100
    if code in STRIPE_THREE_DECIMAL:
        return 10
    return 1


def _rescale(amount: int, from_exponent: int, to_exponent: int, what: str) -> int:
    if from_exponent < 0 or to_exponent < 0:
        raise ValueError("exponents must not be negative")
    if to_exponent >= from_exponent:
        factor: int = 10 ** (to_exponent - from_exponent)  # a non-negative power: an int
        return amount * factor
    divisor: int = 10 ** (from_exponent - to_exponent)
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


def stripe_charge_refusal(amount: int, currency: str, iso_exponent: int) -> str | None:
    """None when Stripe can charge `amount` (ISO minor units) exactly and it is at least Stripe's minimum
    charge in that currency; else why not, in words. For the checks that need the answer, not the amount: a
    session's create (the session service for a Stripe session, the gateway for a card session) and the rails
    a card session's page offers. (Refunds and reported amounts are converted by iso_minor_to_stripe and
    stripe_to_iso_minor, which have no minimum: a partial refund may be smaller than any charge.)"""
    try:
        stripe_amount = iso_minor_to_stripe(amount, currency, iso_exponent)
    except ValueError as error:
        return str(error)
    code = currency.upper()
    minimum = STRIPE_MINIMUM_CHARGE.get(code)
    if minimum is not None and stripe_amount < minimum:
        shown = format_major(stripe_to_iso_minor(minimum, code, iso_exponent), iso_exponent)
        return f"Stripe's minimum charge in {code} is {shown} {code}"
    return None


def stripe_currency_exponent(currency: str) -> int:
    """paygate's exponent for a currency a Stripe event reports (any case).

    ISO 4217's for a payable currency, so the amount converts exactly to our minor units. For any other
    three-letter code (BGN after its withdrawal, say) Stripe's own exponent, so the amount is kept as Stripe
    wrote it: no session is priced in that code, and the session service records the event as a currency
    mismatch for the merchant to see rather than the money vanishing as a malformed event.
    """
    code = _check_code(currency)
    iso = ISO_4217.get(code)
    return iso.exponent if iso is not None else stripe_exponent(code)
