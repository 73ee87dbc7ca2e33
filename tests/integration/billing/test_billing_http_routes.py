"""The gateway's invoice routes over real HTTP -> gRPC -> Postgres: JSON, receipts, void, revenue, isolation."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import aiohttp
from billing_helpers import issue
from pypdf import PdfReader

from support.stack import ServiceStack

CONTRACT_FIELDS = {"id", "number", "session_id", "amount", "amount_minor", "currency", "issued_at", "status"}


async def fetch_bytes(
    stack: ServiceStack, path: str, headers: dict[str, str]
) -> tuple[int, bytes, dict[str, str]]:
    async with aiohttp.ClientSession() as http, http.get(stack.base_url + path, headers=headers) as response:
        return response.status, await response.read(), dict(response.headers)


async def test_invoice_json_pdf_and_html(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant("Acme", "acme")
    status, profile = await stack.request(
        "PUT",
        "/v1/billing_profile",
        json={"seller": {"name": "Acme GmbH", "address": {"lines": ["Hauptstr. 1"], "country": "DE"}},
              "invoice_prefix": "ACME", "tax_rate_bps": 1900, "support_email": "help@acme.example"},
        headers=merchant.headers,
    )  # fmt: skip
    assert status == 200, profile
    assert profile["invoice_prefix"] == "ACME" and profile["tax_rate_bps"] == 1900
    invoice = await issue(stack.billing, merchant.id, minor=11900)

    status, body = await stack.request("GET", f"/v1/invoices/{invoice.id}", headers=merchant.headers)
    assert status == 200, body
    assert set(body) >= CONTRACT_FIELDS
    assert body["number"] == invoice.number and body["number"].startswith("ACME-")
    assert (body["amount"], body["amount_minor"], body["currency"]) == ("119.00", 11900, "EUR")
    assert (body["tax"], body["tax_rate_bps"], body["subtotal"]) == ("19.00", 1900, "100.00")
    assert (
        body["status"] == "issued" and body["kind"] == "invoice" and body["session_id"] == invoice.session_id
    )
    assert datetime.fromisoformat(body["issued_at"]).tzinfo is not None

    status, pdf, headers = await fetch_bytes(stack, f"/v1/invoices/{invoice.id}/pdf", merchant.headers)
    assert status == 200 and headers["Content-Type"] == "application/pdf"
    assert f'filename="{invoice.number}.pdf"' in headers["Content-Disposition"]
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert invoice.number in text
    assert "119.00 EUR" in text and "Acme GmbH" in text

    status, html, headers = await fetch_bytes(stack, f"/v1/invoices/{invoice.id}/html", merchant.headers)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert invoice.number in html.decode() and "119.00 EUR" in html.decode()


async def test_void_over_http_and_credit_note_receipt(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    invoice = await issue(stack.billing, merchant.id, minor=2500)
    status, body = await stack.request(
        "POST", f"/v1/invoices/{invoice.id}/void", json={"reason": "refund"}, headers=merchant.headers
    )
    assert status == 200, body
    note = body["credit_note"]
    assert body["invoice"]["status"] == "void" and body["invoice"]["credit_note_id"] == note["id"]
    assert (note["kind"], note["amount_minor"], note["credits_invoice_id"]) == (
        "credit_note",
        -2500,
        invoice.id,
    )
    status, again = await stack.request("POST", f"/v1/invoices/{invoice.id}/void", headers=merchant.headers)
    assert (status, again["error"]["code"]) == (409, "already_void")

    status, pdf, _ = await fetch_bytes(stack, f"/v1/invoices/{note['id']}/pdf", merchant.headers)
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert status == 200 and note["number"] in text and invoice.number in text and "-25.00 EUR" in text

    status, listed = await stack.request("GET", "/v1/invoices?status=void", headers=merchant.headers)
    assert status == 200 and [i["id"] for i in listed["data"]] == [invoice.id]


async def test_list_pagination_and_date_filters(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    ids = [(await issue(stack.billing, merchant.id, minor=100 + i)).id for i in range(5)]
    status, page = await stack.request("GET", "/v1/invoices?limit=3", headers=merchant.headers)
    assert status == 200 and page["has_more"] is True
    assert [i["id"] for i in page["data"]] == ids[::-1][:3]
    status, rest = await stack.request(
        "GET", f"/v1/invoices?limit=3&starting_after={page['data'][-1]['id']}", headers=merchant.headers
    )
    assert [i["id"] for i in rest["data"]] == ids[::-1][3:] and rest["has_more"] is False

    today = datetime.now(UTC).date()
    status, window = await stack.request(
        "GET", f"/v1/invoices?from={today.isoformat()}&to={(today + timedelta(days=1)).isoformat()}",
        headers=merchant.headers,
    )  # fmt: skip
    assert status == 200 and len(window["data"]) == 5
    status, empty = await stack.request(
        "GET", f"/v1/invoices?to={today.isoformat()}T00:00:00Z", headers=merchant.headers
    )
    assert status == 200 and empty["data"] == []


async def test_revenue_over_http_nets_credit_notes(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    first = await issue(stack.billing, merchant.id, minor=1000)
    await issue(stack.billing, merchant.id, minor=3000)
    await stack.request("POST", f"/v1/invoices/{first.id}/void", headers=merchant.headers)
    today = datetime.now(UTC).date()
    start, end = today - timedelta(days=1), today + timedelta(days=1)
    status, body = await stack.request(
        "GET", f"/v1/revenue?from={start}&to={end}&interval=day", headers=merchant.headers
    )
    assert status == 200, body
    assert body["mode"] == "test" and body["interval"] == "day"
    [bucket] = body["buckets"]
    assert bucket["period_start"].startswith(today.isoformat())
    assert (bucket["invoice_count"], bucket["invoice_total_minor"]) == (2, 4000)
    assert (bucket["credit_note_count"], bucket["credit_note_total"]) == (1, "10.00")
    assert (bucket["net"], bucket["net_minor"], bucket["currency"]) == ("30.00", 3000, "EUR")


async def test_merchant_isolation(stack: ServiceStack) -> None:
    alice = await stack.create_merchant("Alice", "alice")
    bob = await stack.create_merchant("Bob", "bob")
    invoice = await issue(stack.billing, alice.id)
    for method, suffix in (("GET", ""), ("GET", "/pdf"), ("GET", "/html"), ("POST", "/void")):
        status, body = await stack.request(method, f"/v1/invoices/{invoice.id}{suffix}", headers=bob.headers)
        assert (status, body["error"]["code"]) == (404, "not_found"), suffix
    status, listed = await stack.request("GET", "/v1/invoices", headers=bob.headers)
    assert status == 200 and listed["data"] == []
    status, body = await stack.request(
        "GET", f"/v1/invoices?starting_after={invoice.id}", headers=bob.headers
    )
    assert (status, body["error"]["code"]) == (400, "invalid_starting_after")
    status, alice_view = await stack.request("GET", f"/v1/invoices/{invoice.id}", headers=alice.headers)
    assert status == 200 and alice_view["status"] == "issued", "bob's void attempt changed nothing"
    status, _ = await stack.request("GET", "/v1/invoices")
    assert status == 401


async def test_bad_queries_get_400_with_field_codes(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    h = merchant.headers
    cases = [
        ("GET", "/v1/invoices?status=paid", None, "invalid_status"),
        ("GET", "/v1/invoices?limit=0", None, "invalid_limit"),
        ("GET", "/v1/invoices?limit=abc", None, "invalid_limit"),
        ("GET", "/v1/invoices?from=yesterday", None, "invalid_from"),
        ("GET", "/v1/invoices?from=2025-02-01&to=2025-01-01", None, "invalid_date_range"),
        # Both dates are optional (contract §6a); a `from` in the future leaves no range up to now.
        ("GET", "/v1/revenue?from=2999-01-01", None, "invalid_date_range"),
        ("GET", "/v1/revenue?to=0001-01-01T00:00:00%2B01:00", None, "invalid_to"),
        ("GET", "/v1/revenue?from=2025-01-01&to=2025-13-01", None, "invalid_to"),
        ("GET", "/v1/revenue?from=2025-02-01&to=2025-01-01", None, "invalid_date_range"),
        ("GET", "/v1/revenue?from=2015-01-01&to=2025-01-01", None, "invalid_date_range"),
        ("GET", "/v1/revenue?from=2025-01-01&to=2025-02-01&interval=hour", None, "invalid_interval"),
        ("PUT", "/v1/billing_profile", {"tax_rate_bps": "19"}, "invalid_tax_rate"),
        ("PUT", "/v1/billing_profile", {"tax_rate_bps": 10001}, "invalid_tax_rate"),
        ("PUT", "/v1/billing_profile", {"invoice_prefix": "inv"}, "invalid_invoice_prefix"),
        ("PUT", "/v1/billing_profile", {"support_email": "nope"}, "invalid_support_email"),
        ("PUT", "/v1/billing_profile", {"reset_numbering_yearly": "yes"}, "invalid_reset_numbering_yearly"),
        ("PUT", "/v1/billing_profile", {"seller": {"email": "x"}}, "invalid_seller_email"),
        ("PUT", "/v1/billing_profile", {"seller": "Acme"}, "invalid_seller"),
    ]
    for method, path, body, code in cases:
        status, reply = await stack.request(method, path, json=body, headers=h)
        assert (status, reply["error"]["code"]) == (400, code), (path, body, reply)
    status, reply = await stack.request("GET", "/v1/invoices/not-a-uuid", headers=h)
    assert (status, reply["error"]["code"]) == (404, "not_found")
    status, profile = await stack.request("GET", "/v1/billing_profile", headers=h)
    assert status == 200 and profile["invoice_prefix"] == "INV" and profile["tax_rate_bps"] == 0
