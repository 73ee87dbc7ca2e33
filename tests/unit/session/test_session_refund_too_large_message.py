"""`amount_too_large` tells the merchant, in the major units it sends amounts in, how much can still be
refunded: "at most 2.60 EUR can still be refunded", never a count of minor units."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paygate_runtime.errors import InvalidArgument
from paygate_runtime.money import Money
from session_service.domain.refunds import Ledger, RefundOrigin, request_refund
from session_service.domain.states import SessionStatus


def _refusal(ledger: Ledger, amount_minor: int) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        request_refund(ledger, amount_minor, refund_id=uuid.uuid4(), origin=RefundOrigin.OUTSIDE)
    assert caught.value.code == "amount_too_large"
    return caught.value


def test_the_merchants_walk_says_major_units_and_the_currency() -> None:
    ledger = Ledger(SessionStatus.PAID, 999, currency="EUR", exponent=2)
    left = request_refund(ledger, 739, refund_id=uuid.uuid4(), origin=RefundOrigin.OUTSIDE).ledger
    assert _refusal(left, 261).message == "at most 2.60 EUR can still be refunded"


@pytest.mark.parametrize(
    ("currency", "exponent", "price", "text"),
    [("JPY", 0, 500, "500 JPY"), ("BHD", 3, 1230, "1.230 BHD"), ("EUR", 2, 5, "0.05 EUR")],
)
def test_the_text_has_the_currencys_own_digits(currency: str, exponent: int, price: int, text: str) -> None:
    ledger = Ledger(SessionStatus.PAID, price, currency=currency, exponent=exponent)
    assert _refusal(ledger, price + 1).message == f"at most {text} can still be refunded"


@given(price=st.integers(min_value=1, max_value=10**30), exponent=st.integers(min_value=0, max_value=18))
def test_the_text_is_the_exact_amount_left(price: int, exponent: int) -> None:
    ledger = Ledger(SessionStatus.PAID, price, currency="ETH", exponent=exponent)
    shown = Money(price, "ETH", exponent).display()
    assert _refusal(ledger, price + 1).message == f"at most {shown} can still be refunded"
