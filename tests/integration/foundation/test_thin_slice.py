"""The vertical slice through all four services: gateway -> keys (auth) -> session, over real gRPC and HTTP."""

from __future__ import annotations

from support.stack import ServiceStack


async def test_create_then_read_session_through_gateway(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    status, created = await stack.request(
        "POST", "/v1/sessions", json={"amount": "99.99", "currency": "EUR"}, headers=merchant.headers
    )
    assert status == 201, created
    assert created["status"] == "created"
    assert created["amount_minor"] == 9999
    assert created["url"] == f"/checkout?session={created['id']}"

    status, fetched = await stack.request("GET", f"/v1/sessions/{created['id']}", headers=merchant.headers)
    assert status == 200
    assert fetched["id"] == created["id"] and fetched["amount"] == "99.99"

    status, public = await stack.request("GET", f"/session/{created['id']}/status")
    assert status == 200
    assert set(public) == {"id", "status", "payment_status", "provider", "paid_at"}


async def test_other_merchant_cannot_read_session(stack: ServiceStack) -> None:
    alice = await stack.create_merchant("Alice", "alice")
    bob = await stack.create_merchant("Bob", "bob")
    _, created = await stack.request("POST", "/v1/sessions", json={"amount": "5.00"}, headers=alice.headers)
    status, body = await stack.request("GET", f"/v1/sessions/{created['id']}", headers=bob.headers)
    assert status == 404
    assert body["error"]["code"] == "not_found"


async def test_bad_requests_get_json_errors(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    status, body = await stack.request("GET", "/no/such/route")
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await stack.request("DELETE", "/healthz")
    assert (status, body["error"]["code"]) == (405, "method_not_allowed")
    status, body = await stack.request("POST", "/v1/sessions", data=b"{not json", headers=merchant.headers)
    assert (status, body["error"]["code"]) == (400, "invalid_json")
    status, body = await stack.request("POST", "/v1/sessions", json={"amount": "1.00"})
    assert (status, body["error"]["code"]) == (401, "unauthenticated")
    status, body = await stack.request(
        "POST", "/v1/sessions", json={"amount": "1.00"}, headers={"X-API-Key": "sk_test_wrong"}
    )
    assert (status, body["error"]["code"]) == (401, "unauthenticated")


async def test_health_ready_and_no_metrics_on_the_public_port(stack: ServiceStack) -> None:
    assert (await stack.request("GET", "/healthz"))[0] == 200
    status, body = await stack.request("GET", "/readyz")
    assert status == 200 and body["status"] == "ready"
    # Metrics live on each service's own metrics port (tests/integration/observability), not here.
    status, body = await stack.request("GET", "/metrics")
    assert status == 404 and body["error"]["code"] == "not_found"
