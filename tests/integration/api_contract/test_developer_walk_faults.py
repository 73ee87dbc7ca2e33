"""What a developer's first integration found, each over real HTTP against the real services:
- a query parameter given twice was cut to its first value (`?status=paid&status=created` answered only paid
  sessions, `?limit=5&limit=6` five): now 400 `repeated_parameter`, naming it;
- a JSON body with a key given twice kept the last value (`{"amount": 12.5, "amount": 1000}` made a 1000.00
  session, while a proxy reading the first saw 12.50): now 400 `invalid_json`, naming the key;
- a refusal carried no `X-Request-Id`, the one thing a developer quotes to support: now every reply has it."""

from __future__ import annotations

from typing import Any

import pytest

from support.stack import Merchant, ServiceStack


@pytest.fixture(scope="module")
async def merchant(shared_stack: ServiceStack) -> Merchant:
    return await shared_stack.create_merchant("Developer Walk Ltd", "devwalk")


@pytest.mark.parametrize(
    "query",
    [
        "/v1/sessions?status=paid&status=created",
        "/v1/sessions?limit=5&limit=6",
        "/v1/invoices?status=issued&status=void",
    ],
)
async def test_a_query_parameter_given_twice_is_refused(
    shared_stack: ServiceStack, merchant: Merchant, query: str
) -> None:
    status, body = await shared_stack.request("GET", query, headers=merchant.headers)
    assert status == 400, body
    assert body["error"]["code"] == "repeated_parameter", body
    name = query.split("?", 1)[1].split("=", 1)[0]
    assert repr(name) in body["error"]["message"], body


async def test_a_json_key_given_twice_is_refused_and_nothing_is_created(
    shared_stack: ServiceStack, merchant: Merchant
) -> None:
    before = await _session_count(shared_stack, merchant)
    status, body = await shared_stack.request(
        "POST",
        "/v1/sessions",
        data='{"amount": 12.5, "currency": "EUR", "amount": 1000}',
        headers={**merchant.headers, "Content-Type": "application/json"},
    )
    assert status == 400, body
    assert body["error"]["code"] == "invalid_json" and "'amount'" in body["error"]["message"], body
    assert await _session_count(shared_stack, merchant) == before


async def test_every_refusal_carries_a_request_id(shared_stack: ServiceStack, merchant: Merchant) -> None:
    assert shared_stack.http is not None
    for method, path, headers in (
        ("GET", "/v1/sessions", {}),  # 401
        ("GET", "/v1/sessions?limit=0", merchant.headers),  # 400
        ("GET", "/v1/sessions/not-a-session", merchant.headers),  # 404
        ("POST", "/v1/sessions", {**merchant.headers, "Content-Type": "application/json"}),  # 400, no body
    ):
        async with shared_stack.http.request(method, shared_stack.base_url + path, headers=headers) as reply:
            assert reply.status >= 400, (path, reply.status)
            assert len(reply.headers.get("X-Request-Id", "")) == 32, (path, reply.status, dict(reply.headers))
        async with shared_stack.http.request(
            method, shared_stack.base_url + path, headers={**headers, "X-Request-Id": "support-ticket-7"}
        ) as reply:
            assert reply.headers.get("X-Request-Id") == "support-ticket-7", (path, dict(reply.headers))


async def _session_count(stack: ServiceStack, merchant: Merchant) -> int:
    status, listed = await stack.request("GET", "/v1/sessions?limit=100", headers=merchant.headers)
    assert status == 200, listed
    data: list[Any] = listed["data"]
    return len(data)


async def test_a_replayed_session_reply_has_the_first_replys_content_type(
    shared_stack: ServiceStack, merchant: Merchant
) -> None:
    """The walk's cosmetic one: a replay answered `application/json` where the first reply said
    `application/json; charset=utf-8`; a client that checks the header saw two kinds of reply."""
    assert shared_stack.http is not None
    headers = {**merchant.headers, "Idempotency-Key": "walk-replay-1"}
    seen = []
    for _ in range(2):
        async with shared_stack.http.post(
            shared_stack.base_url + "/v1/sessions", json={"amount": "3.00"}, headers=headers
        ) as reply:
            assert reply.status == 201, await reply.text()
            seen.append((reply.headers["Content-Type"], reply.headers.get("Idempotent-Replayed")))
    assert seen == [("application/json; charset=utf-8", None), ("application/json; charset=utf-8", "true")], (
        seen
    )
