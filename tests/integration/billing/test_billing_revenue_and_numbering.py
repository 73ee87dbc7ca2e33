"""RevenueSummary netting and bucketing, yearly numbering resets, and the revenue query's index."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from billing_helpers import LIVE, TEST, issue, runtime_pool

from billing_service.adapters.invoice_repository import REVENUE_SQL
from billing_service.domain.invoices import DocumentKind
from billing_service.service_layer.billing import BillingService, IssueRequest
from paygate.billing.v1 import billing_pb2
from support.stack import ServiceStack


def revenue_request(merchant: str, start: datetime, end: datetime, interval: int, mode: int = TEST):  # type: ignore[no-untyped-def]
    request = billing_pb2.RevenueSummaryRequest(merchant_id=merchant, mode=mode, interval=interval)
    getattr(request, "from").FromDatetime(start)
    request.to.FromDatetime(end)
    return request


async def test_credit_note_nets_out_per_currency(stack: ServiceStack) -> None:
    merchant = str(uuid.uuid4())
    eur = [await issue(stack.billing, merchant, minor=m) for m in (1000, 2550)]
    await issue(stack.billing, merchant, minor=700, currency="JPY", exponent=0)
    await issue(stack.billing, merchant, minor=999, mode=LIVE)  # live never shows in test figures
    await stack.billing.VoidInvoice(
        billing_pb2.VoidInvoiceRequest(merchant_id=merchant, invoice_id=eur[0].id)
    )

    now = datetime.now(UTC)
    reply = await stack.billing.RevenueSummary(
        revenue_request(
            merchant, now - timedelta(days=2), now + timedelta(days=2), billing_pb2.INTERVAL_MONTH
        )
    )
    by_currency = {b.currency: b for b in reply.buckets}
    assert set(by_currency) == {"EUR", "JPY"}
    bucket = by_currency["EUR"]
    assert (bucket.invoice_count, bucket.invoice_total.amount_minor) == (2, "3550")
    assert (bucket.credit_note_count, bucket.credit_note_total.amount_minor) == (1, "1000")
    assert bucket.net.amount_minor == "2550" and bucket.net.exponent == 2
    jpy = by_currency["JPY"]
    assert (jpy.invoice_count, jpy.net.amount_minor, jpy.net.exponent) == (1, "700", 0)
    assert (
        bucket.period_start.ToDatetime(tzinfo=UTC)
        == now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        or len(reply.buckets) > 2
    )  # a run across a month boundary splits buckets

    live = await stack.billing.RevenueSummary(
        revenue_request(
            merchant, now - timedelta(days=1), now + timedelta(days=1), billing_pb2.INTERVAL_DAY, LIVE
        )
    )
    assert [(b.currency, b.net.amount_minor) for b in live.buckets] == [("EUR", "999")]


@pytest.fixture
async def billing_pool(stack: ServiceStack) -> AsyncIterator[asyncpg.Pool]:
    async with runtime_pool(stack) as pool:
        yield pool


class FakeClock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


async def test_yearly_reset_and_day_buckets_with_a_controlled_clock(
    stack: ServiceStack, billing_pool: asyncpg.Pool
) -> None:
    """The service layer over real Postgres with a clock we set: numbering across New Year, UTC buckets."""
    clock = FakeClock(datetime(2024, 12, 31, 23, 30, tzinfo=UTC))
    service = BillingService(billing_pool, clock=clock)
    resetting, endless = str(uuid.uuid4()), str(uuid.uuid4())
    from billing_service.domain.profiles import BillingProfile

    await service.update_profile(BillingProfile(merchant_id=resetting, reset_numbering_yearly=True))

    def request(merchant: str, minor: int = 100) -> IssueRequest:
        return IssueRequest(merchant, "test", str(uuid.uuid4()), minor, "EUR", 2)

    numbers: dict[str, list[str]] = {resetting: [], endless: []}
    for moment in (datetime(2024, 12, 31, 23, 30, tzinfo=UTC), datetime(2025, 1, 1, 0, 30, tzinfo=UTC)):
        clock.moment = moment
        for merchant in numbers:
            for _ in range(2):
                numbers[merchant].append((await service.issue_invoice(request(merchant))).number)
    assert numbers[resetting] == ["INV-2024-000001", "INV-2024-000002", "INV-2025-000001", "INV-2025-000002"]
    assert numbers[endless] == ["INV-2024-000001", "INV-2024-000002", "INV-2025-000003", "INV-2025-000004"]

    buckets = await service.revenue_summary(
        endless, "test", datetime(2024, 12, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC), "day"
    )
    assert [(b.period_start.date().isoformat(), b.invoice_count, b.net) for b in buckets] == [
        ("2024-12-31", 2, 200),
        ("2025-01-01", 2, 200),
    ]
    weeks = await service.revenue_summary(
        endless, "test", datetime(2024, 12, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC), "week"
    )
    # 2024-12-31 and 2025-01-01 share the ISO week that starts on Monday 2024-12-30.
    assert [(b.period_start, b.invoice_count) for b in weeks] == [(datetime(2024, 12, 30, tzinfo=UTC), 4)]
    invoices_kind = {b.currency for b in buckets}
    assert invoices_kind == {"EUR"} and DocumentKind.INVOICE


# Realistically sized documents: the heap row is several times wider than the index entry.
SELLER = json.dumps(
    {"name": "Acme Widgets GmbH", "email": "billing@acme.example", "tax_id": "DE123456789",
     "address": {"lines": ["Hauptstrasse 1", "10115 Berlin"], "country": "DE"}}
)  # fmt: skip
BUYER = json.dumps(
    {"name": "Jane Doe", "email": "jane.doe@example.com", "tax_id": "", "address": {"lines": []}}
)
LINES = json.dumps([{"description": "API access, monthly plan", "quantity": 1, "unit_amount": "1000"}])


async def test_revenue_query_uses_the_covering_index(stack: ServiceStack) -> None:
    """A year of invoices (8k for this merchant, 40k in all): the plan reads the index, not the table."""
    merchant = str(uuid.uuid4())
    admin = await stack.db.admin()
    try:
        # Durable commit for the load, so that VACUUM may mark the pages all-visible (the test database runs
        # with synchronous_commit off, and VACUUM never sets the visibility bit for unflushed commits).
        await admin.execute("SET synchronous_commit = on")
        # The plan is the subject, not the audit chain: its per-row triggers (a hash chained through one head per
        # merchant) made this load most of the test's time. Replica mode skips them for this session only.
        await admin.execute("SET session_replication_role = replica")
        await admin.execute(
            """INSERT INTO billing.invoices (id, merchant_id, mode, kind, number, counter_period, sequence,
                   session_id, seller, buyer, line_items, currency, exponent, subtotal, tax_rate_bps, tax, total,
                   issued_at)
               SELECT gen_random_uuid(), m, 'live', 'invoice', 'INV-2025-' || g, 0, g, gen_random_uuid()::text,
                      $2::jsonb, $3::jsonb, $4::jsonb, 'EUR', 2, 1000, 0, 0, 1000,
                      timestamptz '2025-01-01' + (g % 365) * interval '1 day' + (g % 86400) * interval '1 second'
                 FROM generate_series(1, 8000) g,
                      (VALUES ($1), ('other-a'), ('other-b'), ('other-c'), ('other-d')) AS ms(m)""",
            merchant,
            SELLER,
            BUYER,
            LINES,
        )
        await admin.execute("VACUUM ANALYZE billing.invoices")
        await admin.execute("SET search_path = billing")
        plan = await admin.fetchval(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + REVENUE_SQL,
            merchant,
            "live",
            datetime(2025, 1, 1, tzinfo=UTC),
            datetime(2026, 1, 1, tzinfo=UTC),
            "day",
        )
    finally:
        await admin.close()
    text = str(plan)
    assert "invoices_merchant_issued" in text
    assert "Index Only Scan" in text, text
    assert '"Heap Fetches": 0' in text or "Heap Fetches" not in text
