"""Invoices and credit notes: immutable values, validated once when they are built.

An issued document never changes except status issued -> void; a correction is a credit note that negates
the original exactly and draws its number from the same merchant sequence. Amounts are integers in minor
units next to their currency and exponent; nothing here ever touches a float.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeGuard

from paygate_runtime.countries import is_iso_country
from paygate_runtime.errors import FailedPrecondition, InvalidArgument
from paygate_runtime.money import MAX_EXPONENT, check_unit, format_major
from paygate_runtime.money.assets import is_canonical_code

from .numbering import format_invoice_number, validate_prefix
from .tax import split_tax, validate_tax_rate

DEFAULT_LINE_DESCRIPTION = "API access"
# Amounts are stored as NUMERIC(78,0); refusing anything wider here keeps the database error out of reach.
MAX_AMOUNT_MINOR = 10**78 - 1
MAX_LINE_ITEMS = 100
MAX_QUANTITY = 1_000_000_000
MAX_ID_LENGTH = 200
MAX_TEXT_LENGTH = 500
MAX_NAME_LENGTH = 200
MAX_EMAIL_LENGTH = 254
MAX_TAX_ID_LENGTH = 64
MAX_ADDRESS_LINES = 10

# The shape of a country code (upper case, as stored). Which codes are assigned is new input's concern only:
# see check_new_country.
_COUNTRY_RE = re.compile(r"[A-Z]{2}")
# Deliberately loose: one @, something on each side, a dot in the domain, no spaces. Deliverability is not
# an invoice's concern, but a string that cannot be an address should not be printed as one.
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class Mode(StrEnum):
    TEST = "test"
    LIVE = "live"


class DocumentKind(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class InvoiceStatus(StrEnum):
    ISSUED = "issued"
    VOID = "void"


@dataclass(frozen=True, slots=True)
class Address:
    lines: tuple[str, ...] = ()
    country: str = ""  # ISO 3166-1 alpha-2, optional

    @property
    def is_empty(self) -> bool:
        return not self.lines and not self.country


@dataclass(frozen=True, slots=True)
class Party:
    name: str = ""
    email: str = ""
    address: Address = field(default_factory=Address)
    tax_id: str = ""


@dataclass(frozen=True, slots=True)
class LineItem:
    description: str
    quantity: int
    unit_amount: int  # gross, tax included, minor units; negative on a credit note

    @property
    def amount(self) -> int:
        return self.quantity * self.unit_amount


@dataclass(frozen=True, slots=True)
class Invoice:
    """An issued invoice or credit note, field for field the proto `Invoice` plus `reason` and `paid_at`."""

    id: str
    number: str
    kind: DocumentKind
    merchant_id: str
    mode: Mode
    session_id: str
    seller: Party
    buyer: Party
    line_items: tuple[LineItem, ...]
    subtotal: int  # net = total - tax
    tax_rate_bps: int
    tax: int
    total: int  # tax included; negative for a credit note
    currency: str
    exponent: int
    issued_at: datetime
    status: InvoiceStatus
    sequence: int
    credits_invoice_id: str | None = None  # credit note -> the invoice it cancels
    credit_note_id: str | None = None  # void invoice -> the credit note that cancels it
    reason: str = ""  # printed on a credit note
    paid_at: datetime | None = None  # supply date of an invoice
    # A refund's or lost dispute's credit note: its refund; "" for any other stored document; None for one
    # built in memory and not read back (credit_notes.credit_origin then reads its line).
    refund_id: str | None = None

    @property
    def is_credit_note(self) -> bool:
        return self.kind == DocumentKind.CREDIT_NOTE

    @property
    def is_void(self) -> bool:
        return self.status == InvoiceStatus.VOID


@dataclass(frozen=True, slots=True)
class InvoiceDraft:
    """A fully validated invoice that has no id, number or issue time yet.

    Validating before the counter row is locked keeps bad requests from ever holding the merchant's hot row.
    """

    merchant_id: str
    mode: Mode
    session_id: str
    seller: Party
    buyer: Party
    line_items: tuple[LineItem, ...]
    subtotal: int
    tax_rate_bps: int
    tax: int
    total: int
    currency: str
    exponent: int
    paid_at: datetime | None = None


# --- field validation -----------------------------------------------------------------------------------


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _clean_text(value: object, *, field_name: str, code: str, max_length: int, required: bool = False) -> str:
    """Return a printable single-line string or refuse it; control characters would corrupt the receipt."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidArgument(code, f"{field_name} must be text", field=field_name)
    if not value.strip():
        if required:
            raise InvalidArgument(f"missing_{field_name}", f"{field_name} is required", field=field_name)
        return ""
    if len(value) > max_length or any(unicodedata.category(ch) == "Cc" for ch in value):
        raise InvalidArgument(
            code, f"{field_name} must be at most {max_length} printable characters", field=field_name
        )
    return value


def parse_mode(mode: object) -> Mode:
    try:
        return Mode(mode if isinstance(mode, str) else "")  # not a string: no mode, refused below
    except ValueError:
        raise InvalidArgument("invalid_mode", "mode must be test or live", field="mode") from None


def validate_currency(currency: object) -> str:
    if currency is None or currency == "":
        raise InvalidArgument("missing_currency", "currency is required", field="currency")
    if not isinstance(currency, str) or not is_canonical_code(currency):
        raise InvalidArgument(
            "invalid_currency", "currency must be 1 to 11 characters A-Z or 0-9", field="currency"
        )
    return currency


def validate_exponent(exponent: object) -> int:
    if not _is_int(exponent) or not 0 <= exponent <= MAX_EXPONENT:
        raise InvalidArgument(
            "invalid_exponent", "exponent must be an integer from 0 to 18", field="exponent"
        )
    return exponent


def validate_amount(amount_minor: object) -> int:
    if not _is_int(amount_minor) or not 0 < amount_minor <= MAX_AMOUNT_MINOR:
        raise InvalidArgument(
            "invalid_amount", "amount must be a positive integer in minor units", field="amount"
        )
    return amount_minor


def _require_aware(moment: object, field_name: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidArgument(
            f"invalid_{field_name}", f"{field_name} must be a time-zone aware datetime", field=field_name
        )
    # Normalised to UTC so that the year in the number and the printed date never depend on the caller's zone.
    return moment.astimezone(UTC)


def validate_party(party: Party, role: str) -> Party:
    """Check a seller or buyer; only the shape is checked, every field is optional."""
    if not isinstance(party, Party):
        raise InvalidArgument(f"invalid_{role}", f"{role} must be a party", field=role)
    name = _clean_text(
        party.name, field_name=f"{role}_name", code=f"invalid_{role}_name", max_length=MAX_NAME_LENGTH
    )
    email = _clean_text(
        party.email, field_name=f"{role}_email", code=f"invalid_{role}_email", max_length=MAX_EMAIL_LENGTH
    )
    if email and _EMAIL_RE.fullmatch(email) is None:
        raise InvalidArgument(
            f"invalid_{role}_email", f"{role} email is not an email address", field=f"{role}_email"
        )
    tax_id = _clean_text(
        party.tax_id, field_name=f"{role}_tax_id", code=f"invalid_{role}_tax_id", max_length=MAX_TAX_ID_LENGTH
    )
    address = party.address if party.address is not None else Address()
    address_field = f"{role}_address"
    if len(address.lines) > MAX_ADDRESS_LINES:
        raise InvalidArgument(
            f"invalid_{address_field}",
            f"{role} address has more than {MAX_ADDRESS_LINES} lines",
            field=address_field,
        )
    lines = tuple(
        _clean_text(
            line, field_name=address_field, code=f"invalid_{address_field}", max_length=MAX_NAME_LENGTH
        )
        for line in address.lines
    )
    country = address.country or ""
    if country and (not isinstance(country, str) or _COUNTRY_RE.fullmatch(country) is None):
        raise InvalidArgument(
            f"invalid_{role}_country",
            f"{role} country must be an ISO 3166-1 alpha-2 code",
            field=f"{role}_country",
        )
    return Party(
        name=name.strip(),
        email=email.strip(),
        address=Address(lines=tuple(line.strip() for line in lines if line.strip()), country=country),
        tax_id=tax_id.strip(),
    )


def check_new_country(party: Party, role: str, *, stored: Party | None = None) -> None:
    """New input only: the party's country must be an assigned ISO 3166-1 alpha-2 code, not just two letters
    ("UK", "EU" or "ZZ" in the Factur-X XML breaks EN 16931's code list, BR-CL-14). validate_party checks the
    shape alone because draft_invoice runs it on stored parties too (the saved seller, the session's buyer),
    which were accepted under the two-letter rule and must keep invoicing. The `stored` party's own country is
    not new either: a profile saved with "UK" can still change its tax rate alone."""
    country = party.address.country
    if not country or (stored is not None and country == stored.address.country) or is_iso_country(country):
        return
    raise InvalidArgument(
        f"invalid_{role}_country",
        f"{role} country must be an ISO 3166-1 alpha-2 code",
        field=f"{role}_country",
    )


def _validate_line_items(line_items: Sequence[LineItem], total: int) -> tuple[LineItem, ...]:
    if not line_items:
        return (LineItem(DEFAULT_LINE_DESCRIPTION, 1, total),)
    if len(line_items) > MAX_LINE_ITEMS:
        raise InvalidArgument(
            "too_many_line_items", f"at most {MAX_LINE_ITEMS} line items are allowed", field="line_items"
        )
    items: list[LineItem] = []
    for item in line_items:
        if not isinstance(item, LineItem):
            raise InvalidArgument(
                "invalid_line_item", "line items must be LineItem values", field="line_items"
            )
        description = _clean_text(
            item.description,
            field_name="line_item_description",
            code="invalid_line_item_description",
            max_length=MAX_TEXT_LENGTH,
            required=True,
        )
        if not _is_int(item.quantity) or not 1 <= item.quantity <= MAX_QUANTITY:
            raise InvalidArgument(
                "invalid_quantity", "quantity must be an integer of at least 1", field="line_items.quantity"
            )
        # A zero-priced line (a bonus) is legitimate; a negative one belongs on a credit note, not an invoice.
        if not _is_int(item.unit_amount) or not 0 <= item.unit_amount <= MAX_AMOUNT_MINOR:
            raise InvalidArgument(
                "invalid_unit_amount",
                "unit_amount must be a non-negative integer in minor units",
                field="line_items.unit_amount",
            )
        items.append(LineItem(description.strip(), item.quantity, item.unit_amount))
    if sum(item.amount for item in items) != total:
        raise InvalidArgument(
            "line_items_mismatch", "line items must add up to the amount exactly", field="line_items"
        )
    return tuple(items)


def _validate_id(value: object, name: str) -> str:
    return _clean_text(
        value, field_name=name, code=f"invalid_{name}", max_length=MAX_ID_LENGTH, required=True
    )


# --- building documents -----------------------------------------------------------------------------------


def draft_invoice(
    *,
    merchant_id: str,
    mode: Mode | str,
    session_id: str,
    amount_minor: int,
    currency: str,
    exponent: int,
    seller: Party,
    buyer: Party | None = None,
    line_items: Sequence[LineItem] = (),
    tax_rate_bps: int = 0,
    paid_at: datetime | None = None,
) -> InvoiceDraft:
    """Validate everything an invoice needs except its identity; raises InvalidArgument naming the field."""
    merchant_id = _validate_id(merchant_id, "merchant_id")
    parsed_mode = parse_mode(mode)
    session_id = _validate_id(session_id, "session_id")
    total = validate_amount(amount_minor)
    # The shared rule (paygate_runtime.money): whatever a session can be priced in is invoiced.
    unit = check_unit(validate_currency(currency), validate_exponent(exponent))
    currency, exponent = unit.code, unit.exponent
    tax_rate_bps = validate_tax_rate(tax_rate_bps)
    items = _validate_line_items(line_items, total)
    split = split_tax(total, tax_rate_bps)
    return InvoiceDraft(
        merchant_id=merchant_id,
        mode=parsed_mode,
        session_id=session_id,
        seller=validate_party(seller, "seller"),
        buyer=validate_party(buyer if buyer is not None else Party(), "buyer"),
        line_items=items,
        subtotal=split.net,
        tax_rate_bps=tax_rate_bps,
        tax=split.tax,
        total=total,
        currency=currency,
        exponent=exponent,
        paid_at=_require_aware(paid_at, "paid_at") if paid_at is not None else None,
    )


def issue_draft(draft: InvoiceDraft, *, id: str, prefix: str, sequence: int, issued_at: datetime) -> Invoice:
    """Give a draft its identity: the number's year is the UTC year of `issued_at`."""
    issued_at = _require_aware(issued_at, "issued_at")
    return Invoice(
        id=_validate_id(id, "id"),
        number=format_invoice_number(validate_prefix(prefix), issued_at.year, sequence),
        kind=DocumentKind.INVOICE,
        merchant_id=draft.merchant_id,
        mode=draft.mode,
        session_id=draft.session_id,
        seller=draft.seller,
        buyer=draft.buyer,
        line_items=draft.line_items,
        subtotal=draft.subtotal,
        tax_rate_bps=draft.tax_rate_bps,
        tax=draft.tax,
        total=draft.total,
        currency=draft.currency,
        exponent=draft.exponent,
        issued_at=issued_at,
        status=InvoiceStatus.ISSUED,
        sequence=sequence,
        paid_at=draft.paid_at,
    )


def build_invoice(
    *,
    id: str,
    merchant_id: str,
    mode: Mode | str,
    session_id: str,
    amount_minor: int,
    currency: str,
    exponent: int,
    seller: Party,
    prefix: str,
    sequence: int,
    issued_at: datetime,
    buyer: Party | None = None,
    line_items: Sequence[LineItem] = (),
    tax_rate_bps: int = 0,
    paid_at: datetime | None = None,
) -> Invoice:
    """draft_invoice + issue_draft in one call."""
    draft = draft_invoice(
        merchant_id=merchant_id,
        mode=mode,
        session_id=session_id,
        amount_minor=amount_minor,
        currency=currency,
        exponent=exponent,
        seller=seller,
        buyer=buyer,
        line_items=line_items,
        tax_rate_bps=tax_rate_bps,
        paid_at=paid_at,
    )
    return issue_draft(draft, id=id, prefix=prefix, sequence=sequence, issued_at=issued_at)


def ensure_voidable(original: Invoice) -> None:
    """Only a standing invoice can be voided: a credit note is never voided, and nothing is voided twice."""
    if original.kind != DocumentKind.INVOICE:
        raise FailedPrecondition("not_an_invoice", "a credit note cannot be voided", field="invoice_id")
    if original.status == InvoiceStatus.VOID:
        raise FailedPrecondition("already_void", "the invoice is already void", field="invoice_id")


def build_credit_note(
    original: Invoice, *, id: str, prefix: str, sequence: int, issued_at: datetime, reason: str = ""
) -> Invoice:
    """The credit note that cancels `original`: every amount negated exactly, same currency and tax rate.

    It keeps the original's session id for traceability, so a unique index on session_id must be partial
    (WHERE kind = 'invoice').
    """
    ensure_voidable(original)
    issued_at = _require_aware(issued_at, "issued_at")
    reason = _clean_text(
        reason, field_name="reason", code="invalid_reason", max_length=MAX_TEXT_LENGTH
    ).strip()
    return credit_note_of(
        original,
        id=_validate_id(id, "id"),
        prefix=prefix,
        sequence=sequence,
        issued_at=issued_at,
        line_items=tuple(LineItem(i.description, i.quantity, -i.unit_amount) for i in original.line_items),
        subtotal=-original.subtotal,
        tax=-original.tax,
        total=-original.total,
        reason=reason,
    )


def credit_note_of(
    original: Invoice,
    *,
    id: str,
    prefix: str,
    sequence: int,
    issued_at: datetime,
    line_items: tuple[LineItem, ...],
    subtotal: int,
    tax: int,
    total: int,
    reason: str,
) -> Invoice:
    """A credit note referencing `original`, for the (negative) amounts given: the original's merchant,
    mode, session, parties, tax rate and currency; numbered in the merchant's sequence like any document.
    Shared by the void (everything credited) and the refund (part of it) credit notes."""
    return Invoice(
        id=id,
        number=format_invoice_number(validate_prefix(prefix), issued_at.year, sequence),
        kind=DocumentKind.CREDIT_NOTE,
        merchant_id=original.merchant_id,
        mode=original.mode,
        session_id=original.session_id,
        seller=original.seller,
        buyer=original.buyer,
        line_items=line_items,
        subtotal=subtotal,
        tax_rate_bps=original.tax_rate_bps,
        tax=tax,
        total=total,
        currency=original.currency,
        exponent=original.exponent,
        issued_at=issued_at,
        status=InvoiceStatus.ISSUED,
        sequence=sequence,
        credits_invoice_id=original.id,
        reason=reason,
    )


def mark_void(original: Invoice, credit_note: Invoice) -> Invoice:
    """The original as it reads after voiding: status void and a pointer to its credit note, nothing else."""
    ensure_voidable(original)
    if credit_note.kind != DocumentKind.CREDIT_NOTE or credit_note.credits_invoice_id != original.id:
        raise FailedPrecondition(
            "credit_note_mismatch", "the credit note does not reference this invoice", field="credit_note_id"
        )
    return replace(original, status=InvoiceStatus.VOID, credit_note_id=credit_note.id)


def check_reissue(
    existing: Invoice,
    amount_minor: int,
    currency: str,
    *,
    merchant_id: str | None = None,
    mode: Mode | str | None = None,
) -> Invoice:
    """A retry of IssueInvoice for a session that already has an invoice: return it if the request matches.

    Another amount or currency is `invoice_amount_conflict`; another merchant or mode is
    `invoice_session_conflict` (never hand one merchant another merchant's invoice).
    """
    if (merchant_id is not None and merchant_id != existing.merchant_id) or (
        mode is not None and str(mode) != str(existing.mode)
    ):
        raise FailedPrecondition(
            "invoice_session_conflict", "this session was invoiced in another scope", field="session_id"
        )
    if amount_minor != existing.total or currency != existing.currency:
        raise FailedPrecondition(
            "invoice_amount_conflict",
            "this session was already invoiced with another amount or currency",
            field="amount",
        )
    return existing


def format_amount(minor: int, exponent: int) -> str:
    """Exact decimal text of minor units: (9999, 2) -> "99.99", (-5, 2) -> "-0.05", (500, 0) -> "500"."""
    if not _is_int(minor):
        raise InvalidArgument("invalid_amount", "amount must be an integer in minor units", field="amount")
    return format_major(minor, validate_exponent(exponent))


def format_money(minor: int, exponent: int, currency: str) -> str:
    """`format_money(9999, 2, "EUR")` -> "99.99 EUR"; negative amounts keep a leading minus sign."""
    return f"{format_amount(minor, exponent)} {validate_currency(currency)}"
