"""Voiding an invoice that refunds already credited (contract §8): refused 409 `invoice_partially_credited`
whether the refunds credited part of it or all of it, with a message true for both, and the code listed in
the OpenAPI document's 409 codes of the route (README: the exact list of codes). Real services, real HTTP."""

from __future__ import annotations

from support.refund_flows import paid_session, refund, session_json, wait_credit_notes
from support.stack import ServiceStack

VOID = "/v1/invoices/{id}/void"


async def test_a_fully_refunded_invoice_cannot_be_voided_and_the_refusal_is_documented(
    stack: ServiceStack,
) -> None:
    merchant = await stack.create_merchant()
    cases = {"partly": ("40.00", {"amount": "10.00"}, 1000), "fully": ("15.00", {}, 1500)}
    for name, (amount, body, credited) in cases.items():
        paid = await paid_session(stack, merchant, amount)
        status, _ = await refund(stack, merchant, paid.id, body)
        assert status == 202
        await wait_credit_notes(stack, merchant, paid.id, credited, 1)
        invoice_id = (await session_json(stack, merchant, paid.id))["invoice_id"]
        status, refused = await stack.request(
            "POST", VOID.format(id=invoice_id), json={"reason": "mistake"}, headers=merchant.headers
        )
        assert status == 409 and refused["error"]["code"] == "invoice_partially_credited", (name, refused)
        message = refused["error"]["message"]
        assert "in part or in full" in message and "part of" not in message, (name, message)
        status, invoice = await stack.request("GET", f"/v1/invoices/{invoice_id}", headers=merchant.headers)
        assert status == 200 and invoice["status"] == "issued", (name, invoice)  # nothing changed

    status, document = await stack.request("GET", "/openapi.json")
    assert status == 200
    response = document["paths"][VOID]["post"]["responses"]["409"]
    codes = response["content"]["application/json"]["schema"]["allOf"][1]["properties"]["error"][
        "properties"
    ]["code"]["enum"]
    assert "invoice_partially_credited" in codes, codes
