"""What the merchant API accepts, read from its OpenAPI document (the one source of truth): the query
parameters of each operation and the fields of each JSON request body.

A name the document does not list is refused, never ignored (contract §6a, README "Unknown parameters and
fields"): a misspelled or misplaced filter (`GET /v1/invoices?session_id=...`) must not answer everything, and
a body field the route does not take (`currency` on a refund) must not be dropped while the rest is acted on.
The tables are built once, when the app is made (app.py stores them under ACCEPTED_INPUTS); a request only
looks up its own operation. http_errors.error_middleware checks the query of a request that has one;
request_body checks a body's fields once it is parsed.

Only operations with merchant authentication are checked: pages and public routes take whatever a browser
adds (tracking parameters), and provider webhooks are the provider's shape, verified by signature.

Body fields are checked at the top level, and inside a nested object whose schema says
`additionalProperties: false` (the billing profile's `seller` and its `address`); a free-form object
(`metadata`) is never looked into.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web

# Longest piece of a client's name quoted back in a refusal.
_QUOTED_CHARS: Final[int] = 40


@dataclass(frozen=True)
class Fields:
    """The fields an object of a request body may have, and the nested objects whose fields are known too."""

    names: tuple[str, ...]
    nested: Mapping[str, Fields] = field(default_factory=dict)


@dataclass(frozen=True)
class AcceptedInputs:
    # (METHOD, route template) -> the query parameters the operation documents.
    query: Mapping[tuple[str, str], tuple[str, ...]]
    # (METHOD, route template) -> the fields of its JSON body (operations with a closed body only).
    bodies: Mapping[tuple[str, str], Fields]


ACCEPTED_INPUTS: web.AppKey[AcceptedInputs] = web.AppKey("accepted_inputs")

# The merchant authentication (merchant_auth.authenticate, wired by app.py) that a refusal of the query waits
# for: a caller without a valid key hears 401, as on any other refusal, before anything about its parameters.
AUTHENTICATE_FIRST: web.AppKey[Callable[[web.Request], Awaitable[object]]] = web.AppKey("authenticate_first")


def accepted_inputs(document: Mapping[str, Any]) -> AcceptedInputs:
    """The tables of every operation with merchant authentication (a `security` requirement) in `document`."""
    components = document.get("components", {}).get("schemas", {})
    query: dict[tuple[str, str], tuple[str, ...]] = {}
    bodies: dict[tuple[str, str], Fields] = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not operation.get("security"):
                continue
            key = (method.upper(), path)
            query[key] = tuple(p["name"] for p in operation.get("parameters", ()) if p.get("in") == "query")
            content = operation.get("requestBody", {}).get("content", {})
            schema = content.get("application/json", {}).get("schema")
            fields = _fields(schema, components) if schema is not None else None
            if fields is not None:
                bodies[key] = fields
    return AcceptedInputs(query=query, bodies=bodies)


def _resolve(schema: Any, components: Mapping[str, Any]) -> Any:
    """The object schema behind `schema`: a `$ref` followed, and the one object branch of a nullable anyOf."""
    for _ in range(10):
        if not isinstance(schema, Mapping):
            return None
        if "$ref" in schema:
            schema = components.get(str(schema["$ref"]).rsplit("/", 1)[-1])
            continue
        branches = [
            b for b in schema.get("anyOf", schema.get("oneOf", ())) if _resolve(b, components) is not None
        ]
        if "properties" not in schema and len(branches) == 1:
            schema = branches[0]
            continue
        return schema if "properties" in schema else None
    return None


def _fields(schema: Any, components: Mapping[str, Any], *, nested: bool = False) -> Fields | None:
    """The fields of a body object; None when it is free-form (no `properties`, or any other property
    allowed on purpose). A nested object counts only when it closes itself with `additionalProperties:
    false`."""
    resolved = _resolve(schema, components)
    if resolved is None:
        return None
    extra = resolved.get("additionalProperties", None)
    if extra not in (None, False) or (nested and extra is not False):
        return None
    properties: Mapping[str, Any] = resolved["properties"]
    inner = {
        name: found
        for name, sub in properties.items()
        if (found := _fields(sub, components, nested=True)) is not None
    }
    return Fields(tuple(properties), inner)


def _quoted(name: str) -> str:
    return repr(name[:_QUOTED_CHARS])


def _accepted(names: Iterable[str]) -> str:
    listed = ", ".join(names)
    return f"accepted: {listed}" if listed else "this route takes none"


def query_refusal(request: web.Request) -> tuple[str, str] | None:
    """(code, message) refusing the query of the request's merchant operation: `unknown_parameter` for the first
    parameter it does not document, else `repeated_parameter` for the first given more than once (a second value
    is never silently dropped: `?status=paid&status=created` is no "either"). None when the query is as
    documented, or the route is not a merchant operation (or not a route)."""
    inputs = request.app.get(ACCEPTED_INPUTS)
    resource = request.match_info.route.resource
    if inputs is None or resource is None:
        return None
    method = "GET" if request.method == "HEAD" else request.method
    accepted = inputs.query.get((method, resource.canonical))
    if accepted is None:
        return None
    query = request.query
    for name in query:
        if name not in accepted:
            return "unknown_parameter", f"unknown query parameter {_quoted(name)}; {_accepted(accepted)}"
    for name in query:
        if len(query.getall(name)) > 1:
            return (
                "repeated_parameter",
                f"query parameter {_quoted(name)} is given more than once; give it once",
            )
    return None


def unknown_field_message(request: web.Request, body: Mapping[str, Any]) -> str | None:
    """The refusal of the first body field (`seller.name` style when nested) the request's merchant
    operation does not document; None when all are known or the body is not a documented closed one."""
    inputs = request.app.get(ACCEPTED_INPUTS)
    resource = request.match_info.route.resource
    if inputs is None or resource is None:
        return None
    fields = inputs.bodies.get((request.method, resource.canonical))
    return None if fields is None else _unknown_in(body, fields, "")


def _unknown_in(value: Mapping[str, Any], fields: Fields, prefix: str) -> str | None:
    for name, item in value.items():
        if name not in fields.names:
            where = f"{prefix}.{name}" if prefix else name
            accepted = ", ".join(f"{prefix}.{n}" if prefix else n for n in fields.names)
            return f"unknown field {_quoted(where)}; accepted: {accepted}"
        inner = fields.nested.get(name)
        if inner is not None and isinstance(item, Mapping):
            found = _unknown_in(item, inner, f"{prefix}.{name}" if prefix else name)
            if found is not None:
                return found
    return None
