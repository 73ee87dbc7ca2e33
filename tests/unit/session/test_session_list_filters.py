"""The optional filters of ListSessions: normalised, or refused naming the field (never a server error)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paygate_runtime.errors import InvalidArgument
from session_service.domain.session_filters import SessionListFilter


def test_filters_are_normalised() -> None:
    checked = SessionListFilter(
        provider="card",
        customer_email=" Ann@Example.COM ",
        created_from=datetime(2026, 1, 1, tzinfo=UTC),
        created_to=datetime(2026, 2, 1, tzinfo=UTC),
        amount_min_minor="0010",
        amount_max_minor="10" * 39,
        currency="usdc",
    ).checked()
    assert checked.customer_email == "ann@example.com"
    assert checked.amount_min_minor == "10" and checked.amount_max_minor == "10" * 39
    assert checked.currency == "USDC"
    assert SessionListFilter().checked() == SessionListFilter()


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        ({"provider": "paypal"}, "invalid_provider"),
        ({"customer_email": "a" * 255}, "invalid_customer_email"),
        ({"customer_email": "a\x00@b"}, "invalid_customer_email"),
        ({"amount_min_minor": "-1"}, "invalid_amount_min_minor"),
        ({"amount_min_minor": "1.5"}, "invalid_amount_min_minor"),
        ({"amount_max_minor": "1" * 79}, "invalid_amount_max_minor"),
        ({"amount_min_minor": "5", "amount_max_minor": "4"}, "invalid_amount_max_minor"),
        ({"currency": "EU R"}, "invalid_currency"),
        (
            {
                "created_from": datetime(2026, 1, 2, tzinfo=UTC),
                "created_to": datetime(2026, 1, 1, tzinfo=UTC),
            },
            "invalid_created_to",
        ),
    ],
)
def test_bad_filters_name_their_field(bad: dict[str, object], code: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        SessionListFilter(**bad).checked()  # type: ignore[arg-type]
    assert refused.value.code == code


@given(st.text(max_size=90), st.text(max_size=90), st.text(max_size=300), st.text(max_size=20))
def test_any_text_is_either_accepted_or_refused_as_invalid_argument(
    low: str, high: str, email: str, currency: str
) -> None:
    try:
        checked = SessionListFilter(
            amount_min_minor=low, amount_max_minor=high, customer_email=email, currency=currency
        ).checked()
    except InvalidArgument:
        return
    for value in (checked.amount_min_minor, checked.amount_max_minor):
        assert value == "" or (value.isdecimal() and len(value) <= 78)
    assert "\x00" not in checked.customer_email
