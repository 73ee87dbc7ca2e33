"""The portal's pure helpers: form parsing, the SVG usage chart, and the contact mail (no header injection)."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paygate_runtime.config import Env
from webhook_gateway.entrypoints import portal_support
from webhook_gateway.entrypoints.portal_views import (
    FormError,
    parse_expiry,
    parse_grace,
    split_list,
    usage_bars,
)

SETTINGS = portal_support.SupportMailSettings("127.0.0.1", 2525, "paygate@example.test")


def test_lists_split_on_lines_commas_and_spaces() -> None:
    assert split_list(" read, write\nbilling:read  \r\n") == ["read", "write", "billing:read"]
    assert split_list("") == []


def test_grace_and_expiry_parsing() -> None:
    assert parse_grace("") == 0 and parse_grace("86400") == 86400
    for bad in ("-1", "86401", "1.5", "abc", "9" * 7):
        with pytest.raises(FormError) as caught:
            parse_grace(bad)
        assert caught.value.field == "grace_period"
    assert parse_expiry("") is None
    assert parse_expiry("2026-12-24T18:30") == datetime(2026, 12, 24, 18, 30, tzinfo=UTC)
    assert parse_expiry("2026-12-24T19:30:00+01:00") == datetime(2026, 12, 24, 18, 30, tzinfo=UTC)
    with pytest.raises(FormError) as caught:
        parse_expiry("tomorrow")
    assert caught.value.field == "expires_at"


@given(counts=st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=90))
def test_property_bars_fit_the_chart_and_keep_order(counts: list[int]) -> None:
    days = [(f"d{i}", n) for i, n in enumerate(counts)]
    bars = usage_bars(days)
    assert [b.count for b in bars] == counts
    assert all(0 <= b.height <= 80 and b.y + b.height == 80 and b.x + b.width <= 300 for b in bars)
    assert all((b.height > 0) == (b.count > 0) for b in bars)
    if max(counts) > 0:
        assert max(b.height for b in bars) == 80


def test_message_cleaning_and_limits() -> None:
    assert portal_support.clean_message("  hello\r\nworld\x00\x1b ") == "hello\nworld"
    for bad in ("", "   ", None, 5):
        with pytest.raises(portal_support.SupportFormError):
            portal_support.clean_message(bad)
    with pytest.raises(portal_support.SupportFormError) as caught:
        portal_support.clean_message("x" * 4001)
    assert caught.value.code == "message_too_long"


@pytest.mark.parametrize(
    "bad",
    [
        "ann@example.com\r\nBcc: evil@example.com",
        "ann@example.com\nBcc: evil@example.com",
        "ann@example.com, evil@example.com",
        "Ann <ann@example.com>",
        "ann@@example.com",
        "a" * 300 + "@example.com",
    ],
)
def test_reply_to_refuses_anything_but_one_plain_address(bad: str) -> None:
    with pytest.raises(portal_support.SupportFormError) as caught:
        portal_support.clean_reply_to(bad)
    assert caught.value.field == "reply_to"


@given(text=st.text(min_size=1, max_size=500))
def test_property_no_customer_text_reaches_a_header(text: str) -> None:
    try:
        body = portal_support.clean_message(text)
    except portal_support.SupportFormError:
        return
    message = portal_support.build_message(
        SETTINGS,
        to="help@acme.test",
        session_reference="sess-1",
        invoice_number="INV-1",
        text=body,
        reply_to=None,
    )
    parsed = message_from_bytes(message.as_bytes(), policy=email_policy.default)
    assert set(parsed.keys()) == {
        "From",
        "To",
        "Date",
        "Subject",
        "Message-ID",
        "Content-Type",
        "Content-Transfer-Encoding",
        "MIME-Version",
    }
    assert parsed["To"] == "help@acme.test" and parsed["Subject"] == "Customer message about purchase sess-1"
    assert "Session reference: sess-1" in parsed.get_content()


def test_mail_settings_from_the_environment() -> None:
    assert portal_support.load_settings(Env({})) is None
    settings = portal_support.load_settings(Env({"PAYGATE_SMTP_HOST": "mx", "PAYGATE_SMTP_PORT": "2525"}))
    assert settings == portal_support.SupportMailSettings("mx", 2525, "paygate@localhost")
