"""IssueInvoice and friends over real gRPC against real Postgres: idempotency, gapless numbering, bad input."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from datetime import UTC, datetime

import asyncpg
import grpc
from billing_helpers import LIVE, TEST, issue, issue_request, money, rpc_failure

from billing_service.domain.numbering import format_invoice_number, parse_invoice_number
from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from support.stack import ServiceStack

FAILED = grpc.StatusCode.FAILED_PRECONDITION
INVALID = grpc.StatusCode.INVALID_ARGUMENT


async def test_200_concurrent_issues_give_100_gapless_invoices(stack: ServiceStack) -> None:
    merchants = [str(uuid.uuid4()), str(uuid.uuid4())]
    sessions = [(merchants[i % 2], str(uuid.uuid4())) for i in range(100)]
    calls = [issue(stack.billing, m, s, minor=100 + i) for i, (m, s) in enumerate(sessions)] * 2
    replies = await asyncio.gather(*calls)

    by_session: dict[str, set[str]] = defaultdict(set)
    for reply in replies:
        by_session[reply.session_id].add(reply.id)
    assert len(by_session) == 100
    assert all(len(ids) == 1 for ids in by_session.values()), "a retry must return the same invoice"

    admin = await stack.db.admin()
    try:
        rows = await admin.fetch("SELECT merchant_id, sequence, number FROM billing.invoices")
        counters = await admin.fetch("SELECT merchant_id, last_sequence FROM billing.invoice_counters")
    finally:
        await admin.close()
    assert len(rows) == 100
    for merchant in merchants:
        sequences = sorted(r["sequence"] for r in rows if r["merchant_id"] == merchant)
        assert sequences == list(range(1, 51)), "numbers are 1..n with no gap and no duplicate"
    assert {r["merchant_id"]: r["last_sequence"] for r in counters} == dict.fromkeys(merchants, 50)
    assert len({(r["merchant_id"], r["number"]) for r in rows}) == 100


async def test_retry_returns_same_invoice_and_conflicts_are_refused(stack: ServiceStack) -> None:
    merchant, session = str(uuid.uuid4()), str(uuid.uuid4())
    first = await issue(stack.billing, merchant, session, minor=4200)
    again = await issue(stack.billing, merchant, session, minor=4200)
    assert again == first
    assert await rpc_failure(issue(stack.billing, merchant, session, minor=4201)) == (
        FAILED,
        "invoice_amount_conflict",
    )
    assert await rpc_failure(issue(stack.billing, merchant, session, minor=4200, currency="USD")) == (
        FAILED,
        "invoice_amount_conflict",
    )
    # Another merchant naming the same session never gets the first merchant's invoice.
    assert await rpc_failure(issue(stack.billing, str(uuid.uuid4()), session, minor=4200)) == (
        FAILED,
        "invoice_session_conflict",
    )
    by_session = await stack.billing.GetInvoice(
        billing_pb2.GetInvoiceRequest(merchant_id=merchant, session_id=session)
    )
    assert by_session == first
    # Refused retries consumed nothing: the next invoice is number 2.
    second = await issue(stack.billing, merchant)
    assert second.sequence == 2


async def test_invoice_content_tax_and_number_format(stack: ServiceStack) -> None:
    merchant = str(uuid.uuid4())
    await stack.billing.UpdateBillingProfile(
        billing_pb2.UpdateBillingProfileRequest(
            profile=billing_pb2.BillingProfile(
                merchant_id=merchant,
                seller=billing_pb2.Party(
                    name="Acme GmbH",
                    tax_id="DE123456789",
                    address=common_pb2.Address(lines=["Hauptstr. 1", "10115 Berlin"], country="DE"),
                ),
                invoice_prefix="ACME",
                tax_rate_bps=1900,
                support_email="help@acme.example",
            )
        )
    )
    paid_at = datetime(2025, 3, 14, 10, 0, tzinfo=UTC)
    request = issue_request(
        merchant,
        minor=11900,
        line_items=[
            billing_pb2.LineItem(description="API access", quantity=2, unit_amount=money(5000)),
            billing_pb2.LineItem(description="Setup", quantity=1, unit_amount=money(1900)),
        ],
        buyer=billing_pb2.Party(name="Jane Doe", email="jane@example.com"),
    )
    request.paid_at.FromDatetime(paid_at)
    invoice = await stack.billing.IssueInvoice(request)
    issued = invoice.issued_at.ToDatetime(tzinfo=UTC)
    assert invoice.number == format_invoice_number("ACME", issued.year, 1)
    assert parse_invoice_number(invoice.number).sequence == 1
    assert invoice.seller.name == "Acme GmbH" and invoice.seller.address.country == "DE"
    assert invoice.buyer.email == "jane@example.com"
    assert invoice.total.amount_minor == "11900" and invoice.tax_rate_bps == 1900
    assert (invoice.subtotal.amount_minor, invoice.tax.amount_minor) == ("10000", "1900")
    assert [(i.description, i.quantity, i.amount.amount_minor) for i in invoice.line_items] == [
        ("API access", 2, "10000"),
        ("Setup", 1, "1900"),
    ]
    assert invoice.status == billing_pb2.INVOICE_STATUS_ISSUED
    assert invoice.kind == billing_pb2.DOCUMENT_KIND_INVOICE


async def test_test_and_live_have_separate_sequences(stack: ServiceStack) -> None:
    merchant = str(uuid.uuid4())
    test_numbers = [(await issue(stack.billing, merchant, mode=TEST)).sequence for _ in range(3)]
    live_numbers = [(await issue(stack.billing, merchant, mode=LIVE)).sequence for _ in range(2)]
    assert test_numbers == [1, 2, 3]
    assert live_numbers == [1, 2]
    listed = await stack.billing.ListInvoices(
        billing_pb2.ListInvoicesRequest(merchant_id=merchant, mode=LIVE)
    )
    assert [i.sequence for i in listed.invoices] == [2, 1]


async def test_prefix_change_applies_to_next_invoice_without_restarting(stack: ServiceStack) -> None:
    merchant = str(uuid.uuid4())
    first = await issue(stack.billing, merchant)
    assert first.number.startswith("INV-")
    await stack.billing.UpdateBillingProfile(
        billing_pb2.UpdateBillingProfileRequest(
            profile=billing_pb2.BillingProfile(merchant_id=merchant, invoice_prefix="SHOP7")
        )
    )
    second = await issue(stack.billing, merchant)
    assert second.number.startswith("SHOP7-") and second.number.endswith("-000002")
    profile = await stack.billing.GetBillingProfile(
        billing_pb2.GetBillingProfileRequest(merchant_id=merchant)
    )
    assert profile.invoice_prefix == "SHOP7" and profile.tax_rate_bps == 0
    assert not profile.reset_numbering_yearly


async def test_stored_number_matches_domain_format(stack: ServiceStack) -> None:
    """The SQL spelling of the number must stay the domain's, including past six digits."""
    conn = await asyncpg.connect(stack.db.runtime_dsn("billing"), server_settings={"search_path": "billing"})
    try:
        for prefix, year, sequence in [("INV", 2025, 1), ("A", 999, 999_999), ("X9", 2030, 1_000_000)]:
            stored = await conn.fetchval("SELECT format_invoice_number($1, $2, $3)", prefix, year, sequence)
            assert stored == format_invoice_number(prefix, year, sequence)
    finally:
        await conn.close()


async def test_void_issues_numbered_credit_note_once(stack: ServiceStack) -> None:
    merchant = str(uuid.uuid4())
    invoice = await issue(stack.billing, merchant, minor=500)
    reply = await stack.billing.VoidInvoice(
        billing_pb2.VoidInvoiceRequest(merchant_id=merchant, invoice_id=invoice.id, reason="refunded")
    )
    note = reply.credit_note
    assert reply.invoice.status == billing_pb2.INVOICE_STATUS_VOID
    assert reply.invoice.credit_note_id == note.id and note.credits_invoice_id == invoice.id
    assert note.kind == billing_pb2.DOCUMENT_KIND_CREDIT_NOTE and note.sequence == 2
    assert note.total.amount_minor == "-500" and note.session_id == invoice.session_id
    again = stack.billing.VoidInvoice(
        billing_pb2.VoidInvoiceRequest(merchant_id=merchant, invoice_id=invoice.id)
    )
    assert await rpc_failure(again) == (FAILED, "already_void")
    of_note = stack.billing.VoidInvoice(
        billing_pb2.VoidInvoiceRequest(merchant_id=merchant, invoice_id=note.id)
    )
    assert await rpc_failure(of_note) == (FAILED, "not_an_invoice")
    other = stack.billing.VoidInvoice(
        billing_pb2.VoidInvoiceRequest(merchant_id=str(uuid.uuid4()), invoice_id=invoice.id)
    )
    assert (await rpc_failure(other))[0] == grpc.StatusCode.NOT_FOUND
    # The session still resolves to its invoice, not to the credit note that shares its session id.
    by_session = await stack.billing.GetInvoice(
        billing_pb2.GetInvoiceRequest(merchant_id=merchant, session_id=invoice.session_id)
    )
    assert by_session.id == invoice.id and by_session.status == billing_pb2.INVOICE_STATUS_VOID


async def test_concurrent_voids_give_one_credit_note(stack: ServiceStack) -> None:
    merchant = str(uuid.uuid4())
    invoice = await issue(stack.billing, merchant)
    request = billing_pb2.VoidInvoiceRequest(merchant_id=merchant, invoice_id=invoice.id)
    results = await asyncio.gather(
        *(stack.billing.VoidInvoice(request) for _ in range(5)), return_exceptions=True
    )
    succeeded = [r for r in results if isinstance(r, billing_pb2.VoidInvoiceResponse)]
    assert len(succeeded) == 1
    assert all(
        isinstance(r, grpc.aio.AioRpcError) and r.code() == FAILED for r in results if r not in succeeded
    )
    nxt = await issue(stack.billing, merchant)
    assert nxt.sequence == 3, "the refused voids burned no number"


async def test_list_invoices_pagination_and_filters(stack: ServiceStack) -> None:
    merchant = str(uuid.uuid4())
    issued = [await issue(stack.billing, merchant, minor=100 + i) for i in range(5)]
    await stack.billing.VoidInvoice(
        billing_pb2.VoidInvoiceRequest(merchant_id=merchant, invoice_id=issued[0].id)
    )
    await issue(stack.billing, str(uuid.uuid4()))  # another merchant's invoice never shows up

    seen: list[str] = []
    cursor = ""
    while True:
        page = await stack.billing.ListInvoices(
            billing_pb2.ListInvoicesRequest(merchant_id=merchant, limit=2, starting_after=cursor)
        )
        seen.extend(i.number for i in page.invoices)
        if not page.has_more:
            break
        cursor = page.invoices[-1].id
    sequences = [parse_invoice_number(n).sequence for n in seen]
    assert sequences == [6, 5, 4, 3, 2, 1], "newest first, every document once"

    void = await stack.billing.ListInvoices(
        billing_pb2.ListInvoicesRequest(merchant_id=merchant, status=billing_pb2.INVOICE_STATUS_VOID)
    )
    assert [i.id for i in void.invoices] == [issued[0].id]
    notes = await stack.billing.ListInvoices(
        billing_pb2.ListInvoicesRequest(merchant_id=merchant, kind=billing_pb2.DOCUMENT_KIND_CREDIT_NOTE)
    )
    assert len(notes.invoices) == 1 and notes.invoices[0].credits_invoice_id == issued[0].id

    window = billing_pb2.ListInvoicesRequest(merchant_id=merchant)
    window.issued_from.CopyFrom(issued[1].issued_at)
    window.issued_to.CopyFrom(issued[3].issued_at)
    ranged = await stack.billing.ListInvoices(window)
    assert [i.id for i in ranged.invoices] == [issued[2].id, issued[1].id]


async def test_bad_input_names_the_field(stack: ServiceStack) -> None:
    merchant = str(uuid.uuid4())
    billing = stack.billing
    cases = [
        (issue_request(merchant, minor=0), "invalid_amount"),
        (issue_request(merchant, minor=-5), "invalid_amount"),
        (issue_request(merchant, minor="12.5"), "invalid_amount"),
        (issue_request(merchant, minor=""), "missing_amount"),
        # Withdrawn from ISO 4217 on 2026-01-01. ("ZZZ" would be a token symbol, invoiced with its decimals.)
        (issue_request(merchant, currency="BGN"), "unknown_currency"),
        (issue_request(merchant, currency="XAU", exponent=0), "unknown_currency"),
        (issue_request(merchant, currency="ETH", exponent=6), "invalid_exponent"),
        (issue_request(merchant, currency="eur"), "invalid_currency"),
        (issue_request(merchant, currency=""), "missing_currency"),
        (issue_request(merchant, currency="JPY", exponent=2), "invalid_exponent"),
        (issue_request("", minor=100), "missing_merchant_id"),
        (issue_request(merchant, ""), "missing_session_id"),
        (issue_request(merchant, mode=common_pb2.MODE_UNSPECIFIED), "missing_mode"),
        (
            issue_request(
                merchant,
                minor=100,
                line_items=[billing_pb2.LineItem(description="x", quantity=1, unit_amount=money(99))],
            ),
            "line_items_mismatch",
        ),
        (issue_request(merchant, buyer=billing_pb2.Party(email="not-an-email")), "invalid_buyer_email"),
    ]
    for request, code in cases:
        assert await rpc_failure(billing.IssueInvoice(request)) == (INVALID, code), code
    no_amount = billing_pb2.IssueInvoiceRequest(merchant_id=merchant, mode=TEST, session_id="s")
    assert await rpc_failure(billing.IssueInvoice(no_amount)) == (INVALID, "missing_amount")

    day = billing_pb2.INTERVAL_DAY
    reversed_range = billing_pb2.RevenueSummaryRequest(merchant_id=merchant, interval=day)
    getattr(reversed_range, "from").FromDatetime(datetime(2025, 2, 1))
    reversed_range.to.FromDatetime(datetime(2025, 1, 1))
    assert await rpc_failure(billing.RevenueSummary(reversed_range)) == (INVALID, "invalid_date_range")
    no_range = billing_pb2.RevenueSummaryRequest(merchant_id=merchant, interval=day)
    assert await rpc_failure(billing.RevenueSummary(no_range)) == (INVALID, "invalid_date_range")
    no_interval = billing_pb2.RevenueSummaryRequest(merchant_id=merchant)
    getattr(no_interval, "from").FromDatetime(datetime(2025, 1, 1))
    no_interval.to.FromDatetime(datetime(2025, 2, 1))
    assert await rpc_failure(billing.RevenueSummary(no_interval)) == (INVALID, "invalid_interval")
    no_merchant = billing_pb2.RevenueSummaryRequest(interval=day)
    getattr(no_merchant, "from").FromDatetime(datetime(2025, 1, 1))
    no_merchant.to.FromDatetime(datetime(2025, 2, 1))
    assert await rpc_failure(billing.RevenueSummary(no_merchant)) == (INVALID, "missing_merchant_id")

    list_cases = [
        (billing_pb2.ListInvoicesRequest(merchant_id=merchant, limit=101), "invalid_limit"),
        (
            billing_pb2.ListInvoicesRequest(merchant_id=merchant, starting_after="nope"),
            "invalid_starting_after",
        ),
        (billing_pb2.ListInvoicesRequest(), "missing_merchant_id"),
    ]
    for request, code in list_cases:
        assert await rpc_failure(billing.ListInvoices(request)) == (INVALID, code), code

    profile_cases = [
        (billing_pb2.BillingProfile(merchant_id=merchant, invoice_prefix="inv-"), "invalid_invoice_prefix"),
        (billing_pb2.BillingProfile(merchant_id=merchant, tax_rate_bps=10001), "invalid_tax_rate"),
        (billing_pb2.BillingProfile(merchant_id=merchant, support_email="nope"), "invalid_support_email"),
        (
            billing_pb2.BillingProfile(
                merchant_id=merchant, seller=billing_pb2.Party(address=common_pb2.Address(country="Germany"))
            ),
            "invalid_seller_country",
        ),
        (billing_pb2.BillingProfile(), "missing_merchant_id"),
    ]
    for profile, code in profile_cases:
        call = billing.UpdateBillingProfile(billing_pb2.UpdateBillingProfileRequest(profile=profile))
        assert await rpc_failure(call) == (INVALID, code), code

    missing = billing.GetInvoice(
        billing_pb2.GetInvoiceRequest(merchant_id=merchant, invoice_id=str(uuid.uuid4()))
    )
    assert (await rpc_failure(missing))[0] == grpc.StatusCode.NOT_FOUND
    garbage = billing.GetInvoice(billing_pb2.GetInvoiceRequest(merchant_id=merchant, invoice_id="garbage"))
    assert (await rpc_failure(garbage))[0] == grpc.StatusCode.NOT_FOUND
    neither = billing.GetInvoice(billing_pb2.GetInvoiceRequest(merchant_id=merchant))
    assert await rpc_failure(neither) == (INVALID, "missing_invoice_id")
    bad_format = billing.RenderInvoice(billing_pb2.RenderInvoiceRequest(merchant_id=merchant, invoice_id="x"))
    assert await rpc_failure(bad_format) == (INVALID, "invalid_format")
    # Nothing above issued a document.
    listed = await billing.ListInvoices(billing_pb2.ListInvoicesRequest(merchant_id=merchant))
    assert list(listed.invoices) == []
