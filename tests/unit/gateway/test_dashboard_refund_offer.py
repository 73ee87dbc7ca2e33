"""What the dashboard's Refund action offers (dashboard_refunds): as POST /v1/sessions/{id}/refund accepts it, with
web3 and open disputes not offered, and the form's amount parsed exactly in the session's exponent."""

from __future__ import annotations

import pytest

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from webhook_gateway.entrypoints.dashboard_refunds import plan_refund, refund_offer
from webhook_gateway.entrypoints.http_errors import ApiError


def _session(
    minor: int = 2500,
    currency: str = "EUR",
    exponent: int = 2,
    status: session_pb2.SessionStatus = session_pb2.SESSION_STATUS_PAID,
    provider: str = "stripe",
    refunds: tuple[tuple[int, int, str], ...] = (),  # (amount, credited, status)
    dispute: str = "",
) -> session_pb2.Session:
    session = session_pb2.Session(
        id="s1",
        status=status,
        provider=provider,
        dispute_status=dispute,
        amount=common_pb2.Money(amount_minor=str(minor), currency=currency, exponent=exponent),
    )
    for amount, credited, state in refunds:
        session.refunds.add(
            status=state,
            amount=common_pb2.Money(amount_minor=str(amount), currency=currency, exponent=exponent),
            credited=common_pb2.Money(amount_minor=str(credited), currency=currency, exponent=exponent),
        )
    return session


def test_a_paid_session_offers_its_whole_rest_in_its_exponent() -> None:
    offer = refund_offer(
        _session(refunds=((1000, 1000, "succeeded"), (300, 0, "pending"))), via_provider=False
    )
    assert offer.available and offer.default_amount == "12.00"
    plan = plan_refund(offer, "", "")
    assert (plan.amount_minor, plan.amount_text, plan.rest_minor) == (1200, "12.00 EUR", 0)
    plan = plan_refund(offer, " 2.5 ", " late ")
    assert (plan.amount, plan.rest_text, plan.reason) == ("2.50", "9.50 EUR", "late")
    jpy = refund_offer(_session(minor=1500, currency="JPY", exponent=0), via_provider=True)
    assert jpy.default_amount == "1500" and plan_refund(jpy, "700", "").rest_text == "800 JPY"


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("1.005", "amount_too_precise"),
        ("0", "amount_not_positive"),
        ("-1", "amount_not_positive"),
        ("1e3", "invalid_amount"),
        ("12.01", "amount_too_large"),
        ("9" * 41, "invalid_amount"),
    ],
)
def test_a_typed_amount_is_parsed_exactly_or_refused_with_the_apis_code(typed: str, code: str) -> None:
    offer = refund_offer(_session(refunds=((1300, 1300, "succeeded"),)), via_provider=False)
    with pytest.raises(ApiError) as refused:
        plan_refund(offer, typed, "")
    assert (refused.value.status_code, refused.value.code) == (400, code)


@pytest.mark.parametrize(
    ("session", "code"),
    [
        (_session(status=session_pb2.SESSION_STATUS_REFUNDED), "session_refunded"),
        (_session(status=session_pb2.SESSION_STATUS_CREATED), "session_not_paid"),
        (_session(status=session_pb2.SESSION_STATUS_FAILED), "session_not_paid"),
        (_session(provider="web3"), "web3_refund"),
        (_session(dispute="open"), "dispute_open"),
        (_session(refunds=((2500, 0, "pending"),)), "refund_in_progress"),
    ],
)
def test_not_offered_where_the_api_refuses_or_the_dashboard_cannot(
    session: session_pb2.Session, code: str
) -> None:
    offer = refund_offer(session, via_provider=False)
    assert not offer.available and offer.refused_code == code and offer.why_not
    with pytest.raises(ApiError) as refused:
        plan_refund(offer, "1.00", "")
    assert (refused.value.status_code, refused.value.code) == (409, code)


def test_a_won_dispute_offers_the_refund_again() -> None:
    assert refund_offer(_session(dispute="won"), via_provider=True).available
