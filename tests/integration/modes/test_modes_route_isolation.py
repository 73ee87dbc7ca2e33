"""Every merchant route, tried on a first merchant's TEST objects with that merchant's LIVE key and with a
second merchant's key: always 404 or 403, never data, and nothing changed (contract §2, §6a).

The routes come from the gateway's OpenAPI document (`OPERATIONS`, which another test keeps equal to the
router): every merchant operation must have a row in ROUTES below saying how to aim it at the first
merchant's object, so a new merchant route cannot be added without being tried here. Routes that create in
the caller's own world (a new session, a new key of the caller's mode) or read the caller's own merchant-wide
settings are in the table too, with the check that fits them: the reply carries none of the first merchant's
test objects.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from paygate.keys.v1 import keys_pb2
from support.database import TestDatabase
from support.stack import Merchant, ServiceStack
from support.two_modes import (
    TwoModeMerchant,
    admin_fetchrow,
    create_session,
    final_inbox_row,
    fulfilled,
    send_onecom,
    two_mode_merchant,
    two_mode_stack,
)
from webhook_gateway.entrypoints.openapi_document import OPERATIONS

# How a route finds "the first merchant's object": which id fills `{id}`, and what body to send so that the
# request gets past input checks to the ownership check.
OBJECT_ID = {
    "session": "paid_session_id",
    "open_session": "open_session_id",
    "invoice": "invoice_id",
    "quarantine": "quarantine_id",
    "event": "inbox_event_id",
    "customer_key": "api_key_id",
    "merchant_key": "merchant_key_id",
    "webhook_endpoint": "webhook_endpoint_id",
    "merchant_event": "merchant_event_id",
}


@dataclass(frozen=True)
class Route:
    """`target`: the kind of object the path's `{id}` names (None for a route without one).
    `kind`: "object" routes must answer 404/403; "list" and "own_world" routes may answer 2xx, but the reply
    must not carry any of the first merchant's test objects."""

    kind: str
    target: str | None = None
    body: Any = None
    query: str = ""


ROUTES: dict[tuple[str, str], Route] = {
    # Sessions
    ("POST", "/v1/sessions"): Route("own_world", body="create"),
    ("POST", "/create_session"): Route("own_world", body="create"),
    ("GET", "/v1/sessions"): Route("list"),
    ("GET", "/v1/sessions/{id}"): Route("object", "session"),
    ("POST", "/v1/sessions/{id}/expire"): Route("object", "open_session"),
    ("POST", "/v1/sessions/{id}/provider_checkout"): Route("object", "open_session"),
    ("GET", "/v1/sessions/{id}/deposits"): Route("object", "session"),
    # The chain of the caller's mode, with only the caller's own failing deposit addresses.
    ("GET", "/v1/chain/status"): Route("list"),
    ("DELETE", "/v1/sessions/{id}/access"): Route("object", "session"),
    ("POST", "/v1/sessions/{id}/access"): Route("object", "session"),
    ("POST", "/v1/sessions/{id}/refund"): Route("object", "session", body={"amount": "1.00"}),
    # Audit (contract §9): merchant-wide, but entries about an object with a mode only for a key of that mode
    ("GET", "/v1/audit"): Route("list"),
    # Quarantine
    ("GET", "/v1/quarantine"): Route("list"),
    ("POST", "/v1/quarantine/{id}/resolve"): Route("object", "quarantine", body={"decision": "dismissed"}),
    # Webhook inbox
    ("GET", "/v1/events"): Route("list"),
    ("POST", "/v1/events/{id}/replay"): Route("object", "event"),
    # Invoices and revenue
    ("GET", "/v1/invoices"): Route("list"),
    ("GET", "/v1/invoices/{id}"): Route("object", "invoice"),
    ("GET", "/v1/invoices/{id}/pdf"): Route("object", "invoice"),
    ("GET", "/v1/invoices/{id}/html"): Route("object", "invoice"),
    ("POST", "/v1/invoices/{id}/void"): Route("object", "invoice", body={"reason": "mistake"}),
    ("GET", "/v1/revenue"): Route("list", query="?interval=day"),
    # The billing profile is one per merchant AND mode (seller, prefix, tax, support contact): the live key
    # reads and replaces the live profile only. The test profile's values are markers, and _owner_state reads
    # the test profile, so the live key neither sees it nor changes it.
    ("GET", "/v1/billing_profile"): Route("own_world"),
    ("PUT", "/v1/billing_profile"): Route(
        "own_world", body={"tax_rate_bps": 0, "support_email": "someone-else@example.com"}
    ),
    # Customer API keys
    ("GET", "/v1/api_keys"): Route("list"),
    ("POST", "/v1/api_keys/verify"): Route("list", body="customer_secret"),
    ("POST", "/v1/api_keys/{id}/roll"): Route("object", "customer_key", body={}),
    ("DELETE", "/v1/api_keys/{id}"): Route("object", "customer_key"),
    # Merchant secret keys (listed and created in the caller's own mode only)
    ("GET", "/v1/merchant_keys"): Route("list"),
    ("POST", "/v1/merchant_keys"): Route("own_world", body={}),
    ("POST", "/v1/merchant_keys/{id}/roll"): Route("object", "merchant_key", body={}),
    ("DELETE", "/v1/merchant_keys/{id}"): Route("object", "merchant_key"),
    # Merchant events (contract §7): endpoints, events and the delivery log are per mode
    ("GET", "/v1/webhook_endpoints"): Route("list"),
    ("POST", "/v1/webhook_endpoints"): Route("own_world", body={"url": "https://hooks.example.com/mine"}),
    ("GET", "/v1/webhook_endpoints/{id}"): Route("object", "webhook_endpoint"),
    ("PATCH", "/v1/webhook_endpoints/{id}"): Route("object", "webhook_endpoint", body={"description": "x"}),
    ("DELETE", "/v1/webhook_endpoints/{id}"): Route("object", "webhook_endpoint"),
    ("POST", "/v1/webhook_endpoints/{id}/roll_secret"): Route("object", "webhook_endpoint", body={}),
    ("GET", "/v1/webhook_deliveries"): Route("list"),
    ("GET", "/v1/merchant_events"): Route("list"),
    ("POST", "/v1/merchant_events/{id}/redeliver"): Route(
        "object", "merchant_event", body={"endpoint": "00000000-0000-0000-0000-000000000000"}
    ),
}

MERCHANT_OPERATIONS = sorted((op.method, op.path) for op in OPERATIONS if op.auth == "merchant")


def test_every_merchant_route_of_the_document_has_a_row() -> None:
    missing = [key for key in MERCHANT_OPERATIONS if key not in ROUTES]
    assert not missing, f"merchant routes without a mode/merchant isolation row in ROUTES: {missing}"


@dataclass
class World:
    """The first merchant's test objects, and the two foreign callers."""

    owner: TwoModeMerchant
    stranger: Merchant
    ids: dict[str, str]
    create_body: dict[str, Any]
    idempotency_key: str
    customer_secret: str
    email: str
    profile_markers: tuple[str, ...] = ()

    @property
    def markers(self) -> list[str]:
        """Strings that only the first merchant's test world may show."""
        return [*self.ids.values(), self.email, self.customer_secret, *self.profile_markers]


@pytest.fixture(scope="module")
async def stack(database: TestDatabase) -> AsyncIterator[ServiceStack]:
    async with two_mode_stack(database) as services:
        yield services


@pytest.fixture(scope="module")
async def world(stack: ServiceStack) -> World:
    owner = await two_mode_merchant(stack, "Owner", "owner")
    stranger = await stack.create_merchant("Stranger", "strange", mode="test")
    email = "buyer-owner-only@example.com"
    # Sent again by the foreign callers with the same Idempotency-Key: they must get a session of their own,
    # never this one back (the body holds no marker, so only a replay would show the first session's id).
    create_body = {"amount": "12.34", "currency": "EUR"}
    key = "order-123"
    status, paid = await stack.request(
        "POST", "/v1/sessions", json=create_body, headers={**owner.test.headers, "Idempotency-Key": key}
    )
    assert status == 201, paid
    await final_inbox_row(stack, "onecom", await send_onecom(stack, "test", paid))
    paid = await fulfilled(stack, owner.test, paid["id"])
    open_session = await create_session(stack, owner.test, amount="5.00", customer_email=email)
    # A short payment: quarantined (amount_mismatch) on the open session, which stays open.
    short = {**open_session, "amount_minor": 1}
    quarantined = await final_inbox_row(stack, "onecom", await send_onecom(stack, "test", short))
    assert quarantined["status"] == "quarantined", quarantined
    revealed = await stack.keys.RevealCustomerKey(
        keys_pb2.RevealCustomerKeyRequest(session_id=paid["id"], access_token_id="test"), timeout=5
    )
    ids = {
        "paid_session_id": paid["id"],
        "open_session_id": open_session["id"],
        "invoice_id": paid["invoice_id"],
        "quarantine_id": quarantined["quarantine_id"],
        "inbox_event_id": str(quarantined["id"]),
        "api_key_id": paid["api_key_id"],
    }
    merchant_key = await admin_fetchrow(
        stack,
        "SELECT id FROM keys.merchant_secret_keys WHERE merchant_id = $1::uuid AND mode = 'test'",
        owner.id,
    )
    if merchant_key is not None:
        ids["merchant_key_id"] = str(merchant_key["id"])
    status, endpoint = await stack.request(
        "POST",
        "/v1/webhook_endpoints",
        json={"url": "https://hooks.example.com/owner", "events": ["session.paid"]},
        headers=owner.test.headers,
    )
    assert status == 201, endpoint
    ids["webhook_endpoint_id"] = endpoint["id"]
    status, events = await stack.request("GET", "/v1/merchant_events", headers=owner.test.headers)
    assert status == 200 and events["data"], events
    ids["merchant_event_id"] = events["data"][0]["id"]
    # The test world's own billing profile, with values no other world has (set last, so that the objects
    # above carry none of them: only the profile itself may show them).
    profile = {
        "seller": {"name": "Owner Test-World Seller Ltd", "tax_id": "DE999999999"},
        "tax_rate_bps": 1900,
        "support_email": "support-test-world-only@example.com",
        "support_url": "https://example.com/test-world-only-support",
    }
    status, saved = await stack.request(
        "PUT", "/v1/billing_profile", json=profile, headers=owner.test.headers
    )
    assert status == 200 and saved.get("mode", "test") == "test", saved
    markers = ("Owner Test-World Seller", "DE999999999", "test-world-only")
    return World(owner, stranger, ids, create_body, key, revealed.secret, email, markers)


def _path(template: str, route: Route, world: World) -> str:
    if route.target is None:
        return template + route.query
    object_id = world.ids.get(OBJECT_ID[route.target])
    if object_id is None:
        pytest.skip(f"no {route.target} object on this stack")
    return template.replace("{id}", object_id) + route.query


def _body(route: Route, world: World) -> Any:
    if route.body == "create":
        return world.create_body
    if route.body == "customer_secret":
        return {"key": world.customer_secret}
    return route.body


async def _owner_state(stack: ServiceStack, world: World) -> str:
    """What a refused request must not have changed, as the owner's own test key sees it."""
    seen = []
    for path in (
        f"/v1/sessions/{world.ids['paid_session_id']}",
        f"/v1/sessions/{world.ids['open_session_id']}",
        f"/v1/invoices/{world.ids['invoice_id']}",
        "/v1/quarantine",
        "/v1/api_keys",
        "/v1/webhook_endpoints",
        "/v1/billing_profile",
    ):
        status, body = await stack.request("GET", path, headers=world.owner.test.headers)
        assert status == 200, (path, body)
        if isinstance(body, dict) and "access_url" in body:
            body.pop("access_url")  # a fresh signature each read
        seen.append(json.dumps(_stable(body), sort_keys=True))
    return "\n".join(seen)


def _stable(body: Any) -> Any:
    """Drop what moves without anyone changing anything (last use of a key)."""
    if isinstance(body, dict):
        return {k: _stable(v) for k, v in body.items() if k not in ("last_used_at",)}
    if isinstance(body, list):
        return [_stable(v) for v in body]
    return body


@pytest.mark.parametrize("caller", ["other_mode", "other_merchant"])
@pytest.mark.parametrize(("method", "template"), MERCHANT_OPERATIONS)
async def test_a_foreign_key_never_reaches_the_first_merchants_test_objects(
    stack: ServiceStack, world: World, caller: str, method: str, template: str
) -> None:
    route = ROUTES.get((method, template))
    if route is None:
        pytest.fail(f"{method} {template} has no row in ROUTES")
    key = world.owner.live if caller == "other_mode" else world.stranger
    before = await _owner_state(stack, world)
    headers = dict(key.headers)
    if route.body == "create":
        headers["Idempotency-Key"] = world.idempotency_key  # the owner's test key used it first
    body = _body(route, world)
    status, reply = await stack.request(
        method, _path(template, route, world), headers=headers, **({"json": body} if body is not None else {})
    )
    text = reply if isinstance(reply, str) else json.dumps(reply)
    if route.kind == "object":
        assert status in (403, 404), (method, template, caller, status, reply)
        if status == 404 and isinstance(reply, dict):
            assert reply["error"]["code"] == "not_found", reply
    else:
        assert status < 500, (method, template, caller, status, reply)
    leaked = [marker for marker in world.markers if marker and marker in text]
    assert not leaked, f"{method} {template} as {caller} showed the first merchant's test objects: {reply}"
    assert await _owner_state(stack, world) == before, f"{method} {template} as {caller} changed something"


async def test_the_owner_reaches_every_object_with_its_own_key(stack: ServiceStack, world: World) -> None:
    """The positive control: the same requests with the owner's test key do find the objects."""
    headers = world.owner.test.headers
    for path in (
        f"/v1/sessions/{world.ids['paid_session_id']}",
        f"/v1/invoices/{world.ids['invoice_id']}",
        f"/v1/invoices/{world.ids['invoice_id']}/html",
    ):
        status, body = await stack.request("GET", path, headers=headers)
        assert status == 200, (path, body)
    status, listed = await stack.request("GET", "/v1/quarantine", headers=headers)
    assert [e["id"] for e in listed["data"]] == [world.ids["quarantine_id"]]
    assert listed["data"][0]["mode"] == "test"
    status, events = await stack.request("GET", "/v1/events", headers=headers)
    assert world.ids["inbox_event_id"] in [e["id"] for e in events["data"]]
    status, sessions = await stack.request("GET", "/v1/sessions", headers=headers)
    assert {world.ids["paid_session_id"], world.ids["open_session_id"]} <= {s["id"] for s in sessions["data"]}
    # And the live key's lists are the live world's: nothing of the test world in them.
    for path in ("/v1/sessions", "/v1/quarantine", "/v1/events", "/v1/invoices"):
        status, body = await stack.request("GET", path, headers=world.owner.live.headers)
        assert status == 200, (path, body)
        assert all(item["id"] not in world.ids.values() for item in body["data"]), (path, body)
        assert all(item.get("mode", "live") == "live" for item in body["data"]), (path, body)
