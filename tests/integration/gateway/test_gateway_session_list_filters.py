"""`GET /v1/sessions` filters (provider, customer email, created range, amount, currency), applied by the
session service in SQL inside the key's merchant and mode; bad values are 400 with the parameter's code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from support.stack import Merchant, ServiceStack


async def _session(stack: ServiceStack, merchant: Merchant, **body: Any) -> dict[str, Any]:
    status, created = await stack.request("POST", "/v1/sessions", json=body, headers=merchant.headers)
    assert status == 201, created
    return created


async def _ids(stack: ServiceStack, merchant: Merchant, **query: str) -> list[str]:
    status, body = await stack.request("GET", "/v1/sessions?" + urlencode(query), headers=merchant.headers)
    assert status == 200, body
    return [s["id"] for s in body["data"]]


async def test_every_filter_narrows_the_list_in_the_keys_merchant_and_mode(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    other = await stack.create_merchant()
    ann_eur = await _session(
        stack, merchant, amount="49.00", currency="EUR", provider="onecom", customer_email="Ann@Example.com"
    )
    ann_usd = await _session(
        stack, merchant, amount="120.00", currency="USD", customer_email="ann@example.com"
    )
    bob = await _session(stack, merchant, amount="5.00", currency="EUR", customer_email="bob@example.com")
    anon = await _session(stack, merchant, amount="1000", currency="JPY")
    # Another merchant's session of the same customer is never listed.
    await _session(stack, other, amount="49.00", currency="EUR", customer_email="ann@example.com")

    assert await _ids(stack, merchant) == [anon["id"], bob["id"], ann_usd["id"], ann_eur["id"]]
    assert await _ids(stack, merchant, provider="onecom") == [ann_eur["id"]]
    assert await _ids(stack, merchant, provider="card") == [anon["id"], bob["id"], ann_usd["id"]]
    # Exact, case-insensitive: a part of the address matches nothing.
    assert await _ids(stack, merchant, customer_email="ANN@example.COM") == [ann_usd["id"], ann_eur["id"]]
    assert await _ids(stack, merchant, customer_email="ann@") == []
    # Minor units of the session's own currency, bounds included.
    assert await _ids(stack, merchant, amount_min_minor="500", amount_max_minor="4900", currency="eur") == [
        bob["id"],
        ann_eur["id"],
    ]
    assert await _ids(stack, merchant, amount_min_minor="4901", currency="EUR") == []
    assert await _ids(stack, merchant, amount_min_minor="1000", currency="JPY") == [anon["id"]]
    # Without a currency a bound compares the minor units of each session's own currency.
    assert await _ids(stack, merchant, amount_max_minor="4900") == [anon["id"], bob["id"], ann_eur["id"]]
    now = datetime.now(UTC)
    assert await _ids(stack, merchant, created_from=(now + timedelta(hours=1)).isoformat()) == []
    assert len(await _ids(stack, merchant, created_to=(now + timedelta(hours=1)).isoformat())) == 4
    assert await _ids(stack, merchant, created_to=(now - timedelta(days=1)).date().isoformat()) == []
    # Filters combine, and a page of a filtered list continues the same filtered list.
    assert await _ids(stack, merchant, customer_email="ann@example.com", currency="USD") == [ann_usd["id"]]
    first = await _ids(stack, merchant, currency="EUR", limit="1")
    assert first == [bob["id"]]
    assert await _ids(stack, merchant, currency="EUR", limit="1", starting_after=first[0]) == [ann_eur["id"]]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"provider": "paypal"}, "invalid_provider"),
        ({"customer_email": "nobody"}, "invalid_customer_email"),
        ({"customer_email": "a" * 250 + "@b.co"}, "invalid_customer_email"),
        ({"created_from": "yesterday"}, "invalid_created_from"),
        ({"created_to": "2026-13-01"}, "invalid_created_to"),
        ({"created_from": "2026-02-01", "created_to": "2026-01-01"}, "invalid_created_to"),
        ({"amount_min_minor": "-5"}, "invalid_amount_min_minor"),
        ({"amount_min_minor": "4.50"}, "invalid_amount_min_minor"),
        ({"amount_max_minor": "9" * 79}, "invalid_amount_max_minor"),
        ({"amount_min_minor": "10", "amount_max_minor": "9"}, "invalid_amount_max_minor"),
        ({"currency": "EU-R"}, "invalid_currency"),
    ],
)
async def test_bad_filters_are_400_with_the_parameters_code(
    stack: ServiceStack, query: dict[str, str], code: str
) -> None:
    merchant = await stack.create_merchant()
    status, body = await stack.request("GET", "/v1/sessions?" + urlencode(query), headers=merchant.headers)
    assert status == 400, body
    assert body["error"]["code"] == code
