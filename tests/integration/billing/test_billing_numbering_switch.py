"""Switching `reset_numbering_yearly` (or the prefix) part-way through a year, over real gRPC and Postgres.

The never-resetting counter (period 0) and the year's counter print numbers in the same series
`{PREFIX}-{YYYY}-{NNNNNN}`; a switch must carry on after the numbers already printed, never stop invoicing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from billing_helpers import TEST, issue, runtime_pool

from billing_service.adapters import invoice_repository as invoices
from billing_service.domain.invoices import DocumentKind, Party, draft_invoice
from billing_service.domain.numbering import NO_RESET_PERIOD
from billing_service.domain.profiles import BillingProfile
from billing_service.service_layer.billing import BillingService, IssueRequest
from paygate.billing.v1 import billing_pb2, billing_pb2_grpc
from support.stack import ServiceStack


async def _set_profile(
    billing: billing_pb2_grpc.BillingServiceStub, merchant: str, *, yearly: bool, prefix: str = "INV"
) -> None:
    await billing.UpdateBillingProfile(
        billing_pb2.UpdateBillingProfileRequest(
            profile=billing_pb2.BillingProfile(
                merchant_id=merchant, invoice_prefix=prefix, reset_numbering_yearly=yearly
            ),
            mode=TEST,
        ),
        timeout=5,
    )


async def test_switching_to_yearly_and_back_mid_year_keeps_issuing(stack: ServiceStack) -> None:
    merchant = str(uuid.uuid4())
    year = datetime.now(UTC).year
    numbers = [(await issue(stack.billing, merchant)).number]  # the never-resetting counter: 1

    await _set_profile(stack.billing, merchant, yearly=True)
    numbers.append((await issue(stack.billing, merchant)).number)  # the year's counter skips the taken 1
    await _set_profile(stack.billing, merchant, yearly=False)
    numbers.append((await issue(stack.billing, merchant)).number)  # period 0 skips the year's 2
    await _set_profile(stack.billing, merchant, yearly=True)
    numbers.append((await issue(stack.billing, merchant)).number)  # and the year's counter skips 3

    assert numbers == [f"INV-{year}-{n:06d}" for n in (1, 2, 3, 4)]


async def test_a_prefix_change_and_back_with_both_counters_never_collides(stack: ServiceStack) -> None:
    merchant = str(uuid.uuid4())
    year = datetime.now(UTC).year
    numbers = [(await issue(stack.billing, merchant)).number]
    for yearly, prefix in ((True, "ABC"), (True, "INV"), (False, "ABC"), (False, "INV"), (True, "ABC")):
        await _set_profile(stack.billing, merchant, yearly=yearly, prefix=prefix)
        numbers.append((await issue(stack.billing, merchant)).number)

    assert numbers == [
        f"INV-{year}-000001",
        f"ABC-{year}-000001",  # the year's counter: ABC-…-1 is free
        f"INV-{year}-000002",  # the year's counter: 2, INV-…-2 is free
        f"ABC-{year}-000002",  # period 0: 2, ABC-…-2 is free
        f"INV-{year}-000003",  # period 0: 3
        f"ABC-{year}-000003",  # the year's counter: 3
    ]


@pytest.fixture
async def billing_pool(stack: ServiceStack) -> AsyncIterator[asyncpg.Pool]:
    async with runtime_pool(stack) as pool:
        yield pool


async def _wait_for_a_lock_wait(stack: ServiceStack) -> None:
    admin = await stack.db.admin()
    try:
        for _ in range(100):
            if await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%draw_invoice%'"
            ):
                return
            await asyncio.sleep(0.05)
    finally:
        await admin.close()
    raise AssertionError("the racing issue never waited on the other counter's uncommitted number")


async def test_two_counters_racing_for_one_number_fail_once_then_issue_the_next(
    stack: ServiceStack, billing_pool: asyncpg.Pool
) -> None:
    """The never-resetting counter prints INV-…-2 in an open transaction while the year's counter draws the same
    number: the year's insert waits, fails once on the unique number when the other commits, and the
    service's retry skips the now visible number."""
    service = BillingService(billing_pool)
    merchant = str(uuid.uuid4())
    year = datetime.now(UTC).year

    def request() -> IssueRequest:
        return IssueRequest(merchant, "test", str(uuid.uuid4()), 100, "EUR", 2)

    first = await service.issue_invoice(request())
    await service.update_profile(BillingProfile(merchant_id=merchant, reset_numbering_yearly=True))

    async with billing_pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        draft = draft_invoice(
            merchant_id=merchant, mode="test", session_id=str(uuid.uuid4()), amount_minor=100,
            currency="EUR", exponent=2, seller=Party(),
        )  # fmt: skip
        now = datetime.now(UTC)
        held = await invoices.insert_numbered(
            conn, draft, id=uuid.uuid4(), kind=DocumentKind.INVOICE, prefix="INV", period=NO_RESET_PERIOD,
            year=now.year, issued_at=now,
        )  # fmt: skip
        racing = asyncio.create_task(service.issue_invoice(request()))
        await _wait_for_a_lock_wait(stack)
        await transaction.commit()
    second = await asyncio.wait_for(racing, timeout=10)

    assert [first.number, held.number, second.number] == [f"INV-{year}-{n:06d}" for n in (1, 2, 3)]


async def test_a_merchant_that_never_switched_draws_without_reading_its_invoices(stack: ServiceStack) -> None:
    """The probe for the other counter's numbers runs only when that counter exists. Run on every invoice, it
    cost a fresh deployment's first burst three quarters of its rate: with an empty table's statistics the
    planner answered it from invoices_merchant_issued, one pass over the merchant's invoices per invoice
    (bench_stack.py, 9,000 sessions: 81 fulfilled/s against 341). Counted in the transaction's own statistics."""
    merchant = str(uuid.uuid4())
    await issue(stack.billing, merchant)
    year = datetime.now(UTC).year
    admin = await stack.db.admin()
    try:
        async with admin.transaction():
            await admin.execute("SET LOCAL search_path = billing")

            async def scans() -> int:
                return int(
                    await admin.fetchval(
                        """SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables
                            WHERE schemaname = 'billing' AND relname = 'invoices'"""
                    )
                )

            before = await scans()
            drawn = await admin.fetchval(
                "SELECT draw_invoice_sequence($1, 'test', $2, 'INV', $3)", merchant, NO_RESET_PERIOD, year
            )
            assert drawn == 2
            assert await scans() == before, "the draw read the invoices table"
            # The year's counter (created by its first draw) meets the period-0 counter: the probe runs and skips
            # the year's 1, which period 0 printed; 2 was only drawn above, never printed.
            year_draw = "SELECT draw_invoice_sequence($1, 'test', $2, 'INV', $3)"
            assert await admin.fetchval(year_draw, merchant, year, year) == 2
            assert await scans() > before
            raise _RolledBack
    except _RolledBack:
        pass
    finally:
        await admin.close()


class _RolledBack(Exception):
    """Leaves the probe's transaction without a trace."""
