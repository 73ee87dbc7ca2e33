"""The buyer a session's invoice names (contract §9): `customer: {"name", "country", "address", "vat_id"}`.

Every field is optional at creation. What is given is checked here, once, so that the invoice the session
ends in never carries a value billing would refuse: billing validates the buyer again and a refusal there,
at fulfilment, would come far too late to tell the merchant.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paygate_runtime.countries import is_iso_country
from paygate_runtime.errors import InvalidArgument

MAX_NAME = 200
MAX_LINE = 200
MAX_LINES = 10
MAX_VAT_ID = 64


@dataclass(frozen=True, slots=True)
class Customer:
    name: str = ""
    country: str = ""  # ISO 3166-1 alpha-2
    address_lines: tuple[str, ...] = ()
    vat_id: str = ""

    @property
    def is_empty(self) -> bool:
        return not (self.name or self.country or self.address_lines or self.vat_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "country": self.country,
            "address_lines": list(self.address_lines),
            "vat_id": self.vat_id,
        }


def _text(value: object, field: str, max_length: int) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(
            f"invalid_customer_{field}", f"customer.{field} must be text", field=f"customer.{field}"
        )
    value = value.strip()
    if len(value) > max_length or any(unicodedata.category(ch) == "Cc" for ch in value):
        raise InvalidArgument(
            f"invalid_customer_{field}",
            f"customer.{field} must be at most {max_length} printable characters",
            field=f"customer.{field}",
        )
    return value


def check_customer(
    *, name: object = "", country: object = "", address_lines: object = (), vat_id: object = ""
) -> Customer | None:
    """A validated customer, or None when nothing was given."""
    if not isinstance(address_lines, list | tuple):
        raise InvalidArgument(
            "invalid_customer_address",
            "customer.address must be text or a list of lines",
            field="customer.address",
        )
    if len(address_lines) > MAX_LINES:
        raise InvalidArgument(
            "invalid_customer_address",
            f"customer.address has at most {MAX_LINES} lines",
            field="customer.address",
        )
    lines = tuple(line for line in (_text(raw, "address", MAX_LINE) for raw in address_lines) if line)
    country_code = _text(country, "country", 2).upper()
    # An assigned code, not just two letters: "UK" or "EU" on the invoice breaks its Factur-X (BR-CL-14).
    # Only input is checked here; a customer stored before (customer_from_json) is read as it was.
    if country_code and not is_iso_country(country_code):
        raise InvalidArgument(
            "invalid_customer_country",
            "customer.country must be an ISO 3166-1 alpha-2 code",
            field="customer.country",
        )
    customer = Customer(
        name=_text(name, "name", MAX_NAME),
        country=country_code,
        address_lines=lines,
        vat_id=_text(vat_id, "vat_id", MAX_VAT_ID),
    )
    return None if customer.is_empty else customer


def customer_from_json(stored: Mapping[str, Any] | None) -> Customer | None:
    """The stored jsonb back to a value (it was validated on the way in)."""
    if not stored:
        return None
    return Customer(
        name=stored.get("name", ""),
        country=stored.get("country", ""),
        address_lines=tuple(stored.get("address_lines", ())),
        vat_id=stored.get("vat_id", ""),
    )


def fill_missing(current: Customer | None, given: Customer) -> Customer:
    """The checkout page's answer merged into what the session has (contract §9): each field is taken from
    `given` only where the session has none, so a value the merchant gave is never overwritten."""
    if current is None:
        return given
    return Customer(
        name=current.name or given.name,
        country=current.country or given.country,
        address_lines=current.address_lines or given.address_lines,
        vat_id=current.vat_id or given.vat_id,
    )
