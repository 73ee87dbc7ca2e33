"""Invoice numbers: `{PREFIX}-{YYYY}-{NNNNNN}`, gapless per merchant and mode.

The sequence itself lives in a counter row (the service layer increments it inside the issuing transaction);
this module only decides *which* counter a document draws from, which of its sequences it may hand out, and
how its number is spelled.

Two counters print into one series: the never-resetting one (period 0) and the year's one both spell
`{PREFIX}-{YYYY}-{NNNNNN}` with the year of issue, so a merchant who switches `reset_numbering_yearly` (or its
prefix) part-way through a year meets numbers the other counter already printed. `first_free_sequence` is the
rule that keeps both unique and moving; migration 0110 (`draw_invoice_sequence`) applies it in the database.
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass
from datetime import UTC, datetime

from paygate_runtime.errors import InvalidArgument

DEFAULT_PREFIX = "INV"
MIN_SEQUENCE_DIGITS = 6

# Period of a counter that never resets. 0 can never be a calendar year, so it cannot collide with one.
NO_RESET_PERIOD = 0

_PREFIX_RE = re.compile(r"[A-Z0-9]{1,12}")
_NUMBER_RE = re.compile(r"([A-Z0-9]{1,12})-([0-9]{4})-([0-9]{6,})")


@dataclass(frozen=True, slots=True)
class CounterScope:
    """Identifies the counter row a document draws its sequence number from.

    `period` is NO_RESET_PERIOD (0) for the default never-resetting sequence, or the UTC calendar year when
    the merchant asked for yearly numbering; a NOT NULL column keeps the composite primary key simple.
    """

    merchant_id: str
    mode: str
    period: int

    @property
    def resets_yearly(self) -> bool:
        return self.period != NO_RESET_PERIOD

    @property
    def key(self) -> str:
        """A stable text form, e.g. for logs or an in-memory fake: "merchant:live:0"."""
        return f"{self.merchant_id}:{self.mode}:{self.period}"


@dataclass(frozen=True, slots=True)
class InvoiceNumber:
    prefix: str
    year: int
    sequence: int

    def __str__(self) -> str:
        return format_invoice_number(self.prefix, self.year, self.sequence)


def validate_prefix(prefix: str) -> str:
    """Return the prefix unchanged, or refuse it with `invalid_invoice_prefix` (A-Z, 0-9, 1..12 chars)."""
    if not isinstance(prefix, str) or _PREFIX_RE.fullmatch(prefix) is None:
        raise InvalidArgument(
            "invalid_invoice_prefix",
            "invoice_prefix must be 1 to 12 characters A-Z or 0-9",
            field="invoice_prefix",
        )
    return prefix


def utc_year(moment: datetime) -> int:
    """The UTC calendar year of an aware datetime; a naive one is refused because its year is ambiguous."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidArgument("invalid_issued_at", "issued_at must carry a time zone", field="issued_at")
    return moment.astimezone(UTC).year


def counter_scope(merchant_id: str, mode: str, *, reset_yearly: bool, issued_at: datetime) -> CounterScope:
    """The counter a document issued at `issued_at` draws from.

    One sequence per (merchant, mode) forever, unless the merchant opted into a yearly restart; then the UTC
    year of issue joins the key, so the first document of a new year starts again at 1.
    """
    if not merchant_id:
        raise InvalidArgument("missing_merchant_id", "merchant_id is required", field="merchant_id")
    if mode not in ("test", "live"):
        raise InvalidArgument("invalid_mode", "mode must be test or live", field="mode")
    year = utc_year(issued_at)
    return CounterScope(merchant_id, mode, year if reset_yearly else NO_RESET_PERIOD)


def format_invoice_number(prefix: str, year: int, sequence: int) -> str:
    """`INV-2025-000042`; the sequence is zero padded to six digits and simply grows past 999999."""
    validate_prefix(prefix)
    if isinstance(year, bool) or not isinstance(year, int) or not 1 <= year <= 9999:
        raise InvalidArgument("invalid_invoice_year", "year must be between 1 and 9999", field="year")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1:
        raise InvalidArgument("invalid_sequence", "sequence must be a positive integer", field="sequence")
    return f"{prefix}-{year:04d}-{sequence:0{MIN_SEQUENCE_DIGITS}d}"


def parse_invoice_number(number: str) -> InvoiceNumber:
    """Parse a canonical invoice number; anything `format_invoice_number` would not produce is refused."""
    match = _NUMBER_RE.fullmatch(number) if isinstance(number, str) else None
    if match is not None:
        prefix, year_text, sequence_text = match.groups()
        year, sequence = int(year_text), int(sequence_text)
        # Non-canonical spellings (extra leading zeros, sequence 0, year 0000) would let two strings name
        # the same document, so only the exact round-trip form is accepted.
        if year >= 1 and sequence >= 1 and format_invoice_number(prefix, year, sequence) == number:
            return InvoiceNumber(prefix, year, sequence)
    raise InvalidArgument(
        "invalid_invoice_number", "invoice number must look like INV-2025-000001", field="number"
    )


def first_free_sequence(drawn: int, taken: Container[int]) -> int:
    """The sequence a counter hands out after drawing `drawn`: `drawn` itself unless its printed number is
    already `taken` (printed by the other counter of the series), else the first free one after it.

    The smallest free one, so that nothing free is passed over: a counter switched mid-year carries on right
    after the numbers the other counter printed, and the series stays gapless. The database applies the
    same rule with one index probe per candidate (migration 0110, draw_invoice_sequence).
    """
    if isinstance(drawn, bool) or not isinstance(drawn, int) or drawn < 1:
        raise InvalidArgument("invalid_sequence", "sequence must be a positive integer", field="sequence")
    sequence = drawn
    while sequence in taken:
        sequence += 1
    return sequence
