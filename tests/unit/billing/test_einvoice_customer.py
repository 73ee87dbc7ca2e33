"""The session's `customer` (contract §9) is validated once and becomes the invoice's buyer."""

from __future__ import annotations

import json

import pytest

from paygate_runtime.errors import InvalidArgument
from session_service.adapters.downstream import _buyer
from session_service.domain.customer import Customer, check_customer, customer_from_json
from webhook_gateway.entrypoints.http_errors import ApiError
from webhook_gateway.entrypoints.routes_sessions import parse_customer


def test_every_field_is_optional_and_nothing_given_is_none() -> None:
    assert check_customer() is None
    assert check_customer(name="  ", address_lines=["", " "]) is None
    assert check_customer(country="fr") == Customer(country="FR")


def test_values_are_cleaned_and_kept() -> None:
    customer = check_customer(
        name=" Kunde SARL ", country="FR", address_lines=("2 rue de la Paix", "75002 Paris"), vat_id="FR1"
    )
    assert customer == Customer("Kunde SARL", "FR", ("2 rue de la Paix", "75002 Paris"), "FR1")
    assert customer_from_json(json.loads(json.dumps(customer.to_json()))) == customer


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"country": "FRA"}, "invalid_customer_country"),
        ({"country": "F1"}, "invalid_customer_country"),
        ({"name": "x" * 201}, "invalid_customer_name"),
        ({"name": "line\nbreak"}, "invalid_customer_name"),
        ({"vat_id": "x" * 65}, "invalid_customer_vat_id"),
        ({"address_lines": ["l"] * 11}, "invalid_customer_address"),
        ({"address_lines": [1]}, "invalid_customer_address"),
    ],
)
def test_bad_values_are_refused_naming_the_field(kwargs: dict[str, object], code: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_customer(**kwargs)  # type: ignore[arg-type]
    assert refused.value.code == code


def test_the_gateway_accepts_an_address_as_text_or_lines_and_refuses_other_shapes() -> None:
    parsed = parse_customer({"name": "Jo", "address": "1 Main St\nSpringfield", "country": "US"})
    assert parsed is not None and list(parsed.address_lines) == ["1 Main St", "Springfield"]
    assert parse_customer(None) is None
    for bad in ("Jo", {"nickname": "Jo"}, {"name": 5}, {"address": {"line": "x"}}):
        with pytest.raises(ApiError):
            parse_customer(bad)


def test_the_invoice_buyer_is_the_customer_with_the_email() -> None:
    row = {
        "customer_email": "jo@example.com",
        "customer": json.dumps(Customer("Kunde SARL", "FR", ("2 rue de la Paix",), "FR1").to_json()),
    }
    buyer = _buyer(row)
    assert (buyer.name, buyer.email, buyer.tax_id) == ("Kunde SARL", "jo@example.com", "FR1")
    assert (list(buyer.address.lines), buyer.address.country) == (["2 rue de la Paix"], "FR")
    bare = _buyer({"customer_email": None, "customer": None})
    assert (bare.name, bare.email, bare.address.country) == ("", "", "")
