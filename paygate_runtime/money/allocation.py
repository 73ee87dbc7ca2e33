"""Exact splits of money, shared by billing's documents and the API's rendering of them, so that both state
the same figures to the minor unit: a total divided in proportion (largest remainder), and the net price of
one unit, which may be finer than the currency (EN 16931 allows it; the PDF and the Factur-X XML print it)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

# A net unit price may carry up to this many digits past the currency's own.
EXTRA_PRICE_DIGITS = 4


def allocate(total: int, weights: tuple[int, ...]) -> tuple[int, ...]:
    """Split a non-negative `total` in proportion to non-negative `weights` so that the parts add up exactly.

    Largest remainder: every part is floored first, then the leftover units go to the largest fractional
    parts, ties to the earlier part. With all weights zero the total goes to the first part."""
    if not weights:
        raise ValueError("allocate needs at least one weight")
    weight_sum = sum(weights)
    if weight_sum == 0:
        return (total,) + (0,) * (len(weights) - 1)
    floors = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    leftover = total - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:leftover]:
        floors[i] += 1
    return tuple(floors)


def net_unit_price(net_amount: int, quantity: int, exponent: int) -> Decimal:
    """The net price of one unit in major units: exact if the division terminates within
    exponent + EXTRA_PRICE_DIGITS places, else rounded half-even to that many places."""
    places = exponent + EXTRA_PRICE_DIGITS
    # The default context keeps 28 digits; an 18-decimal token amount needs more, and a rounded division
    # must never lose a digit, so the precision covers every digit the result can have.
    with localcontext() as context:
        context.prec = len(str(abs(net_amount))) + places + 10
        exact = Decimal(net_amount).scaleb(-exponent) / Decimal(quantity)
        rounded = exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
        # Trailing zeros beyond the currency's own places say nothing; keep at least the currency's places.
        minimum = Decimal(1).scaleb(-exponent)
        normal = rounded.normalize()
        digits_exponent = normal.as_tuple().exponent  # an int: the value is finite, never NaN or infinite
        return (
            normal.quantize(minimum)
            if isinstance(digits_exponent, int) and digits_exponent > -exponent
            else normal
        )
