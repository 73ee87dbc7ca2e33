"""One rule for the cursor of every list route of the merchant API: a `starting_after` that is malformed, or
that names no item of that list for the caller's merchant and mode, is 400 `invalid_starting_after` (with a
message naming the field). Another merchant's item and an item of the other mode are refused exactly like an
unknown one, so a cursor never tells whether an id exists elsewhere.

The routes come from the gateway's OpenAPI document: every GET merchant operation with a `starting_after`
parameter. Each needs a row in LIST_ROUTES below (the well-formed id of an item it never lists, and the parent
object a path parameter names), so a new list route cannot be added without being tried here.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from support import polling
from support.database import TestDatabase
from support.merchant_webhooks import FAST_ENV, Receiver, create_endpoint
from support.stack import Merchant, ServiceStack
from support.two_modes import (
    TwoModeMerchant,
    create_session,
    final_inbox_row,
    send_onecom,
    two_mode_merchant,
    two_mode_stack,
)
from webhook_gateway.entrypoints.openapi_document import OPERATIONS


@dataclass(frozen=True)
class ListRoute:
    """`unknown`: a well-formed id of this list's kind that names nothing. `parent`: what fills a path
    parameter (None: the route has none)."""

    unknown: str
    parent: str | None = None


NO_SUCH_UUID = "00000000-0000-4000-8000-000000000000"
LIST_ROUTES: dict[str, ListRoute] = {
    "/v1/sessions": ListRoute(NO_SUCH_UUID),
    "/v1/audit": ListRoute("session_987654321"),
    "/v1/quarantine": ListRoute(NO_SUCH_UUID),
    "/v1/events": ListRoute(NO_SUCH_UUID),
    "/v1/invoices": ListRoute(NO_SUCH_UUID),
    "/v1/api_keys": ListRoute(NO_SUCH_UUID),
    "/v1/merchant_keys": ListRoute(NO_SUCH_UUID),
    "/v1/webhook_endpoints": ListRoute(NO_SUCH_UUID),
    "/v1/webhook_deliveries": ListRoute("987654321"),
    "/v1/merchant_events": ListRoute("evt_" + "0" * 32),
}

CURSOR_ROUTES = sorted(
    op.path
    for op in OPERATIONS
    if op.method == "GET"
    and op.auth == "merchant"
    and any(p.get("name") == "starting_after" and p.get("in") == "query" for p in op.parameters)
)

CASES = ["malformed", "random_uuid", "unknown", "other_merchant", "other_mode"]


def test_every_list_route_of_the_document_has_a_row() -> None:
    assert CURSOR_ROUTES, "the OpenAPI document lists no route with starting_after"
    missing = [path for path in CURSOR_ROUTES if path not in LIST_ROUTES]
    assert not missing, f"list routes without a row in LIST_ROUTES: {missing}"
    for path in CURSOR_ROUTES:
        assert ("{" in path) == (LIST_ROUTES[path].parent is not None), path


@dataclass
class World:
    owner: TwoModeMerchant
    stranger: Merchant
    # path -> the id of an item each list shows: the owner's test item (of mode test), the stranger's item.
    owner_items: dict[str, str]
    stranger_items: dict[str, str]


@pytest.fixture(scope="module")
async def stack(database: TestDatabase) -> AsyncIterator[ServiceStack]:
    async with two_mode_stack(database, FAST_ENV) as services:
        yield services


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.stop()


async def _fill(stack: ServiceStack, receiver: Receiver, key: Merchant) -> None:
    """Something in every list of `key`'s merchant and (test) mode: an endpoint, a paid session (an inbox
    event, an invoice, a customer key, a merchant event and its delivery) and a quarantined short payment."""
    await create_endpoint(stack, key, receiver.url)
    paid = await create_session(stack, key, amount="12.00")
    await final_inbox_row(stack, "onecom", await send_onecom(stack, "test", paid))
    open_session = await create_session(stack, key, amount="5.00")
    short = await final_inbox_row(
        stack, "onecom", await send_onecom(stack, "test", {**open_session, "amount_minor": 1})
    )
    assert short["status"] == "quarantined", short


async def _an_item(stack: ServiceStack, key: Merchant, path: str, mode: str) -> str:
    """The id of an item `key` sees in the list at `path` that belongs to `mode` (an item with a null mode,
    such as a merchant-wide audit entry, is in both modes' lists and so is never picked)."""

    async def check() -> str | None:
        status, body = await stack.request("GET", path + "?limit=100", headers=key.headers)
        assert status == 200, (path, body)
        for item in body["data"]:
            if "mode" not in item or item["mode"] == mode:
                return str(item["id"])
        return None

    return await polling.eventually(check, timeout=30, interval=0.1, what=f"an item of {path}")


def _path(template: str) -> str:
    route = LIST_ROUTES[template]
    if route.parent is not None:  # no list route has a path parameter yet; give it a parent object first
        pytest.fail(f"{template}: create its parent object ({route.parent}) and fill it in here")
    return template


@pytest.fixture(scope="module")
async def world(stack: ServiceStack, receiver: Receiver) -> World:
    owner = await two_mode_merchant(stack, "Owner", "owner")
    stranger = await stack.create_merchant("Stranger", "strange", mode="test")
    await _fill(stack, receiver, owner.test)
    await _fill(stack, receiver, stranger)
    owner_items = {p: await _an_item(stack, owner.test, _path(p), "test") for p in CURSOR_ROUTES}
    stranger_items = {p: await _an_item(stack, stranger, _path(p), "test") for p in CURSOR_ROUTES}
    return World(owner, stranger, owner_items, stranger_items)


async def _page_after(stack: ServiceStack, key: Merchant, path: str, cursor: str) -> tuple[int, Any]:
    return await stack.request("GET", path, params={"starting_after": cursor}, headers=key.headers)


@pytest.mark.parametrize("path", CURSOR_ROUTES)
async def test_an_own_item_is_a_cursor(stack: ServiceStack, world: World, path: str) -> None:
    """The positive control: the ids used below are real items, accepted by their owner's key."""
    status, body = await _page_after(stack, world.owner.test, _path(path), world.owner_items[path])
    assert status == 200 and body["object"] == "list", (path, body)
    assert world.owner_items[path] not in [str(item["id"]) for item in body["data"]], (path, body)
    status, body = await _page_after(stack, world.stranger, _path(path), world.stranger_items[path])
    assert status == 200, (path, body)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("path", CURSOR_ROUTES)
async def test_a_cursor_naming_no_item_of_the_list_is_invalid_starting_after(
    stack: ServiceStack, world: World, path: str, case: str
) -> None:
    key: Merchant = world.owner.test
    if case == "malformed":
        cursor = "not-a-cursor"
    elif case == "random_uuid":
        cursor = str(uuid.uuid4())
    elif case == "unknown":
        cursor = LIST_ROUTES[path].unknown
    elif case == "other_merchant":
        cursor = world.stranger_items[path]
    else:  # the owner's own test item, asked for with its live key
        key, cursor = world.owner.live, world.owner_items[path]
    status, body = await _page_after(stack, key, _path(path), cursor)
    assert isinstance(body, dict) and "error" in body, (path, case, status, body)
    assert (status, body["error"]["code"]) == (400, "invalid_starting_after"), (path, case, status, body)
    assert "starting_after" in body["error"]["message"], (path, case, body)
