"""`GET /openapi.json` documents exactly the routes the gateway registers: a route without an entry in
webhook_gateway/entrypoints/openapi_document.py, or an entry without a route, fails here."""

from __future__ import annotations

from typing import Any

from support.stack import ServiceStack
from webhook_gateway.entrypoints.openapi_document import UNDOCUMENTED_ROUTES, operation_keys

# aiohttp answers HEAD on every GET route by itself; it is not a separate operation.
_IMPLICIT_METHODS = {"HEAD"}
_METHODS = ("get", "put", "post", "delete", "patch")


def registered_routes(app: Any) -> set[tuple[str, str]]:
    routes = set()
    for route in app.router.routes():
        if route.method in _IMPLICIT_METHODS or route.resource is None:
            continue
        routes.add((route.method, route.resource.canonical))
    return routes


async def test_every_route_is_documented_and_every_documented_path_is_a_route(
    shared_stack: ServiceStack,
) -> None:
    routes = registered_routes(shared_stack.gateway.app) - set(UNDOCUMENTED_ROUTES)
    status, document = await shared_stack.request("GET", "/openapi.json")
    assert status == 200, document
    documented = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in _METHODS
        if method in item
    }
    assert documented == operation_keys()
    missing = sorted(routes - documented)
    stale = sorted(documented - routes)
    assert not missing, f"routes with no entry in openapi_document.OPERATIONS: {missing}"
    assert not stale, f"documented operations that no route serves: {stale}"


async def test_document_is_openapi_3_1_with_error_codes_on_every_refusal(shared_stack: ServiceStack) -> None:
    status, document = await shared_stack.request("GET", "/openapi.json")
    assert status == 200 and document["openapi"] == "3.1.0"
    assert "Error" in document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            merchant = bool(operation["security"])
            responses = operation["responses"]
            assert any(code.startswith("2") for code in responses), (method, path)
            if merchant:
                assert "401" in responses, (method, path)
            for code, response in responses.items():
                if int(code) < 400:
                    continue
                schema = response["content"].get("application/json", {}).get("schema")
                if schema is None:
                    continue  # an HTML page for browsers (the checkout page's 404)
                enum = schema["allOf"][1]["properties"]["error"]["properties"]["code"].get("enum")
                assert enum, f"{method.upper()} {path} {code} lists no error codes"
