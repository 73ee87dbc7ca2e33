"""Tax share of a tax-inclusive amount, in exact integer minor units.

The amount a customer paid already contains the tax, so the net is total / (1 + rate) and the tax is what
is left. Rounding the *net* and deriving the tax by subtraction guarantees net + tax == total to the minor
unit, which is what an auditor adds up first.

Rounding is round-half-to-even (banker's rounding) on the net. It is symmetric around zero, so a credit
note, which negates an invoice, splits into exactly the negated net and tax.
"""

from __future__ import annotations

from dataclasses import dataclass

from paygate_runtime.errors import InvalidArgument

BPS_SCALE = 10_000
MAX_TAX_RATE_BPS = 10_000


@dataclass(frozen=True, slots=True)
class TaxSplit:
    net: int
    tax: int

    @property
    def total(self) -> int:
        return self.net + self.tax


def validate_tax_rate(rate_bps: int) -> int:
    """Return the rate, or refuse it with `invalid_tax_rate` unless it is an int in 0..10000 basis points."""
    if isinstance(rate_bps, bool) or not isinstance(rate_bps, int) or not 0 <= rate_bps <= MAX_TAX_RATE_BPS:
        raise InvalidArgument(
            "invalid_tax_rate", "tax_rate_bps must be an integer from 0 to 10000", field="tax_rate_bps"
        )
    return rate_bps


def divide_half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half to even, exactly; denominator must be positive."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(numerator, denominator)  # floor division: 0 <= remainder < denominator
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def split_tax(total_minor: int, rate_bps: int) -> TaxSplit:
    """Split a tax-inclusive total (may be negative, for credit notes) into net and tax."""
    validate_tax_rate(rate_bps)
    if isinstance(total_minor, bool) or not isinstance(total_minor, int):
        raise InvalidArgument("invalid_amount", "amount must be an integer in minor units", field="amount")
    net = divide_half_even(total_minor * BPS_SCALE, BPS_SCALE + rate_bps)
    return TaxSplit(net=net, tax=total_minor - net)


def tax_share(total_minor: int, rate_bps: int) -> int:
    """The tax contained in a tax-inclusive total: total - round_half_even(total * 10000 / (10000 + rate))."""
    return split_tax(total_minor, rate_bps).tax


def format_rate(rate_bps: int) -> str:
    """1900 -> "19", 750 -> "7.5", 5 -> "0.05": a percentage without a float or trailing zeros."""
    validate_tax_rate(rate_bps)
    whole, fraction = divmod(rate_bps, 100)
    return f"{whole}.{fraction:02d}".rstrip("0").rstrip(".") if fraction else str(whole)
