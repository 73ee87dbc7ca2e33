"""The OpenAPI document's response headers and `servers`, against real replies of a real gateway.

For a handful of replies (a 200, a 201 and its replay, a 400, a 401, a 404, a 405) every header the document
says that response carries must be declared in `components.headers` (referenced, never inline) and present on
the reply; `Idempotent-Replayed` is on the replay and not on the first reply. `servers` names the gateway's
public URL (PAYGATE_PUBLIC_URL).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from multidict import CIMultiDictProxy

from support.database import TestDatabase
from support.stack import Merchant, ServiceStack, default_stack_env, running_stack

PUBLIC_URL = "https://pay.example.test"
ENDPOINTS = "/v1/webhook_endpoints"
ENDPOINT_BODY = {"url": "https://hooks.example.com/paygate", "events": ["session.paid"]}


@pytest.fixture(scope="module")
async def gateway(database: TestDatabase) -> AsyncIterator[ServiceStack]:
    await database.reset()
    async with running_stack(database, {**default_stack_env(), "PAYGATE_PUBLIC_URL": PUBLIC_URL}) as services:
        yield services


@pytest.fixture(scope="module")
async def document(gateway: ServiceStack) -> dict[str, Any]:
    status, body = await gateway.request("GET", "/openapi.json")
    assert status == 200, body
    assert isinstance(body, dict)
    return body


@pytest.fixture
async def merchant(gateway: ServiceStack) -> Merchant:
    return await gateway.create_merchant("Headers", f"hd{uuid.uuid4().hex[:6]}")


async def call(
    stack: ServiceStack, method: str, path: str, **kwargs: Any
) -> tuple[int, CIMultiDictProxy[str], Any]:
    assert stack.http is not None
    async with stack.http.request(method, stack.base_url + path, **kwargs) as response:
        body = await response.json(content_type=None)
        return response.status, response.headers, body


def declared_headers(document: dict[str, Any], response: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The headers a documented response carries, each resolved through `components.headers` (a header the
    response names that the components do not declare fails here)."""
    declared = document.get("components", {}).get("headers", {})
    headers: dict[str, dict[str, Any]] = {}
    for name, entry in response.get("headers", {}).items():
        ref = entry.get("$ref", "")
        assert ref.startswith("#/components/headers/"), f"{name} is not a reference to components.headers"
        target = ref.rsplit("/", 1)[-1]
        assert target in declared, f"{ref} is not declared in components.headers"
        headers[name] = declared[target]
    return headers


def operation_response(document: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    response = document["paths"][path][method.lower()]["responses"].get(str(status))
    assert response is not None, f"{method} {path} documents no {status}"
    assert isinstance(response, dict)
    return response


def assert_carries_documented_headers(
    document: dict[str, Any], response: dict[str, Any], got: CIMultiDictProxy[str], what: str
) -> dict[str, dict[str, Any]]:
    headers = declared_headers(document, response)
    assert "X-Request-Id" in headers, f"{what}: the document does not say the reply carries X-Request-Id"
    for name, header in headers.items():
        if header.get("required"):
            assert name in got, f"{what}: the document promises {name}, the reply has none"
    return headers


async def test_a_200_201_replay_400_and_404_carry_every_documented_header(
    gateway: ServiceStack, document: dict[str, Any], merchant: Merchant
) -> None:
    status, got, body = await call(gateway, "GET", ENDPOINTS, headers=merchant.headers)
    assert status == 200, body
    assert_carries_documented_headers(
        document, operation_response(document, "GET", ENDPOINTS, 200), got, "GET list 200"
    )

    key = {**merchant.headers, "Idempotency-Key": f"hdr-{uuid.uuid4()}"}
    status, first, created = await call(gateway, "POST", ENDPOINTS, headers=key, json=ENDPOINT_BODY)
    assert status == 201, created
    created_doc = operation_response(document, "POST", ENDPOINTS, 201)
    headers = assert_carries_documented_headers(document, created_doc, first, "POST create 201")
    assert "Idempotent-Replayed" in headers, "the create's 201 does not document Idempotent-Replayed"
    assert "Idempotent-Replayed" not in first, "a first reply is not a replay"

    status, replay, again = await call(gateway, "POST", ENDPOINTS, headers=key, json=ENDPOINT_BODY)
    assert status == 201 and again["id"] == created["id"], again
    assert_carries_documented_headers(document, created_doc, replay, "POST create 201 replay")
    assert replay["Idempotent-Replayed"] == "true"
    assert replay["Idempotent-Replayed"] in headers["Idempotent-Replayed"]["schema"]["enum"]

    status, got, body = await call(gateway, "GET", ENDPOINTS + "?limit=0", headers=merchant.headers)
    assert status == 400 and body["error"]["code"] == "invalid_limit", body
    assert_carries_documented_headers(
        document, operation_response(document, "GET", ENDPOINTS, 400), got, "GET list 400"
    )

    missing = f"{ENDPOINTS}/{uuid.uuid4()}"
    status, got, body = await call(gateway, "GET", missing, headers=merchant.headers)
    assert status == 404 and body["error"]["code"] == "not_found", body
    assert_carries_documented_headers(
        document, operation_response(document, "GET", ENDPOINTS + "/{id}", 404), got, "GET one 404"
    )


async def test_a_session_create_replay_is_documented_and_marked(
    gateway: ServiceStack, document: dict[str, Any], merchant: Merchant
) -> None:
    key = {**merchant.headers, "Idempotency-Key": f"hdr-{uuid.uuid4()}"}
    body = {"amount": "12.50", "currency": "EUR"}
    status, first, created = await call(gateway, "POST", "/v1/sessions", headers=key, json=body)
    assert status == 201, created
    documented = operation_response(document, "POST", "/v1/sessions", 201)
    headers = assert_carries_documented_headers(document, documented, first, "POST /v1/sessions 201")
    assert "Idempotent-Replayed" in headers and "Idempotent-Replayed" not in first
    status, replay, again = await call(gateway, "POST", "/v1/sessions", headers=key, json=body)
    assert status == 201 and again["id"] == created["id"], again
    assert replay["Idempotent-Replayed"] == "true"


async def test_a_401_documents_and_sends_www_authenticate(
    gateway: ServiceStack, document: dict[str, Any]
) -> None:
    status, got, body = await call(gateway, "GET", ENDPOINTS)
    assert status == 401 and body["error"]["code"] == "unauthenticated", body
    headers = assert_carries_documented_headers(
        document, operation_response(document, "GET", ENDPOINTS, 401), got, "GET list 401"
    )
    assert headers.get("WWW-Authenticate", {}).get("required") is True, headers
    assert got["WWW-Authenticate"] == "Bearer"


async def test_a_405_is_documented_with_allow(gateway: ServiceStack, document: dict[str, Any]) -> None:
    status, got, body = await call(gateway, "PUT", ENDPOINTS, json={})
    assert status == 405 and body["error"]["code"] == "method_not_allowed", body
    # No operation exists for a method a path does not serve: the reply is a reusable component.
    response = document.get("components", {}).get("responses", {}).get("MethodNotAllowed")
    assert response is not None, "components.responses has no MethodNotAllowed"
    headers = assert_carries_documented_headers(document, response, got, "PUT list 405")
    assert headers.get("Allow", {}).get("required") is True, headers
    assert set(got["Allow"].split(",")) == {"GET", "HEAD", "POST"}  # aiohttp serves HEAD on every GET


async def test_every_documented_response_carries_x_request_id_and_merchant_401s_www_authenticate(
    document: dict[str, Any],
) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                headers = declared_headers(document, response)
                assert headers.get("X-Request-Id", {}).get("required") is True, (method, path, status)
                if status == "401" and operation["security"]:
                    assert "WWW-Authenticate" in headers, (method, path)
                if status.startswith("3"):
                    assert headers.get("Location", {}).get("required") is True, (method, path, status)


async def test_servers_name_the_configured_public_url(document: dict[str, Any]) -> None:
    assert document.get("servers") == [
        {"url": PUBLIC_URL, "description": "this gateway (PAYGATE_PUBLIC_URL)"}
    ], document.get("servers")


@pytest.mark.parametrize(
    ("path", "status"),
    [("/v1/merchant_keys", 201), ("/v1/merchant_keys/{id}/roll", 200), ("/v1/api_keys/{id}/roll", 200)],
)
async def test_the_key_routes_document_their_replays(
    document: dict[str, Any], path: str, status: int
) -> None:
    """routes_keys and routes_merchant_keys mark a replay with Idempotent-Replayed
    (tests/integration/keys/test_key_replays_marked.py); the document says so."""
    headers = declared_headers(document, operation_response(document, "POST", path, status))
    assert "Idempotent-Replayed" in headers, (path, status)


async def test_a_merchant_key_create_replay_is_documented_and_marked(
    gateway: ServiceStack, document: dict[str, Any], merchant: Merchant
) -> None:
    key = {**merchant.headers, "Idempotency-Key": f"hdr-{uuid.uuid4()}"}
    status, first, created = await call(gateway, "POST", "/v1/merchant_keys", headers=key, json={})
    assert status == 201 and created["secret"], created
    documented = operation_response(document, "POST", "/v1/merchant_keys", 201)
    assert_carries_documented_headers(document, documented, first, "POST /v1/merchant_keys 201")
    assert "Idempotent-Replayed" not in first
    status, replay, again = await call(gateway, "POST", "/v1/merchant_keys", headers=key, json={})
    assert status == 201 and again["id"] == created["id"] and not again.get("secret"), again
    assert replay["Idempotent-Replayed"] == "true"
