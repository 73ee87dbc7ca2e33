"""What a merchant's walk through the dashboard found, each against real services over real HTTP:
- a session's page lists its provider events (and names them in its history) however many newer events the
  merchant has;
- the Overview's webhook health counts every event of the last 24 h, a failed one older than the newest 100 too;
- a Stripe dispute event records the session the apply matched it to (GET /v1/events, the session's page);
- Void is not offered for an invoice refunds have credited;
- a live quarantine entry of a test session does not link to a page that is not there in live mode;
- a refunded session's access-link text does not promise a new link it cannot get;
- an old endpoint secret's overlap is not shown once it has passed;
- session metadata is shown in its own labelled block, not among the session's own fields;
- a session's page names its buyer (name, country, address, VAT id) and, once its invoice is voided, the
  credit note that cancelled it."""

from __future__ import annotations

import argparse
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from gateway_webhook_support import (
    FAST_RELAY_ENV,
    create_session,
    send_stripe,
    stripe_event,
    wait_for_session_status,
    wait_for_status,
    wait_until,
)

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate.session.v1 import merchant_events_pb2 as pb
from paygate.session.v1 import session_pb2
from paygate_dev.devtools import trigger_cmd
from support.dashboard import signed_in
from support.stack import Merchant, ServiceStack
from webhook_gateway.entrypoints import routes_dashboard


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **FAST_RELAY_ENV}


async def page(http: aiohttp.ClientSession, stack: ServiceStack, path: str) -> str:
    async with http.get(stack.base_url + path, allow_redirects=False) as response:
        text = await response.text()
        assert response.status == 200, (path, response.status, text[:500])
        return text


def section(text: str, heading: str) -> str:
    """The HTML of the card whose <h2> is `heading`."""
    start = text.index(heading)
    end = text.find("</section>", start)
    return text[start:end]


def _facts(stack: ServiceStack) -> dict[str, Any]:
    return {
        "gateway_url": stack.base_url,
        "grpc": {name: stack.addr(name) for name in ("session", "billing", "keys")},
        "webhook_secrets": {
            "stripe": stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"],
            "onecom": stack.env["PAYGATE_ONECOM_WEBHOOK_SECRETS"],
        },
    }


async def trigger(stack: ServiceStack, *argv: str) -> str:
    """`paygate trigger` one event; its event id once the gateway applied it."""
    parser = argparse.ArgumentParser(prog="paygate trigger")
    trigger_cmd.configure(parser)
    event_id = "evt_" + secrets.token_hex(12)
    args = parser.parse_args([*argv, "--event-id", event_id])
    assert await trigger_cmd.trigger(args, _facts(stack)) == 0, argv
    await wait_for_status(stack, "stripe", event_id, {"applied"})
    return event_id


async def paid_and_fulfilled(stack: ServiceStack, merchant: Merchant, **body: Any) -> tuple[str, str]:
    """A Stripe session paid by a signed webhook and fulfilled (invoice, key, link); (id, paying event id)."""
    if body:
        status, created = await stack.request(
            "POST",
            "/v1/sessions",
            json={"amount": "25.00", "currency": "EUR", "provider": "stripe", **body},
            headers=merchant.headers,
        )
        assert status == 201, created
    else:
        created = await create_session(stack, merchant)
    sid = created["id"]
    event = stripe_event("checkout.session.completed", created)
    status, reply = await send_stripe(stack, event)
    assert status == 200, reply
    await wait_for_status(stack, "stripe", event["id"], {"applied"})

    async def fulfilled() -> bool:
        reply = await stack.session.GetSession(
            session_pb2.GetSessionRequest(session_id=sid, merchant_id=merchant.id), timeout=5
        )
        return reply.fulfilment_status == "done"

    await wait_until(fulfilled, timeout=20, what=f"session {sid} fulfilled")
    return sid, event["id"]


async def add_inbox_events(
    stack: ServiceStack,
    merchant_id: str,
    count: int,
    *,
    status: str = "applied",
    mode: str = "test",
    age: timedelta = timedelta(0),
) -> None:
    """`count` settled inbox events of other sessions, received `age` ago (a millisecond apart)."""
    conn = await stack.db.admin()
    try:
        await conn.execute(
            """INSERT INTO gateway.inbox_events (provider, event_id, event_type, raw_body, status, outcome,
                                                 session_id, merchant_id, mode, received_at, last_error)
               SELECT 'stripe', 'evt_fill_' || md5(random()::text), 'payment_intent.succeeded', '\\x7b7d',
                      $2::text, CASE WHEN $2::text = 'failed' THEN 'invalid_argument' ELSE $2 END,
                      gen_random_uuid(), $1, $3,
                      now() - $4::interval + g * interval '1 millisecond',
                      CASE WHEN $2::text = 'failed' THEN 'invalid_argument: test' END
                 FROM generate_series(1, $5) AS g""",
            uuid.UUID(merchant_id),
            status,
            mode,
            age,
            count,
        )
    finally:
        await conn.close()


# -- 1 ---------------------------------------------------------------------------------------------------------


async def test_a_session_page_keeps_its_provider_events_behind_100_newer_ones(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    sid, event_id = await paid_and_fulfilled(stack, merchant)
    await add_inbox_events(stack, merchant.id, 120)

    async with signed_in(stack, merchant.api_key) as http:
        text = await page(http, stack, f"/dashboard/sessions/{sid}")
    events = section(text, "<h2>Provider events</h2>")
    assert "checkout.session.completed" in events, events
    history = section(text, ">History</h2>")
    assert f"checkout.session.completed</span> ({event_id})" in history, history


# -- 2 ---------------------------------------------------------------------------------------------------------


async def test_overview_webhook_health_counts_every_event_of_the_last_24_hours(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    await add_inbox_events(stack, merchant.id, 1, status="failed", age=timedelta(hours=2))
    await add_inbox_events(stack, merchant.id, 125, age=timedelta(hours=1))
    await add_inbox_events(stack, merchant.id, 7, age=timedelta(hours=30))  # outside the window
    await add_inbox_events(stack, merchant.id, 9, mode="live", age=timedelta(hours=1))  # the other mode

    async with signed_in(stack, merchant.api_key) as http:
        text = await page(http, stack, "/dashboard")
    card = section(text, "<h2>Provider webhooks</h2>")
    assert "126 received in 24 h" in card, card
    assert "1 failed" in card, card
    assert "Needs a look" in card, card


# -- 3 ---------------------------------------------------------------------------------------------------------


async def test_a_dispute_event_records_the_session_it_was_matched_to(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    sid = (await create_session(stack, merchant))["id"]
    await trigger(stack, "stripe", "checkout.session.completed", "--session", sid)
    await wait_for_session_status(stack, merchant, sid, "paid")
    created = await trigger(stack, "stripe", "charge.dispute.created", "--session", sid)
    closed = await trigger(stack, "stripe", "charge.dispute.closed", "--session", sid, "--status", "won")

    status, listing = await stack.request("GET", "/v1/events?limit=100", headers=merchant.headers)
    assert status == 200, listing
    by_id = {e["event_id"]: e for e in listing["data"]}
    assert by_id[created]["session_id"] == sid, by_id[created]
    assert by_id[closed]["session_id"] == sid, by_id[closed]

    async with signed_in(stack, merchant.api_key) as http:
        text = await page(http, stack, f"/dashboard/sessions/{sid}")
    events = section(text, "<h2>Provider events</h2>")
    assert "charge.dispute.created" in events and "charge.dispute.closed" in events, events


# -- 4 and 6 ---------------------------------------------------------------------------------------------------


async def test_no_void_for_a_credited_invoice_and_no_new_link_promised_for_a_refunded_session(
    stack: ServiceStack,
) -> None:
    merchant = await stack.create_merchant()
    sid, _ = await paid_and_fulfilled(stack, merchant)
    await trigger(stack, "stripe", "refund.created", "--session", sid, "--amount", "10.00")

    async def credited() -> bool:
        reply = await stack.billing.ListInvoices(
            billing_pb2.ListInvoicesRequest(
                merchant_id=merchant.id,
                mode=common_pb2.MODE_TEST,
                kind=billing_pb2.DOCUMENT_KIND_CREDIT_NOTE,
                limit=100,
            ),
            timeout=5,
        )
        return any(i.session_id == sid for i in reply.invoices)

    await wait_until(credited, timeout=20, what="a credit note")
    async with signed_in(stack, merchant.api_key) as http:
        invoices = await page(http, stack, "/dashboard/invoices")
        assert "/void" not in invoices, invoices
        text = await page(http, stack, f"/dashboard/sessions/{sid}")
        assert "/void" not in section(text, "<h2>Invoice</h2>"), section(text, "<h2>Invoice</h2>")

        # Refunded in full: the links are revoked and no new one can be issued (session_not_paid).
        await trigger(stack, "stripe", "charge.refunded", "--session", sid)
        await wait_for_session_status(stack, merchant, sid, "refunded")
        status, refused = await stack.request(
            "POST", f"/v1/sessions/{sid}/access", json={}, headers=merchant.headers
        )
        assert status == 409, refused
        text = await page(http, stack, f"/dashboard/sessions/{sid}")
    access = section(text, "Customer access link")
    assert "Issue a new link" not in access, access
    assert "until you issue a new one" not in access, access
    assert "refunded" in access, access


# -- 5 ---------------------------------------------------------------------------------------------------------


async def test_a_live_quarantine_entry_of_a_test_session_does_not_link_to_it(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant(mode="test")
    live = await stack.keys.CreateMerchantSecretKey(
        keys_pb2.CreateMerchantSecretKeyRequest(merchant_id=merchant.id, mode=common_pb2.MODE_LIVE), timeout=5
    )
    session = await create_session(stack, merchant)
    event = stripe_event("payment_intent.succeeded", session, livemode=True)
    await send_stripe(stack, event)
    row = await wait_for_status(stack, "stripe", event["id"], {"quarantined"})
    assert row["outcome"] == "mode_mismatch", row

    async with signed_in(stack, live.secret_key) as http:
        text = await page(http, stack, "/dashboard/quarantine")
        assert event["id"] in text, text
        assert f'href="/dashboard/sessions/{session["id"]}"' not in text, text
        entry = section(text, event["id"])
        assert session["id"][:8] in entry and "test mode" in entry, entry
        # Indeed not there in live mode.
        async with http.get(f"{stack.base_url}/dashboard/sessions/{session['id']}") as response:
            assert response.status == 404


# -- 7 ---------------------------------------------------------------------------------------------------------


def test_a_passed_old_secret_overlap_is_not_shown() -> None:
    """The dashboard's own rendering: whatever time the session service answers, a passed one is not shown
    (the session service may answer an old secret's end that has just passed)."""
    now = datetime.now(UTC)
    for ends, shown in ((now - timedelta(hours=1), False), (now + timedelta(hours=1), True)):
        endpoint = pb.WebhookEndpoint(id=str(uuid.uuid4()), url="https://example.com/hook", status="enabled")
        endpoint.previous_secret_expires_at.FromDatetime(ends)
        row = routes_dashboard._endpoint_row(endpoint)
        assert bool(row["previous_until"]) is shown, (ends, row)


# -- 8 ---------------------------------------------------------------------------------------------------------


async def test_session_metadata_is_a_labelled_block_of_its_own(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    status, created = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": "5.00", "currency": "EUR", "metadata": {"Status": "shipped", "n": "1"}},
        headers=merchant.headers,
    )
    assert status == 201, created
    async with signed_in(stack, merchant.api_key) as http:
        text = await page(http, stack, f"/dashboard/sessions/{created['id']}")
    details = section(text, "<h2>Details</h2>")
    details_list = details[: details.index("</dl>")]
    assert details_list.count("<dt>Status</dt>") == 1, details_list
    assert "shipped" not in details_list, details_list
    metadata = section(text, ">Metadata</h3>")
    assert re.search(r"<dt[^>]*>\s*Status\s*</dt>\s*<dd[^>]*>\s*shipped", metadata), metadata
    assert re.search(r"<dt[^>]*>\s*n\s*</dt>\s*<dd[^>]*>\s*1\s*</dd>", metadata), metadata


# -- 6 ---------------------------------------------------------------------------------------------------------


async def test_a_session_page_names_its_buyer_and_the_credit_note_that_voided_its_invoice(
    stack: ServiceStack,
) -> None:
    """An auditor's walk: the page said "Customer —" for a session with a buyer's name, country and VAT id
    (it showed the email only), and a voided invoice did not name the credit note that cancelled it."""
    merchant = await stack.create_merchant()
    buyer = {
        "name": "Erika Mustermann GmbH",
        "country": "DE",
        "vat_id": "DE123456789",
        "address": ["Hauptstr. 1"],
    }
    sid, _ = await paid_and_fulfilled(stack, merchant, customer=buyer)
    async with signed_in(stack, merchant.api_key) as http:
        details = section(await page(http, stack, f"/dashboard/sessions/{sid}"), "<h2>Details</h2>")
        for shown in ("Erika Mustermann GmbH", "DE123456789", "Hauptstr. 1"):
            assert shown in details, details

        status, invoice = await stack.request("GET", "/v1/invoices?status=issued", headers=merchant.headers)
        assert status == 200, invoice
        invoice_id = next(i["id"] for i in invoice["data"] if i["session_id"] == sid)
        status, voided = await stack.request(
            "POST",
            f"/v1/invoices/{invoice_id}/void",
            json={"reason": "issued in error"},
            headers=merchant.headers,
        )
        assert status == 200, voided
        credit_note_id = voided["credit_note"]["id"]
        box = section(await page(http, stack, f"/dashboard/sessions/{sid}"), "<h2>Invoice</h2>")
    assert f"/dashboard/invoices/{credit_note_id}/pdf" in box, box
    assert "Cancelled by credit note" in box, box
