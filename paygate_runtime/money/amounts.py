"""Exact money: integer minor units next to their currency and exponent. No float ever gets in.

Shared by every service: the session service parses what merchants send, billing and the gateway format
what they show, all with these functions, so an amount reads the same everywhere.

Amount input rules (`parse_amount`), chosen to be strict and easy to explain:
- a string must be plain decimal notation: ASCII digits, an optional `.` and fraction digits. No sign, no
  exponent ("1e2"), no whitespace, no `_` separators, no leading zeros ("007"), no bare "1." or ".5".
  Python's Decimal() would accept all of those and non-ASCII digits too, so strings never reach it unchecked;
- a JSON number arrives as int, or as Decimal when the body was parsed with parse_float=Decimal. Exponent
  notation is accepted there (JSON allows `1e2`) since the value is exact. A float is refused outright:
  it means the body was parsed without parse_float=Decimal and the amount may already be wrong. This also
  catches NaN and Infinity, which json.loads turns into floats through parse_constant;
- Decimal NaN, sNaN and Infinity are refused; booleans are refused (bool is an int in Python);
- the number of fraction digits written may not exceed the exponent, even when they are zeros: "99.990" EUR
  and 5.0 JPY are refused, because a client that sends them does not know the currency's minor unit;
- zero and negative amounts are refused; so is anything above the caller's maximum.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from paygate_runtime.errors import InvalidArgument

from .assets import MAX_DECIMALS, normalise_code
from .units import resolve_currency

# The widest exponent an amount may carry (ETH's 18); the same bound as a token's decimals.
MAX_EXPONENT = MAX_DECIMALS

# Amounts are stored as NUMERIC(78,0); nothing wider may exist in memory either.
MAX_MINOR_DIGITS = 78
MAX_AMOUNT_MINOR = 10**MAX_MINOR_DIGITS - 1
_MAX_TEXT_LENGTH = 100

_PLAIN_AMOUNT_RE = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?")
_NEGATIVE_AMOUNT_RE = re.compile(r"-(0|[1-9][0-9]*)(?:\.([0-9]+))?")
_MINOR_RE = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True, slots=True)
class Money:
    """A non-negative exact amount. `exponent` is the number of minor-unit digits (EUR 2, JPY 0, ETH 18)."""

    amount_minor: int
    currency: str
    exponent: int

    def __post_init__(self) -> None:
        if (
            isinstance(self.amount_minor, bool)
            or not isinstance(self.amount_minor, int)
            or not 0 <= self.amount_minor <= MAX_AMOUNT_MINOR
        ):
            raise InvalidArgument("invalid_amount_minor", "amount_minor must be a non-negative integer")
        if isinstance(self.exponent, bool) or not isinstance(self.exponent, int):
            raise InvalidArgument("invalid_exponent", "exponent must be an integer")
        if not 0 <= self.exponent <= MAX_EXPONENT:
            raise InvalidArgument("invalid_exponent", f"exponent must be 0..{MAX_EXPONENT}")
        if normalise_code(self.currency) != self.currency:
            raise InvalidArgument("invalid_currency", "currency must be upper case", field="currency")

    @classmethod
    def from_wire(cls, amount_minor: str, currency: str, exponent: int, *, field: str = "amount") -> Money:
        """Build from the gRPC Money fields (amount_minor is a decimal string of an integer)."""
        minor = parse_minor(amount_minor, field=f"{field}_minor")
        return cls(minor, normalise_code(currency, field="currency"), exponent)

    def to_major_str(self, *, trim: bool = False) -> str:
        """Major units with exactly `exponent` fraction digits ("99.99", "100.00"); `trim` drops trailing
        zeros and a bare point ("100", "0.000000000000000001")."""
        return format_major(self.amount_minor, self.exponent, trim=trim)

    def to_minor_str(self) -> str:
        return str(self.amount_minor)

    def display(self) -> str:
        return f"{self.to_major_str()} {self.currency}"

    def same_currency(self, other: Money) -> bool:
        return self.currency == other.currency

    def rescaled(self, exponent: int) -> Money:
        """The same value at another exponent; ValueError when that would lose digits."""
        if exponent >= self.exponent:
            return Money(self.amount_minor * 10 ** (exponent - self.exponent), self.currency, exponent)
        quotient, remainder = divmod(self.amount_minor, 10 ** (self.exponent - exponent))
        if remainder:
            raise ValueError(f"{self.display()} is not representable with exponent {exponent}")
        return Money(quotient, self.currency, exponent)

    def compare(self, other: Money) -> int:
        """-1, 0 or 1 by exact value. Comparing different currencies is a bug, hence ValueError."""
        mine, theirs, _ = _common_scale(self, other)
        return (mine > theirs) - (mine < theirs)

    def minus(self, other: Money) -> Money:
        """self - other, exact; expressed at self's exponent when the result fits it, else the finer one."""
        mine, theirs, exponent = _common_scale(self, other)
        if mine < theirs:
            raise ValueError("money cannot go negative")
        result = Money(mine - theirs, self.currency, exponent)
        try:
            return result.rescaled(self.exponent)
        except ValueError:
            return result


def _common_scale(a: Money, b: Money) -> tuple[int, int, int]:
    if a.currency != b.currency:
        raise ValueError(f"cannot compare {a.currency} with {b.currency}")
    exponent = max(a.exponent, b.exponent)
    return (
        a.amount_minor * 10 ** (exponent - a.exponent),
        b.amount_minor * 10 ** (exponent - b.exponent),
        exponent,
    )


def format_major(amount_minor: int, exponent: int, *, trim: bool = False) -> str:
    """Render minor units as a major-unit decimal string, exactly, without ever making a float."""
    if amount_minor < 0:
        return "-" + format_major(-amount_minor, exponent, trim=trim)
    if exponent == 0:
        return str(amount_minor)
    whole, fraction = divmod(amount_minor, 10**exponent)
    fraction_text = str(fraction).rjust(exponent, "0")
    if trim:
        fraction_text = fraction_text.rstrip("0")
    return f"{whole}.{fraction_text}" if fraction_text else str(whole)


def max_minor_from_major(max_major: int, exponent: int) -> int:
    """Turn a configured maximum in major units (e.g. 1,000,000) into this currency's minor units."""
    scale: int = 10**exponent  # typeshed: int ** int may be a float; exponent is never negative
    limit: int = min(max_major * scale, MAX_AMOUNT_MINOR)
    return limit


def parse_amount(
    raw: object, currency: str, exponent: int, max_minor: int, *, field: str = "amount"
) -> Money:
    """Parse a major-unit amount exactly (see the module docstring for the rules).

    Error codes (InvalidArgument, field=`field`): missing_<field>, invalid_<field>, <field>_too_precise,
    <field>_not_positive, <field>_too_large.
    """
    if not 0 < max_minor <= MAX_AMOUNT_MINOR:
        raise ValueError("max_minor must be positive and fit NUMERIC(78,0)")
    if not 0 <= exponent <= MAX_EXPONENT:
        raise ValueError(f"exponent must be 0..{MAX_EXPONENT}")
    minor = _to_minor(raw, exponent, field)
    if minor > max_minor:
        raise InvalidArgument(
            f"{field}_too_large",
            f"{field} exceeds the maximum of {format_major(max_minor, exponent)}",
            field=field,
        )
    return Money(minor, currency, exponent)


def plain_decimal_text(value: Decimal) -> str:
    """An exact number in the plain notation `parse_amount` reads from text, so that forwarding a JSON number
    as text (the gateway's wire form) changes nothing: `1E+2` -> "100", `2.50E-5` -> "0.0000250".

    The fraction digits written are kept, zeros included, because they are judged against the currency's
    exponent. A value too precise or too large for every currency becomes a short stand-in that the text
    parser refuses with the same code the number itself gets; `1E+999999999` never becomes a billion digits.
    NaN and Infinity keep their names and are refused as invalid.
    """
    if not value.is_finite():
        return str(value)
    sign, digits, power = value.as_tuple()
    assert isinstance(power, int)  # finite, so never 'n'/'N'/'F'
    negative = "-" if sign else ""
    coefficient = "".join(map(str, digits)).lstrip("0")
    if not coefficient:
        return "0"  # zero in any notation, refused as not positive, as the number is
    fraction_digits = max(0, -power)
    if fraction_digits > MAX_EXPONENT:
        return f"{negative}0.{'0' * MAX_EXPONENT}1"
    if len(coefficient) + power > MAX_MINOR_DIGITS:
        fraction = f".{'0' * fraction_digits}" if fraction_digits else ""
        return f"{negative}1{'0' * MAX_MINOR_DIGITS}{fraction}"
    text = coefficient + "0" * max(0, power)
    if fraction_digits:
        text = text.rjust(fraction_digits + 1, "0")
        text = f"{text[:-fraction_digits]}.{text[-fraction_digits:]}"
    return negative + text


def parse_money(
    raw_amount: object,
    raw_currency: object,
    *,
    max_major: int,
    tokens: Mapping[str, int] | None = None,
    field: str = "amount",
) -> Money:
    """Resolve the currency (built-ins, then the merchant's tokens) and parse the amount against it.

    `max_major` is the configured ceiling in major units, applied in each currency's own units.
    """
    currency = resolve_currency(raw_currency, tokens)
    max_minor = max_minor_from_major(max_major, currency.exponent)
    return parse_amount(raw_amount, currency.code, currency.exponent, max_minor, field=field)


def _to_minor(raw: object, exponent: int, field: str) -> int:
    if raw is None or raw == "":
        raise InvalidArgument(f"missing_{field}", f"{field} is required", field=field)
    if isinstance(raw, (bool, float)):
        raise InvalidArgument(
            f"invalid_{field}", f"{field} must be a decimal string or an exact JSON number", field=field
        )
    if isinstance(raw, int):
        _refuse_non_positive(raw > 0, field)
        if raw > MAX_AMOUNT_MINOR:
            _refuse_too_large(field)
        scale: int = 10**exponent  # exponent >= 0, so an int
        return raw * scale
    if isinstance(raw, Decimal):
        return _decimal_to_minor(raw, exponent, field)
    if isinstance(raw, str):
        return _text_to_minor(raw, exponent, field)
    raise InvalidArgument(f"invalid_{field}", f"{field} must be a decimal string or a number", field=field)


def _text_to_minor(raw: str, exponent: int, field: str) -> int:
    match = _PLAIN_AMOUNT_RE.fullmatch(raw) if len(raw) <= _MAX_TEXT_LENGTH else None
    if match is None:
        if len(raw) <= _MAX_TEXT_LENGTH and _NEGATIVE_AMOUNT_RE.fullmatch(raw):
            _refuse_non_positive(False, field)
        raise InvalidArgument(
            f"invalid_{field}", f"{field} must be a plain decimal number such as 99.99", field=field
        )
    whole, fraction = match.group(1), match.group(2) or ""
    _check_precision(len(fraction), exponent, field)
    if len(whole) + exponent > MAX_MINOR_DIGITS:
        _refuse_too_large(field)
    minor = int(whole + fraction.ljust(exponent, "0"))
    _refuse_non_positive(minor > 0, field)
    return minor


def _decimal_to_minor(raw: Decimal, exponent: int, field: str) -> int:
    if not raw.is_finite():
        raise InvalidArgument(f"invalid_{field}", f"{field} must be a finite number", field=field)
    sign, digits, power = raw.as_tuple()
    assert isinstance(power, int)  # finite, so never 'n'/'N'/'F'
    coefficient = int("".join(map(str, digits)))
    _refuse_non_positive(coefficient > 0 and sign == 0, field)
    _check_precision(max(0, -power), exponent, field)
    scale = power + exponent  # >= 0 after the precision check
    # Checked before 10**scale so that 1e999999999 cannot make a giant integer.
    if len(str(coefficient)) + scale > MAX_MINOR_DIGITS:
        _refuse_too_large(field)
    factor: int = 10**scale  # scale >= 0, so an int
    return coefficient * factor


def _check_precision(fraction_digits: int, exponent: int, field: str) -> None:
    if fraction_digits > exponent:
        raise InvalidArgument(
            f"{field}_too_precise",
            f"{field} has more than {exponent} decimal places for this currency",
            field=field,
        )


def _refuse_non_positive(positive: bool, field: str) -> None:
    if not positive:
        raise InvalidArgument(f"{field}_not_positive", f"{field} must be greater than zero", field=field)


def _refuse_too_large(field: str) -> None:
    raise InvalidArgument(f"{field}_too_large", f"{field} is too large", field=field)


def parse_minor(raw: object, *, field: str = "amount_minor", allow_zero: bool = True) -> int:
    """Parse a wire amount_minor: ASCII digits only, no sign, no '+', no leading zeros, at most 78 digits.

    Raises InvalidArgument `invalid_<field>` (or `<field>_not_positive` for "0" when zero is not allowed).
    """
    if not isinstance(raw, str) or len(raw) > MAX_MINOR_DIGITS or not _MINOR_RE.fullmatch(raw):
        raise InvalidArgument(
            f"invalid_{field}", f"{field} must be a non-negative integer written in digits", field=field
        )
    value = int(raw)
    if value == 0 and not allow_zero:
        raise InvalidArgument(f"{field}_not_positive", f"{field} must be greater than zero", field=field)
    return value
