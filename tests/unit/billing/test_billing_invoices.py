from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from billing_service.domain.invoices import (
    DEFAULT_LINE_DESCRIPTION,
    Address,
    DocumentKind,
    Invoice,
    InvoiceStatus,
    LineItem,
    Mode,
    Party,
    build_invoice,
    check_reissue,
    draft_invoice,
    format_amount,
    format_money,
    issue_draft,
)
from paygate_runtime.errors import FailedPrecondition, InvalidArgument

ISSUED_AT = datetime(2025, 3, 14, 10, 22, tzinfo=UTC)
SELLER = Party(
    name="Acme GmbH", email="billing@acme.test", address=Address(("Hauptstr. 1", "10115 Berlin"), "DE")
)


def _invoice(**overrides: Any) -> Invoice:
    args: dict[str, Any] = {
        "id": "inv-1",
        "merchant_id": "m1",
        "mode": "live",
        "session_id": "s1",
        "amount_minor": 9_999,
        "currency": "EUR",
        "exponent": 2,
        "seller": SELLER,
        "buyer": Party(email="buyer@example.com"),
        "prefix": "INV",
        "sequence": 7,
        "issued_at": ISSUED_AT,
    }
    args.update(overrides)
    return build_invoice(**args)


def test_builds_an_issued_invoice_with_number_and_default_line() -> None:
    invoice = _invoice(tax_rate_bps=1_900)
    assert invoice.number == "INV-2025-000007"
    assert invoice.sequence == 7
    assert invoice.kind == DocumentKind.INVOICE
    assert invoice.status == InvoiceStatus.ISSUED
    assert invoice.mode == Mode.LIVE
    assert invoice.line_items == (LineItem(DEFAULT_LINE_DESCRIPTION, 1, 9_999),)
    assert (invoice.subtotal, invoice.tax, invoice.total) == (8_403, 1_596, 9_999)
    assert invoice.subtotal + invoice.tax == invoice.total
    assert invoice.credits_invoice_id is None and invoice.credit_note_id is None


def test_invoice_is_immutable() -> None:
    invoice = _invoice()
    with pytest.raises(dataclasses.FrozenInstanceError):
        invoice.total = 1  # type: ignore[misc]


def test_explicit_line_items_must_add_up_to_the_amount() -> None:
    lines = [LineItem("Plan", 2, 4_000), LineItem("Setup", 1, 1_999)]
    assert _invoice(line_items=lines).line_items == tuple(lines)
    with pytest.raises(InvalidArgument) as err:
        _invoice(line_items=[LineItem("Plan", 2, 4_000)])
    assert (err.value.code, err.value.field) == ("line_items_mismatch", "line_items")


def test_issue_time_is_normalised_to_utc_and_sets_the_year() -> None:
    tokyo = timezone(timedelta(hours=9))
    invoice = _invoice(issued_at=datetime(2026, 1, 1, 5, 0, tzinfo=tokyo))
    assert invoice.issued_at == datetime(2025, 12, 31, 20, 0, tzinfo=UTC)
    assert invoice.number == "INV-2025-000007"


def test_draft_then_issue_equals_build() -> None:
    draft = draft_invoice(
        merchant_id="m1", mode="live", session_id="s1", amount_minor=9_999, currency="EUR", exponent=2,
        seller=SELLER, buyer=Party(email="buyer@example.com"),
    )  # fmt: skip
    assert issue_draft(draft, id="inv-1", prefix="INV", sequence=7, issued_at=ISSUED_AT) == _invoice()


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"amount_minor": 0}, "invalid_amount", "amount"),
        ({"amount_minor": -5}, "invalid_amount", "amount"),
        ({"amount_minor": 99.99}, "invalid_amount", "amount"),
        ({"amount_minor": True}, "invalid_amount", "amount"),
        ({"amount_minor": 10**78}, "invalid_amount", "amount"),
        ({"currency": "eur"}, "invalid_currency", "currency"),
        ({"currency": "A" * 12}, "invalid_currency", "currency"),
        ({"currency": "BGN"}, "unknown_currency", "currency"),  # withdrawn from ISO 4217 on 2026-01-01
        ({"currency": "USD", "exponent": 6}, "invalid_exponent", "exponent"),
        ({"currency": "EURO-DOLLAR"}, "invalid_currency", "currency"),
        ({"currency": ""}, "missing_currency", "currency"),
        ({"exponent": 19}, "invalid_exponent", "exponent"),
        ({"exponent": -1}, "invalid_exponent", "exponent"),
        ({"session_id": ""}, "missing_session_id", "session_id"),
        ({"session_id": "   "}, "missing_session_id", "session_id"),
        ({"merchant_id": ""}, "missing_merchant_id", "merchant_id"),
        ({"merchant_id": "m\x001"}, "invalid_merchant_id", "merchant_id"),
        ({"mode": "prod"}, "invalid_mode", "mode"),
        ({"tax_rate_bps": 10_001}, "invalid_tax_rate", "tax_rate_bps"),
        ({"prefix": "inv"}, "invalid_invoice_prefix", "invoice_prefix"),
        ({"sequence": 0}, "invalid_sequence", "sequence"),
        ({"issued_at": datetime(2025, 1, 1)}, "invalid_issued_at", "issued_at"),
        ({"paid_at": datetime(2025, 1, 1)}, "invalid_paid_at", "paid_at"),
        ({"buyer": Party(email="not-an-email")}, "invalid_buyer_email", "buyer_email"),
        ({"buyer": Party(name="x" * 201)}, "invalid_buyer_name", "buyer_name"),
        ({"buyer": Party(address=Address(country="Germany"))}, "invalid_buyer_country", "buyer_country"),
        ({"seller": Party(name="Acme\nEvil")}, "invalid_seller_name", "seller_name"),
        ({"line_items": [LineItem("Plan", 0, 9_999)]}, "invalid_quantity", "line_items.quantity"),
        ({"line_items": [LineItem("Plan", 1, -1), LineItem("x", 1, 10_000)]}, "invalid_unit_amount",
         "line_items.unit_amount"),
        ({"line_items": [LineItem(" ", 1, 9_999)]}, "missing_line_item_description", "line_item_description"),
        ({"line_items": [LineItem("a", 1, 0)] * 100 + [LineItem("b", 1, 9_999)]}, "too_many_line_items",
         "line_items"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_with_a_code_naming_the_field(
    overrides: dict[str, Any], code: str, field: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        _invoice(**overrides)
    assert (err.value.code, err.value.field) == (code, field)


def test_buyer_is_optional_and_text_is_trimmed() -> None:
    invoice = _invoice(buyer=None, seller=Party(name="  Acme  ", address=Address(("  a  ", "", "b"))))
    assert invoice.buyer == Party()
    assert invoice.seller.name == "Acme"
    assert invoice.seller.address.lines == ("a", "b")


def test_zero_priced_line_is_allowed_next_to_paid_ones() -> None:
    invoice = _invoice(line_items=[LineItem("Plan", 1, 9_999), LineItem("Onboarding (free)", 1, 0)])
    assert sum(item.amount for item in invoice.line_items) == invoice.total


def test_eighteen_decimal_amounts_stay_exact() -> None:
    invoice = _invoice(amount_minor=10**18 + 1, currency="ETH", exponent=18, tax_rate_bps=2_000)
    assert invoice.subtotal + invoice.tax == 10**18 + 1
    assert format_money(invoice.total, 18, "ETH") == "1.000000000000000001 ETH"


def test_reissue_with_same_amount_and_currency_returns_the_existing_invoice() -> None:
    existing = _invoice()
    assert check_reissue(existing, 9_999, "EUR", merchant_id="m1", mode="live") is existing


@pytest.mark.parametrize(("amount", "currency"), [(10_000, "EUR"), (9_999, "USD")])
def test_reissue_with_other_amount_or_currency_is_a_conflict(amount: int, currency: str) -> None:
    with pytest.raises(FailedPrecondition) as err:
        check_reissue(_invoice(), amount, currency)
    assert err.value.code == "invoice_amount_conflict"


@pytest.mark.parametrize("scope", [{"merchant_id": "m2"}, {"mode": "test"}])
def test_reissue_from_another_merchant_or_mode_is_a_conflict(scope: dict[str, str]) -> None:
    with pytest.raises(FailedPrecondition) as err:
        check_reissue(_invoice(), 9_999, "EUR", **scope)
    assert err.value.code == "invoice_session_conflict"


@pytest.mark.parametrize(
    ("minor", "exponent", "currency", "text"),
    [
        (9_999, 2, "EUR", "99.99 EUR"),
        (-9_999, 2, "EUR", "-99.99 EUR"),
        (5, 2, "EUR", "0.05 EUR"),
        (-5, 2, "EUR", "-0.05 EUR"),
        (0, 2, "EUR", "0.00 EUR"),
        (500, 0, "JPY", "500 JPY"),
        (-500, 0, "JPY", "-500 JPY"),
        (1_234, 3, "BHD", "1.234 BHD"),
        (1, 18, "ETH", "0.000000000000000001 ETH"),
        (1_500_000, 6, "USDC", "1.500000 USDC"),
    ],
)
def test_format_money_is_exact(minor: int, exponent: int, currency: str, text: str) -> None:
    assert format_money(minor, exponent, currency) == text


def test_format_amount_refuses_floats_and_bad_exponents() -> None:
    with pytest.raises(InvalidArgument):
        format_amount(99.99, 2)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        format_amount(1, 19)
