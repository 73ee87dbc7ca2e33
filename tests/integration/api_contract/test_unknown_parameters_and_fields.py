"""Unknown query parameters and unknown JSON body fields on the merchant API are refused, never ignored.

A merchant's walk found `GET /v1/invoices?session_id=...` answering every invoice (session_id is no filter
there), a refund body's `currency` ignored (10 USD refunded when 10 EUR was asked), and `seller_name` sent flat
on the billing profile dropped without a word. Each is now 400 with a code that names the field (contract
§6a): `unknown_parameter` for the query, `unknown_field` for the body. The accepted names come from the
OpenAPI document (`GET /openapi.json`), the single source of truth; pages and provider webhooks are not
touched.

The last tests read the handler modules: every query parameter a /v1 handler reads must be in the document
(else the strict check would refuse a parameter the handler uses), and every merchant operation's document
lists the two codes.
"""

from __future__ import annotations

import ast
import inspect
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paygate_dev.devtools.signing import stripe_delivery
from paygate_dev.devtools.stripe_fixtures import build_stripe_event
from support.polling import eventually
from support.stack import Merchant, ServiceStack
from webhook_gateway.entrypoints import openapi_document

ENTRYPOINTS = Path(inspect.getfile(openapi_document)).parent


@pytest.fixture(scope="module")
async def merchant(shared_stack: ServiceStack) -> Merchant:
    return await shared_stack.create_merchant("Strict Input Ltd", "strict")


def assert_refused(status: int, body: Any, code: str, name: str) -> str:
    assert status == 400, body
    assert isinstance(body, dict) and body["error"]["code"] == code, body
    message = body["error"]["message"]
    assert repr(name) in message, message
    return str(message)


async def _paid_session(stack: ServiceStack, merchant: Merchant, amount: str = "20.00") -> dict[str, Any]:
    status, session = await stack.request(
        "POST", "/v1/sessions", json={"amount": amount, "currency": "USD"}, headers=merchant.headers
    )
    assert status == 201, session
    event = build_stripe_event("payment_intent.succeeded", session["id"], int(float(amount) * 100), "usd")
    secret = stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"].split(",")[0]
    raw, headers = stripe_delivery(event, secret, int(time.time()))
    status, body = await stack.request("POST", "/webhooks/stripe", data=raw, headers=headers)
    assert status == 200, body

    async def paid() -> dict[str, Any] | None:
        status, detail = await stack.request("GET", f"/v1/sessions/{session['id']}", headers=merchant.headers)
        return detail if status == 200 and detail["status"] == "paid" else None

    return dict(await eventually(paid, timeout=30, what="the session paid"))


# --- query parameters ----------------------------------------------------------------------------------


async def test_invoices_list_refuses_session_id_and_names_the_accepted_parameters(
    shared_stack: ServiceStack, merchant: Merchant
) -> None:
    status, body = await shared_stack.request(
        "GET", f"/v1/invoices?session_id={uuid.uuid4()}", headers=merchant.headers
    )
    message = assert_refused(status, body, "unknown_parameter", "session_id")
    for accepted in ("status", "kind", "from", "to", "limit", "starting_after"):
        assert accepted in message, message


async def test_unknown_parameter_among_documented_ones_is_refused(
    shared_stack: ServiceStack, merchant: Merchant
) -> None:
    status, body = await shared_stack.request(
        "GET", "/v1/sessions?limit=5&stauts=paid", headers=merchant.headers
    )
    assert_refused(status, body, "unknown_parameter", "stauts")
    # A route that takes no query parameter at all refuses any.
    status, body = await shared_stack.request(
        "GET", "/v1/billing_profile?mode=live", headers=merchant.headers
    )
    assert_refused(status, body, "unknown_parameter", "mode")


async def test_a_caller_without_a_valid_key_is_refused_401_before_its_query_is_read(
    shared_stack: ServiceStack, merchant: Merchant
) -> None:
    """Authentication comes first, as on every other refusal: a request with no key, or a key that is not one,
    is 401 `unauthenticated` whatever its query, and only an authenticated caller hears which parameter is
    unknown."""
    for headers in ({}, {"Authorization": "Bearer sk_test_" + "0" * 32}):
        status, body = await shared_stack.request("GET", "/v1/invoices?session_id=abc", headers=headers)
        assert status == 401, body
        assert body["error"]["code"] == "unauthenticated", body
    status, body = await shared_stack.request("GET", "/v1/invoices?session_id=abc", headers=merchant.headers)
    assert_refused(status, body, "unknown_parameter", "session_id")


async def test_documented_parameters_still_work(shared_stack: ServiceStack, merchant: Merchant) -> None:
    status, body = await shared_stack.request(
        "GET", "/v1/invoices?status=issued&kind=invoice&limit=5", headers=merchant.headers
    )
    assert status == 200 and body["object"] == "list", body
    status, body = await shared_stack.request(
        "GET", "/v1/sessions?status=paid&limit=1&currency=eur", headers=merchant.headers
    )
    assert status == 200 and body["object"] == "list", body
    status, body = await shared_stack.request("GET", "/v1/revenue?interval=week", headers=merchant.headers)
    assert status == 200, body
    # The parameter's own check still answers with its own code.
    status, body = await shared_stack.request("GET", "/v1/invoices?status=bogus", headers=merchant.headers)
    assert status == 400 and body["error"]["code"] == "invalid_status", body


async def test_pages_public_routes_and_webhooks_take_any_query(
    shared_stack: ServiceStack, merchant: Merchant
) -> None:
    status, session = await shared_stack.request(
        "POST", "/v1/sessions", json={"amount": "5.00", "currency": "EUR"}, headers=merchant.headers
    )
    assert status == 201, session
    # Browsers and campaign links add tracking parameters to pages.
    status, page = await shared_stack.request("GET", f"/checkout?session={session['id']}&utm_source=mail")
    assert status == 200, page
    status, body = await shared_stack.request("GET", f"/session/{session['id']}/status?_=123")
    assert status == 200, body
    status, body = await shared_stack.request("GET", "/healthz?probe=1")
    assert status == 200, body
    # A provider's delivery: no query, and its body is the provider's shape, never checked against ours.
    event = build_stripe_event("payment_intent.processing", session["id"], 500, "eur")
    event["data"]["object"]["some_new_stripe_field"] = {"x": 1}
    secret = shared_stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"].split(",")[0]
    raw, headers = stripe_delivery(event, secret, int(time.time()))
    status, body = await shared_stack.request("POST", "/webhooks/stripe", data=raw, headers=headers)
    assert status == 200 and body["received"] is True, body
    # Even a query string on a webhook is not the merchant API's business.
    raw, headers = stripe_delivery(
        build_stripe_event("payment_intent.processing", session["id"], 500, "eur"),
        secret,
        int(time.time()),
    )
    status, body = await shared_stack.request("POST", "/webhooks/stripe?attempt=2", data=raw, headers=headers)
    assert status == 200 and body["received"] is True, body


# --- JSON body fields ----------------------------------------------------------------------------------


async def test_refund_with_currency_is_refused_before_anything_is_refunded(
    shared_stack: ServiceStack, merchant: Merchant
) -> None:
    session = await _paid_session(shared_stack, merchant)
    status, body = await shared_stack.request(
        "POST",
        f"/v1/sessions/{session['id']}/refund",
        json={"amount": "10", "currency": "EUR"},
        headers=merchant.headers,
    )
    message = assert_refused(status, body, "unknown_field", "currency")
    assert "amount" in message and "reason" in message, message
    status, after = await shared_stack.request(
        "GET", f"/v1/sessions/{session['id']}", headers=merchant.headers
    )
    assert status == 200, after
    assert after["status"] == "paid" and not after.get("refunds"), after
    assert after.get("amount_refunded_minor", 0) == 0, after


async def test_billing_profile_refuses_flat_seller_name_and_unknown_seller_keys(
    shared_stack: ServiceStack, merchant: Merchant
) -> None:
    status, before = await shared_stack.request("GET", "/v1/billing_profile", headers=merchant.headers)
    assert status == 200, before
    status, body = await shared_stack.request(
        "PUT", "/v1/billing_profile", json={"seller_name": "Flat GmbH"}, headers=merchant.headers
    )
    assert_refused(status, body, "unknown_field", "seller_name")
    status, body = await shared_stack.request(
        "PUT",
        "/v1/billing_profile",
        json={"seller": {"name": "Nested GmbH", "vat": "DE1"}},
        headers=merchant.headers,
    )
    assert_refused(status, body, "unknown_field", "seller.vat")
    status, body = await shared_stack.request(
        "PUT",
        "/v1/billing_profile",
        json={"seller": {"address": {"lines": ["Street 1"], "zip": "10115"}}},
        headers=merchant.headers,
    )
    assert_refused(status, body, "unknown_field", "seller.address.zip")
    status, after = await shared_stack.request("GET", "/v1/billing_profile", headers=merchant.headers)
    assert status == 200 and after == before, (before, after)
    # The documented shape is still taken.
    status, body = await shared_stack.request(
        "PUT",
        "/v1/billing_profile",
        json={"seller": {"name": "Strict GmbH", "address": {"lines": ["Street 1"], "country": "DE"}}},
        headers=merchant.headers,
    )
    assert status == 200 and body["seller"]["name"] == "Strict GmbH", body


async def test_session_create_refuses_a_misspelled_field_and_creates_nothing(
    shared_stack: ServiceStack,
) -> None:
    fresh = await shared_stack.create_merchant("Strict Sessions Ltd", "strictses")
    for path in ("/v1/sessions", "/create_session"):
        status, body = await shared_stack.request(
            "POST", path, json={"amount": "10.00", "currnecy": "EUR"}, headers=fresh.headers
        )
        assert_refused(status, body, "unknown_field", "currnecy")
    status, listed = await shared_stack.request("GET", "/v1/sessions", headers=fresh.headers)
    assert status == 200 and listed["data"] == [], listed
    # The buyer (contract §9) is part of the documented body.
    status, body = await shared_stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": "10.00", "customer": {"name": "Ann", "country": "DE"}, "metadata": {"any": "key"}},
        headers=fresh.headers,
    )
    assert status == 201, body


async def test_other_json_routes_refuse_unknown_fields(
    shared_stack: ServiceStack, merchant: Merchant
) -> None:
    cases = [
        ("POST", "/v1/api_keys/verify", {"key": "ck_test_x", "secret": "y"}, "secret"),
        ("POST", f"/v1/quarantine/{uuid.uuid4()}/resolve", {"decision": "dismissed", "why": "x"}, "why"),
        ("POST", f"/v1/invoices/{uuid.uuid4()}/void", {"reason": "x", "notify": True}, "notify"),
        ("POST", "/v1/merchant_keys", {"mode": "test", "name": "ci"}, "name"),
        # The merchant-event routes refused unknown fields on their own before; the one check does it now.
        ("POST", "/v1/webhook_endpoints", {"url": "https://hooks.example/x", "secret": "y"}, "secret"),
        (
            "PATCH",
            f"/v1/webhook_endpoints/{uuid.uuid4()}",
            {"status": "disabled", "enabled": False},
            "enabled",
        ),
        ("POST", f"/v1/webhook_endpoints/{uuid.uuid4()}/roll_secret", {"expires_in": 0, "now": True}, "now"),
    ]
    # Redelivery reads its body once the event is found: one of the merchant's own events.
    await _paid_session(shared_stack, merchant)
    status, events = await shared_stack.request("GET", "/v1/merchant_events", headers=merchant.headers)
    assert status == 200 and events["data"], events
    event_id = events["data"][0]["id"]
    cases.append(("POST", f"/v1/merchant_events/{event_id}/redeliver", {"endpoint": "we_x", "x": 1}, "x"))
    for method, path, body_sent, name in cases:
        status, body = await shared_stack.request(method, path, json=body_sent, headers=merchant.headers)
        assert_refused(status, body, "unknown_field", name)


# --- the document --------------------------------------------------------------------------------------


async def test_document_lists_the_two_codes_where_they_can_happen(shared_stack: ServiceStack) -> None:
    status, document = await shared_stack.request("GET", "/openapi.json")
    assert status == 200
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not operation["security"]:
                continue
            codes = operation["responses"]["400"]["content"]["application/json"]["schema"]["allOf"][1]
            enum = codes["properties"]["error"]["properties"]["code"]["enum"]
            assert "unknown_parameter" in enum and "repeated_parameter" in enum, (method, path)
            if "requestBody" in operation:
                assert "unknown_field" in enum, (method, path)


_METHODS = {
    "add_get": "GET",
    "add_post": "POST",
    "add_put": "PUT",
    "add_patch": "PATCH",
    "add_delete": "DELETE",
}
# Shared parsers (request_body) that read fixed query parameters from the mapping they are given.
_QUERY_HELPERS = {
    "page_limit": {"limit"},
    "page_cursor": {"starting_after"},
    "optional_date_range": {"from", "to"},
    "reporting_range": {"from", "to"},
}


def _is_query(node: ast.AST) -> bool:
    """`request.query` or a local named `query`."""
    return (isinstance(node, ast.Attribute) and node.attr == "query") or (
        isinstance(node, ast.Name) and node.id == "query"
    )


def _loop_strings(function: ast.AST) -> dict[str, set[str]]:
    """Names bound by `for n in ("a", "b")` (loops and comprehensions) to the strings they take."""
    bound: dict[str, set[str]] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.For | ast.comprehension) and isinstance(node.target, ast.Name):
            values = node.iter
            if isinstance(values, ast.Tuple | ast.List) and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in values.elts
            ):
                bound.setdefault(node.target.id, set()).update(e.value for e in values.elts)  # type: ignore[attr-defined]
    return bound


def _names(key: ast.AST, bound: dict[str, set[str]], where: str) -> set[str]:
    if isinstance(key, ast.Constant) and isinstance(key.value, str):
        return {key.value}
    if isinstance(key, ast.Name) and key.id in bound:
        return bound[key.id]
    raise AssertionError(
        f"{where}: a query parameter read with a name this test cannot resolve: {ast.dump(key)}"
    )


def _query_reads(module: ast.Module, name: str, where: str, seen: set[str] | None = None) -> set[str]:
    """Every query parameter name the module function `name` reads, directly or through the module's own
    helpers and the shared parsers; fails on a read it cannot name (so the check is never silently blind)."""
    seen = seen if seen is not None else set()
    if name in seen:
        return set()
    seen.add(name)
    functions = {f.name: f for f in module.body if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)}
    function = functions[name]
    bound = _loop_strings(function)
    found: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            if _is_query(node.func.value):
                found |= _names(node.args[0], bound, where)
        elif isinstance(node, ast.Subscript) and _is_query(node.value):
            found |= _names(node.slice, bound, where)
        elif isinstance(node, ast.Compare) and any(_is_query(c) for c in node.comparators):
            found |= _names(node.left, bound, where)
        elif isinstance(node, ast.Call):
            callee = node.func.id if isinstance(node.func, ast.Name) else None
            if callee in functions:
                found |= _query_reads(module, callee, where, seen)
            elif any(_is_query(a) for a in node.args):
                assert callee in _QUERY_HELPERS, (
                    f"{where}: the query goes to {ast.dump(node.func)}, unknown here"
                )
                found |= _QUERY_HELPERS[callee]
    return found


def _v1_handlers() -> Iterator[tuple[str, str, str, set[str]]]:
    for path in sorted(ENTRYPOINTS.glob("routes_*.py")):
        module = ast.parse(path.read_text())
        for node in ast.walk(module):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _METHODS
                and isinstance(node.args[0], ast.Constant)
                and str(node.args[0].value).startswith("/v1/")
                and isinstance(node.args[1], ast.Name)
            ):
                route, handler = str(node.args[0].value), node.args[1].id
                where = f"{path.name}:{handler} ({_METHODS[node.func.attr]} {route})"
                yield _METHODS[node.func.attr], route, where, _query_reads(module, handler, where)


def test_every_query_parameter_a_v1_handler_reads_is_documented() -> None:
    documented = {
        (op.method, op.path): {p["name"] for p in op.parameters if p["in"] == "query"}
        for op in openapi_document.OPERATIONS
    }
    handlers = list(_v1_handlers())
    assert len(handlers) >= 40, handlers  # the scan found the merchant API's routes
    undocumented = [
        f"{where}: {sorted(reads - documented[(method, route)])}"
        for method, route, where, reads in handlers
        if reads - documented[(method, route)]
    ]
    assert not undocumented, "query parameters read but not in openapi_document:\n" + "\n".join(undocumented)
    reads_of = {(method, route): reads for method, route, _, reads in handlers}
    assert reads_of[("GET", "/v1/sessions")] >= {
        "status",
        "customer_email",
        "created_from",
        "amount_min_minor",
    }
    assert reads_of[("GET", "/v1/invoices")] == {"status", "kind", "from", "to", "limit", "starting_after"}
