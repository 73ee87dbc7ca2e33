"""The one 5xx the contract allows (§6a): a dependency that is down is 503 `unavailable`, with the error body."""

from __future__ import annotations

from support.stack import ServiceStack


async def test_a_stopped_peer_service_is_503_unavailable(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant("Outage Ltd", "outage")
    status, created = await stack.request(
        "POST", "/v1/sessions", json={"amount": "5.00"}, headers=merchant.headers
    )
    assert status == 201, created

    await stack.stop_service("billing")
    status, body = await stack.request("GET", "/v1/invoices", headers=merchant.headers)
    assert (status, body) == (
        503,
        {"error": {"code": "unavailable", "message": "a backend service is unavailable; retry later"}},
    )

    await stack.stop_service("session")
    status, body = await stack.request("GET", f"/v1/sessions/{created['id']}", headers=merchant.headers)
    assert status == 503 and body["error"]["code"] == "unavailable", body
