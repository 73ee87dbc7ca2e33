"""The checkout page's buyer details fill only what the session lacks (contract §9): pure, no I/O."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from session_service.domain.customer import Customer, fill_missing

_text = st.sampled_from(["", "Ada", "GB", "VAT1"])
_customers = st.builds(
    Customer,
    name=_text,
    country=st.sampled_from(["", "GB", "DE"]),
    address_lines=st.sampled_from([(), ("1 Lane",)]),
    vat_id=_text,
)


def test_only_missing_fields_are_filled() -> None:
    current = Customer(name="Given By Merchant", vat_id="DE1")
    merged = fill_missing(current, Customer(name="Someone Else", country="DE"))
    assert merged == Customer(name="Given By Merchant", country="DE", vat_id="DE1")
    assert fill_missing(None, Customer(name="Ada", country="GB")) == Customer(name="Ada", country="GB")


@given(_customers, _customers)
def test_a_given_value_is_never_overwritten(current: Customer, given_: Customer) -> None:
    merged = fill_missing(current, given_)
    for name in ("name", "country", "address_lines", "vat_id"):
        mine, theirs, result = getattr(current, name), getattr(given_, name), getattr(merged, name)
        assert result == (mine or theirs)
    # Filling twice changes nothing more.
    assert fill_missing(merged, given_) == merged
