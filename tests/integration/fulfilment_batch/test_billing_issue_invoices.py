"""BillingService.IssueInvoices over real gRPC and Postgres: idempotent per session, one writer with IssueInvoice,
per-item failure isolation, and no burned invoice number when the group has to fall back item by item."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from batch_support import admin_fetch, admin_val, invoice_item, status_name

from paygate.billing.v1 import billing_pb2
from paygate_runtime.grpc_errors import error_code
from support import polling
from support.stack import ServiceStack


async def _batch(
    stack: ServiceStack, *items: billing_pb2.IssueInvoiceRequest
) -> list[billing_pb2.IssueInvoicesResult]:
    reply = await stack.billing.IssueInvoices(billing_pb2.IssueInvoicesRequest(items=list(items)), timeout=10)
    assert [r.session_id for r in reply.results] == [i.session_id for i in items]
    return list(reply.results)


async def test_same_session_twice_in_a_batch_and_across_batches_gets_one_invoice(stack: ServiceStack) -> None:
    merchant = str(uuid.uuid4())
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    first = await _batch(
        stack, invoice_item(merchant, a), invoice_item(merchant, b), invoice_item(merchant, a)
    )
    assert all(r.HasField("invoice") for r in first)
    assert first[0].invoice == first[2].invoice, "the same session twice in one batch is one invoice"
    assert first[0].invoice.id != first[1].invoice.id

    again = await _batch(
        stack, invoice_item(merchant, b), invoice_item(merchant, c), invoice_item(merchant, a)
    )
    assert again[0].invoice == first[1].invoice and again[2].invoice == first[0].invoice
    # The single call is the same writer: it returns the batch's invoice, and the batch returns the single's.
    single = await stack.billing.IssueInvoice(invoice_item(merchant, c), timeout=10)
    assert single == again[1].invoice

    rows = await admin_fetch(
        stack,
        "SELECT session_id, sequence FROM billing.invoices WHERE merchant_id = $1 ORDER BY sequence",
        merchant,
    )
    assert sorted(r["session_id"] for r in rows) == sorted([a, b, c])
    assert [r["sequence"] for r in rows] == [1, 2, 3], "gapless"


async def test_a_refused_item_gets_its_error_and_the_others_are_issued(stack: ServiceStack) -> None:
    merchant, other_merchant = str(uuid.uuid4()), str(uuid.uuid4())
    invoiced = str(uuid.uuid4())
    await stack.billing.IssueInvoice(invoice_item(merchant, invoiced, minor=4200), timeout=10)
    missing_amount = invoice_item(merchant, str(uuid.uuid4()))
    missing_amount.ClearField("amount")
    good = [str(uuid.uuid4()) for _ in range(3)]
    results = await _batch(
        stack,
        invoice_item(merchant, good[0]),
        invoice_item(merchant, invoiced, minor=4201),  # the session's invoice has another amount
        invoice_item(merchant, str(uuid.uuid4()), minor=0),  # nothing to invoice
        invoice_item(merchant, good[1]),
        missing_amount,
        invoice_item(other_merchant, invoiced, minor=4200),  # another merchant's session
        invoice_item(merchant, good[2]),
    )
    errors = {
        i: (status_name(r.error.status), r.error.code) for i, r in enumerate(results) if r.HasField("error")
    }
    assert errors == {
        1: ("FAILED_PRECONDITION", "invoice_amount_conflict"),
        2: ("INVALID_ARGUMENT", "invalid_amount"),
        4: ("INVALID_ARGUMENT", "missing_amount"),
        5: ("FAILED_PRECONDITION", "invoice_session_conflict"),
    }
    # Each refusal is what the single call answers for that item.
    for index, request in ((1, invoice_item(merchant, invoiced, minor=4201)), (4, missing_amount)):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stack.billing.IssueInvoice(request, timeout=10)
        assert error_code(refused.value) == results[index].error.code
    issued = [results[i].invoice for i in (0, 3, 6)]
    assert [i.session_id for i in issued] == good and [i.sequence for i in issued] == [2, 3, 4]
    assert await admin_val(stack, "SELECT count(*) FROM billing.invoices") == 4


async def test_empty_batch_is_refused(stack: ServiceStack) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stack.billing.IssueInvoices(billing_pb2.IssueInvoicesRequest(), timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_code(refused.value) == "invalid_batch_size"


async def test_a_group_that_loses_a_race_is_issued_item_by_item_and_burns_no_number(
    stack: ServiceStack,
) -> None:
    """A session's invoice appears (committed by someone else) while the batch's transaction runs: the group's
    insert for it fails, the group rolls back whole, and each item is issued alone; the raced session gets the
    invoice that won, the others theirs, and the numbers stay gapless."""
    merchant = str(uuid.uuid4())
    template = str(uuid.uuid4())
    await stack.billing.IssueInvoice(invoice_item(merchant, template, minor=5000), timeout=10)  # number 1
    raced, before, after = (str(uuid.uuid4()) for _ in range(3))
    racer = await stack.db.admin()
    try:
        racing = racer.transaction()
        await racer.execute("SET search_path TO billing")
        await racing.start()
        # Another writer's invoice for `raced`, not yet committed: invisible to the batch's read, but its insert
        # waits on the unique index and then fails.
        await racer.execute(
            """INSERT INTO invoices
               SELECT (jsonb_populate_record(NULL::invoices, to_jsonb(i) || jsonb_build_object(
                          'id', gen_random_uuid(), 'session_id', $2::text, 'sequence', 1000,
                          'number', i.number || '-R'))).*
                 FROM invoices i WHERE i.session_id = $1""",
            template,
            raced,
        )
        call = asyncio.ensure_future(
            stack.billing.IssueInvoices(
                billing_pb2.IssueInvoicesRequest(
                    items=[
                        invoice_item(merchant, before),
                        invoice_item(merchant, raced, minor=5000),
                        invoice_item(merchant, after),
                    ]
                ),
                timeout=20,
            )
        )

        async def batch_waits() -> bool:
            return bool(
                await admin_val(
                    stack,
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO invoices%'",
                )
            )

        await polling.eventually(batch_waits, timeout=10, interval=0.05)
        await racing.commit()
    finally:
        await racer.close()
    reply = await call
    assert [r.WhichOneof("outcome") for r in reply.results] == ["invoice"] * 3
    won = await admin_val(stack, "SELECT id::text FROM billing.invoices WHERE session_id = $1", raced)
    assert reply.results[1].invoice.id == won
    sequences = await admin_fetch(
        stack,
        "SELECT sequence FROM billing.invoices WHERE merchant_id = $1 AND sequence < 1000 ORDER BY sequence",
        merchant,
    )
    assert [r["sequence"] for r in sequences] == [1, 2, 3], "the rolled-back group burned no number"
    assert {reply.results[0].invoice.sequence, reply.results[2].invoice.sequence} == {2, 3}


async def test_each_merchant_of_a_batch_numbers_with_its_own_profile_and_counter(stack: ServiceStack) -> None:
    """The batch reads every merchant's profile once (prefix, tax rate): its invoices are the ones the single
    call issues, numbered in each merchant's own gapless sequence."""
    shop, plain = str(uuid.uuid4()), str(uuid.uuid4())
    await stack.billing.UpdateBillingProfile(
        billing_pb2.UpdateBillingProfileRequest(
            profile=billing_pb2.BillingProfile(merchant_id=shop, invoice_prefix="SHOP7", tax_rate_bps=1900)
        )
    )
    sessions = [(shop if n % 2 else plain, str(uuid.uuid4())) for n in range(6)]
    results = await _batch(stack, *(invoice_item(m, s, minor=11900) for m, s in sessions))
    for (merchant, session), result in zip(sessions, results, strict=True):
        invoice = result.invoice
        assert invoice.session_id == session and invoice.merchant_id == merchant
        # What the single call answers for the same session: the very invoice the batch issued.
        assert (
            await stack.billing.IssueInvoice(invoice_item(merchant, session, minor=11900), timeout=10)
            == invoice
        )
    shop_invoices = [r.invoice for (m, _s), r in zip(sessions, results, strict=True) if m == shop]
    plain_invoices = [r.invoice for (m, _s), r in zip(sessions, results, strict=True) if m == plain]
    assert [i.sequence for i in shop_invoices] == [1, 2, 3] and [i.sequence for i in plain_invoices] == [
        1,
        2,
        3,
    ]
    assert all(i.number.startswith("SHOP7-") and i.tax_rate_bps == 1900 for i in shop_invoices)
    assert all(not i.number.startswith("SHOP7-") and i.tax_rate_bps == 0 for i in plain_invoices)
