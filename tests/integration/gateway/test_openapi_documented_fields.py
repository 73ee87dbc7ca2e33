"""Every field a real reply carries is in the OpenAPI document's schema for it, so types generated from the
document miss nothing. The schemas do not forbid extra fields (a newer gateway may add one), so schemathesis's
conformance check cannot see a field the document leaves out: this test names them. A merchant-events walk
found the invoice's `line_items`, `tax`, `subtotal`, `pdf_url`, ... and a session's `alerts` and history `note`
undocumented."""

from __future__ import annotations

from typing import Any

from support.merchant_webhooks import paid_session
from support.polling import eventually
from support.stack import ServiceStack


def properties(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The properties a schema declares, through `$ref` and `allOf`."""
    if "$ref" in schema:
        return properties(document, document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]])
    found = dict(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        found.update(properties(document, part))
    return found


def undocumented(
    document: dict[str, Any], schema: dict[str, Any], body: dict[str, Any], at: str
) -> list[str]:
    """Every key of `body`, nested objects and arrays of objects included, that `schema` does not declare."""
    declared = properties(document, schema)
    missing = []
    for name, value in body.items():
        if name not in declared:
            missing.append(f"{at}.{name}")
            continue
        inner = declared[name]
        if isinstance(value, dict) and ("properties" in inner or "$ref" in inner or "allOf" in inner):
            missing += undocumented(document, inner, value, f"{at}.{name}")
        items = inner.get("items", {})
        if isinstance(value, list) and ("properties" in items or "$ref" in items):
            for entry in value[:1]:
                missing += undocumented(document, items, entry, f"{at}.{name}[]")
    return missing


def response_schema(document: dict[str, Any], path: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["paths"][path]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    return schema


async def test_a_paid_session_and_its_invoice_name_only_documented_fields(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    status, document = await stack.request("GET", "/openapi.json")
    assert status == 200
    session_id = await paid_session(stack, merchant)

    async def invoiced() -> dict[str, Any] | None:
        status, body = await stack.request("GET", f"/v1/sessions/{session_id}", headers=merchant.headers)
        return body if status == 200 and body.get("invoice_id") else None

    session = await eventually(invoiced)
    assert undocumented(document, response_schema(document, "/v1/sessions/{id}"), session, "session") == []
    status, invoice = await stack.request(
        "GET", f"/v1/invoices/{session['invoice_id']}", headers=merchant.headers
    )
    assert status == 200, invoice
    assert invoice["line_items"], invoice
    assert undocumented(document, response_schema(document, "/v1/invoices/{id}"), invoice, "invoice") == []
