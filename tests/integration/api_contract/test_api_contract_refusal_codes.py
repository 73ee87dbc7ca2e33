"""Every refusal a merchant route answers carries a code OpenAPI lists for that route and status (README: the
exact list of codes, as an enum). Each case provokes one refusal over real HTTP, through the real services,
and looks its code up in the document the gateway serves."""

from __future__ import annotations

from typing import Any

import pytest

from support.stack import Merchant, ServiceStack


@pytest.fixture(scope="module")
async def merchant(shared_stack: ServiceStack) -> Merchant:
    return await shared_stack.create_merchant("Refusal Codes Ltd", "refusals")


@pytest.fixture(scope="module")
async def document(shared_stack: ServiceStack) -> dict[str, Any]:
    status, body = await shared_stack.request("GET", "/openapi.json")
    assert status == 200
    return body


def listed_codes(document: dict[str, Any], method: str, path: str, status: int) -> list[str]:
    response = document["paths"][path][method.lower()]["responses"].get(str(status))
    assert response is not None, f"{method} {path} documents no {status}"
    schema = response["content"]["application/json"]["schema"]
    return schema["allOf"][1]["properties"]["error"]["properties"]["code"].get("enum", [])


# (body of POST /v1/sessions, the code it is refused with): the gateway's own shape checks of `customer`
# and the session service's checks of its values (contract §9), and an explicit empty scope list (§12).
SESSION_REFUSALS = [
    ({"customer": "Ann"}, "invalid_customer"),
    ({"customer": {"name": 5}}, "invalid_customer_name"),
    ({"customer": {"vat_id": 5}}, "invalid_customer_vat_id"),
    ({"customer": {"address": 5}}, "invalid_customer_address"),
    ({"customer": {"country": "Germany"}}, "invalid_customer_country"),
    ({"customer": {"name": "x" * 1000}}, "invalid_customer_name"),
    ({"customer": {"vat_id": "x" * 1000}}, "invalid_customer_vat_id"),
    ({"customer": {"address": ["line"] * 100}}, "invalid_customer_address"),
    ({"scopes": []}, "invalid_scopes"),
]


@pytest.mark.parametrize(("extra", "code"), SESSION_REFUSALS)
async def test_session_creation_refusals_are_listed(
    shared_stack: ServiceStack, merchant: Merchant, document: dict[str, Any], extra: dict[str, Any], code: str
) -> None:
    for path in ("/v1/sessions", "/create_session"):
        status, body = await shared_stack.request(
            "POST", path, json={"amount": "10.00", **extra}, headers=merchant.headers
        )
        assert status == 400 and body["error"]["code"] == code, (path, body)
        assert code in listed_codes(document, "POST", path, 400), (path, code)


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        # Found by reading the routes and the services they call (no cheap way to provoke them here): a late
        # payment that is short or in another currency; a quarantined payment without a reference; a retry
        # racing the first create of a webhook endpoint with the same Idempotency-Key; a card payment of a
        # mode whose One.com API key is no longer configured, which the expiry must close first.
        ("POST", "/v1/quarantine/{id}/resolve", 409, "late_payment_amount_mismatch"),
        ("POST", "/v1/quarantine/{id}/resolve", 400, "missing_provider_reference"),
        ("POST", "/v1/webhook_endpoints", 409, "idempotency_in_progress"),
        ("POST", "/v1/sessions/{id}/expire", 409, "provider_not_configured"),
        ("POST", "/v1/invoices/{id}/void", 409, "invoice_partially_credited"),
    ],
)
async def test_refusals_found_by_reading_are_listed(
    document: dict[str, Any], method: str, path: str, status: int, code: str
) -> None:
    assert code in listed_codes(document, method, path, status), (method, path, status, code)
