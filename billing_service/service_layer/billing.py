"""Billing use cases: issue, read, list, void, render, revenue and profiles, over one asyncpg pool.

The domain validates and builds documents; the repositories persist them; this module decides the order
of reads and the transaction boundaries.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from billing_service.adapters import invoice_repository as invoices
from billing_service.adapters import profile_repository as profiles
from billing_service.adapters import rendering_repository as renderings
from billing_service.adapters.render_html import HTML_CONTENT_TYPE, HTML_RENDERER_VERSION, render_invoice_html
from billing_service.adapters.render_pdf import (
    PDF_CONTENT_TYPE,
    PDF_RENDERER_VERSION,
    render_invoice_documents,
)
from billing_service.domain.invoices import (
    DocumentKind,
    Invoice,
    LineItem,
    Mode,
    Party,
    build_credit_note,
    check_new_country,
    check_reissue,
    draft_invoice,
    ensure_voidable,
    mark_void,
    parse_mode,
    validate_amount,
)
from billing_service.domain.numbering import counter_scope
from billing_service.domain.profiles import BillingProfile, validate_profile
from billing_service.domain.receipt import receipt_filename
from billing_service.domain.revenue import (
    Interval,
    RevenueBucket,
    bucket_revenue,
    date_trunc_unit,
    parse_interval,
    validate_range,
)
from billing_service.service_layer.credit_notes import credited_by_refunds, insert_credit_note
from paygate_runtime.audit_actor import clean_actor
from paygate_runtime.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound, cursor_refused
from paygate_runtime.money import check_unit

ONE_PER_SESSION = "invoices_one_per_session"
DEFAULT_PAGE = 20
MAX_PAGE = 100
# Items of one IssueInvoices call: a dispatcher pass claims at most its concurrency (64 by default).
MAX_BATCH = 500
# The formats a caller may download (the Factur-X XML is stored with its PDF, and served inside it).
_CONTENT_TYPES = {"pdf": PDF_CONTENT_TYPE, "html": HTML_CONTENT_TYPE}


@dataclass(frozen=True, slots=True)
class IssueRequest:
    merchant_id: str
    mode: Mode | str
    session_id: str
    amount_minor: int
    currency: str
    exponent: int
    buyer: Party | None = None
    line_items: Sequence[LineItem] = ()
    paid_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Rendered:
    content: bytes
    content_type: str
    filename: str


def _require(value: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"missing_{field}", f"{field} is required", field=field)
    return value


def _invoice_id(value: str) -> uuid.UUID:
    _require(value, "invoice_id")
    parsed = invoices.parse_uuid(value)
    if parsed is None:
        # A malformed id cannot name any invoice; answering NOT_FOUND keeps it indistinguishable from
        # another merchant's id.
        raise NotFound("invoice_not_found", "no such invoice", field="invoice_id")
    return parsed


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Checked:
    """An issue request whose plain fields passed validation (the domain checks the rest when drafting)."""

    request: IssueRequest
    merchant_id: str
    session_id: str
    mode: Mode
    amount: int
    currency: str
    exponent: int


def _checked(request: IssueRequest) -> _Checked:
    merchant_id = _require(request.merchant_id, "merchant_id")
    session_id = _require(request.session_id, "session_id")
    mode = parse_mode(request.mode)
    amount = validate_amount(request.amount_minor)
    unit = check_unit(request.currency, request.exponent)
    return _Checked(request, merchant_id, session_id, mode, amount, unit.code, unit.exponent)


def _same(existing: Invoice, checked: _Checked) -> Invoice:
    return check_reissue(
        existing, checked.amount, checked.currency, merchant_id=checked.merchant_id, mode=checked.mode
    )


class BillingService:
    def __init__(self, pool: asyncpg.Pool, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self.pool = pool
        self.clock = clock

    # --- issuing --------------------------------------------------------------------------------------

    async def issue_invoice(self, request: IssueRequest) -> Invoice:
        """Issue the session's invoice, or return the one it already has (FAILED_PRECONDITION on a mismatch)."""
        return await self._issue_alone(_checked(request))

    async def issue_invoices(self, requests: Sequence[IssueRequest]) -> list[Invoice | Exception]:
        """Many sessions' invoices, in order: each item exactly what issue_invoice gives for it (the invoice, or
        the error it would raise), and all of them committed in one transaction when no statement fails.

        The group is the cheap path (one commit, one connection for the whole batch). If any statement
        fails (a racing single call took a session first, a constraint), the group rolls back whole, counters
        included, so no number is burned, and each item is then issued on its own: one bad item gets its
        error and the others are issued."""
        if not 1 <= len(requests) <= MAX_BATCH:
            raise InvalidArgument("invalid_batch_size", f"1 to {MAX_BATCH} items are required", field="items")
        results: list[Invoice | Exception | None] = [None] * len(requests)
        todo: list[tuple[int, _Checked]] = []
        for index, request in enumerate(requests):
            try:
                todo.append((index, _checked(request)))
            except DomainError as error:
                results[index] = error
        if todo:
            # Counter rows are locked in one order by every batch (a stable sort: within a merchant the numbers
            # follow the request's order), so two concurrent batches queue rather than deadlock.
            todo.sort(key=lambda item: (item[1].merchant_id, str(item[1].mode)))
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    grouped = await self._issue_group(conn, [checked for _index, checked in todo])
                for (index, _checked_item), outcome in zip(todo, grouped, strict=True):
                    results[index] = outcome
            except asyncpg.PostgresError:
                for index, checked in todo:
                    try:
                        results[index] = await self._issue_alone(checked)
                    except (DomainError, asyncpg.PostgresError) as error:
                        results[index] = error
        return [r if r is not None else RuntimeError("not issued") for r in results]

    async def _issue_group(
        self, conn: asyncpg.Connection, group: list[_Checked]
    ) -> list[Invoice | Exception]:
        """The batch's items inside its transaction: one read for what exists, then one insert per new invoice
        (the same writer as a single call). A session twice in the batch gets the invoice its first item got."""
        known, profiles = await invoices.issue_contexts(
            conn,
            list(dict.fromkeys((c.merchant_id, c.mode) for c in group)),
            list(dict.fromkeys(c.session_id for c in group)),
        )
        outcomes: list[Invoice | Exception] = []
        for checked in group:
            try:
                existing = known.get(checked.session_id)
                if existing is not None:
                    outcomes.append(_same(existing, checked))
                    continue
                issued = await self._insert_new(conn, checked, profiles[(checked.merchant_id, checked.mode)])
                known[checked.session_id] = issued
                outcomes.append(issued)
            except DomainError as error:
                # Refused before any write of its own (check_reissue, the draft's checks): the group is intact.
                outcomes.append(error)
        return outcomes

    async def _issue_alone(self, checked: _Checked) -> Invoice:
        """One item in its own statement, answering a concurrent call for the same session with its invoice."""
        async with self.pool.acquire() as conn:
            try:
                return await self._issue_retrying_taken_number(conn, checked)
            except asyncpg.UniqueViolationError as error:
                if error.constraint_name != ONE_PER_SESSION:
                    raise
            # A concurrent call for the same session won; its statement committed first and ours rolled back
            # whole, counter included.
            existing = await invoices.find_by_session(conn, checked.session_id)
            assert existing is not None
            return _same(existing, checked)

    async def _issue_retrying_taken_number(self, conn: asyncpg.Connection, checked: _Checked) -> Invoice:
        """_issue_on, once more when its number was taken meanwhile. The two counters of a printed series
        (numbering.first_free_sequence) may draw the same number at the same moment: the later insert waits
        for the earlier and fails; that number is committed by then, so the second draw skips it."""
        try:
            return await self._issue_on(conn, checked)
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name != invoices.NUMBER_TAKEN:
                raise
        return await self._issue_on(conn, checked)

    async def _issue_on(self, conn: asyncpg.Connection, checked: _Checked) -> Invoice:
        """One session's invoice on the caller's connection: the one it has, or a new one. Raises
        asyncpg.UniqueViolationError when a concurrent call inserted it first."""
        # Retries are the common duplicate; answering them before the counter row is touched keeps the
        # hot row free for new invoices.
        existing, profile = await invoices.issue_context(
            conn, checked.merchant_id, checked.mode, checked.session_id
        )
        if existing is not None:
            return _same(existing, checked)
        return await self._insert_new(conn, checked, profile)

    async def _insert_new(
        self, conn: asyncpg.Connection, checked: _Checked, profile: BillingProfile
    ) -> Invoice:
        """THE writer of a new invoice: draft it from the request and the merchant's profile, number it and
        insert it in one statement. Raises asyncpg.UniqueViolationError when the session got one meanwhile."""
        request = checked.request
        draft = draft_invoice(
            merchant_id=checked.merchant_id,
            mode=checked.mode,
            session_id=checked.session_id,
            amount_minor=checked.amount,
            currency=checked.currency,
            exponent=checked.exponent,
            seller=profile.seller,
            buyer=request.buyer,
            line_items=request.line_items,
            tax_rate_bps=profile.tax_rate_bps,
            paid_at=request.paid_at,
        )
        issued_at = self.clock()
        scope = counter_scope(
            checked.merchant_id,
            checked.mode,
            reset_yearly=profile.reset_numbering_yearly,
            issued_at=issued_at,
        )
        return await invoices.insert_numbered(
            conn,
            draft,
            id=uuid.uuid4(),
            kind=DocumentKind.INVOICE,
            prefix=profile.invoice_prefix,
            period=scope.period,
            year=issued_at.year,
            issued_at=issued_at,
        )

    async def void_invoice(
        self,
        merchant_id: str,
        invoice_id: str,
        reason: str = "",
        mode: Mode | None = None,
        actor: str = "",
    ) -> tuple[Invoice, Invoice]:
        """Issue the credit note that cancels the invoice and mark it void, atomically. Returns both.
        `mode` scopes the caller: an invoice of the other mode is NOT_FOUND (None: internal callers)."""
        merchant_id = _require(merchant_id, "merchant_id")
        target = _invoice_id(invoice_id)
        async with self.pool.acquire() as conn, conn.transaction():
            # The row lock makes a concurrent second void wait, then see `void` and refuse.
            original = await invoices.load_for_caller(conn, merchant_id, mode, target, for_update=True)
            if original is None:
                raise NotFound("invoice_not_found", "no such invoice", field="invoice_id")
            ensure_voidable(original)
            if await credited_by_refunds(conn, original.id):
                # Voiding credits the whole invoice again; refunds have credited part or all of it already
                # (§8). The code keeps its name (clients match on it) for a fully credited invoice too.
                raise FailedPrecondition(
                    "invoice_partially_credited",
                    "refunds already credited this invoice, in part or in full",
                    field="invoice_id",
                )
            credit_note = await insert_credit_note(
                conn,
                original,
                functools.partial(build_credit_note, original, reason=reason),
                issued_at=self.clock(),
            )
            mark_void(original, credit_note)
            voided = await invoices.mark_void(conn, original.id, credit_note.id, clean_actor(actor))
        return voided, credit_note

    # --- reading --------------------------------------------------------------------------------------

    async def get_invoice(
        self, merchant_id: str, invoice_id: str = "", session_id: str = "", mode: Mode | None = None
    ) -> Invoice:
        """`mode` scopes the caller: a document of the other mode is NOT_FOUND, as another merchant's is."""
        merchant_id = _require(merchant_id, "merchant_id")
        if invoice_id:
            found = await invoices.load_for_caller(self.pool, merchant_id, mode, _invoice_id(invoice_id))
        elif session_id:
            found = await invoices.find_by_session(self.pool, session_id)
        else:
            raise InvalidArgument(
                "missing_invoice_id", "invoice_id or session_id is required", field="invoice_id"
            )
        if found is None or found.merchant_id != merchant_id or (mode is not None and found.mode != mode):
            raise NotFound("invoice_not_found", "no such invoice", field="invoice_id")
        return found

    async def list_invoices(
        self,
        filters: invoices.ListFilter,
        *,
        limit: int = 0,
        starting_after: str = "",
    ) -> tuple[list[Invoice], bool]:
        _require(filters.merchant_id, "merchant_id")
        if limit == 0:
            limit = DEFAULT_PAGE
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidArgument("invalid_limit", f"limit must be 1 to {MAX_PAGE}", field="limit")
        for moment, name in ((filters.issued_from, "from"), (filters.issued_to, "to")):
            if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
                raise InvalidArgument("invalid_date_range", f"{name} must carry a time zone", field=name)
        if filters.issued_from and filters.issued_to and filters.issued_to <= filters.issued_from:
            raise InvalidArgument("invalid_date_range", "to must be after from", field="to")
        after = None
        if starting_after:
            cursor = invoices.parse_uuid(starting_after)
            after = (
                await invoices.cursor_position(self.pool, filters.merchant_id, filters.mode, cursor)
                if cursor
                else None
            )
            if after is None:
                raise cursor_refused()
        return await invoices.list_page(self.pool, filters, limit=limit, after=after)

    async def list_session_documents(
        self, merchant_id: str, mode: Mode, session_ids: list[str]
    ) -> list[Invoice]:
        """Invoices and credit notes of these sessions in the caller's merchant and mode (portal receipts)."""
        merchant_id = _require(merchant_id, "merchant_id")
        if not 1 <= len(session_ids) <= MAX_PAGE or any(not s or len(s) > 64 for s in session_ids):
            raise InvalidArgument(
                "invalid_session_ids", f"1 to {MAX_PAGE} session ids are required", field="session_ids"
            )
        return await invoices.for_sessions(self.pool, merchant_id, mode, session_ids)

    async def render_invoice(
        self, merchant_id: str, invoice_id: str, fmt: str, mode: Mode | None = None
    ) -> Rendered:
        """`fmt` is "html" or "pdf". The document as it was first rendered in its state and that format: a
        document once sent never changes, whatever the rendering code or the profile say by a later download
        (migration 0130)."""
        content_type = _CONTENT_TYPES.get(fmt)
        if content_type is None:
            raise InvalidArgument("invalid_format", "format must be HTML or PDF", field="format")
        invoice = await self.get_invoice(merchant_id, invoice_id, mode=mode)
        document_id = uuid.UUID(invoice.id)
        # Keyed by state too: after a void, the download is a copy stamped VOID (stored in its turn), never the
        # copy sent while the invoice was valid.
        status = str(invoice.status)
        content = await renderings.stored(self.pool, document_id, status, fmt)
        if content is None:
            # Rendered on the first download, never at issue: issuing is on the payment hot path.
            first = await self._render_first(invoice, fmt)
            async with self.pool.acquire() as conn:
                await renderings.store_first(conn, document_id, status, first)
                # Whatever is stored, ours or a concurrent first download's: every caller gets the same bytes.
                content = await renderings.stored(conn, document_id, status, fmt)
            if content is None:
                raise RuntimeError(f"the {fmt} rendering of {invoice.id} was stored but cannot be read back")
        return Rendered(content, content_type, receipt_filename(invoice, fmt))

    async def _render_first(self, invoice: Invoice, fmt: str) -> list[renderings.Rendering]:
        """The renderings to store on a document's first download in `fmt`: a PDF together with the Factur-X XML
        it embeds (the very bytes inside it), PDF first. Related numbers and the support email are looked up
        now; once stored, later changes to them no longer reach the document."""
        related = [i for i in (invoice.credits_invoice_id, invoice.credit_note_id) if i]
        async with self.pool.acquire() as conn:
            numbers = await invoices.numbers_of(conn, invoice.merchant_id, related) if related else {}
            profile = await profiles.get_profile(conn, invoice.merchant_id, invoice.mode)
        credited_number = numbers.get(invoice.credits_invoice_id or "")
        credit_note_number = numbers.get(invoice.credit_note_id or "")
        if fmt == "pdf":
            # fpdf2 is pure Python and takes milliseconds; a thread keeps the event loop answering meanwhile.
            pdf, xml = await asyncio.to_thread(
                lambda: render_invoice_documents(
                    invoice,
                    credited_invoice_number=credited_number,
                    credit_note_number=credit_note_number,
                    support_email=profile.support_email,
                )
            )
            first = [renderings.Rendering("pdf", pdf, PDF_RENDERER_VERSION)]
            if xml is not None:
                first.append(renderings.Rendering("xml", xml, PDF_RENDERER_VERSION))
            return first
        html = render_invoice_html(
            invoice,
            credited_invoice_number=credited_number,
            credit_note_number=credit_note_number,
            support_email=profile.support_email,
        )
        return [renderings.Rendering("html", html.encode(), HTML_RENDERER_VERSION)]

    async def revenue_summary(
        self,
        merchant_id: str,
        mode: Mode | str,
        start: datetime | None,
        end: datetime | None,
        interval: Interval | str,
    ) -> list[RevenueBucket]:
        merchant_id = _require(merchant_id, "merchant_id")
        parsed_mode = parse_mode(mode)
        if start is None or end is None:
            missing = "from" if start is None else "to"
            raise InvalidArgument("invalid_date_range", f"{missing} is required", field=missing)
        start, end = validate_range(start, end)
        unit = date_trunc_unit(parse_interval(interval))
        rows = await invoices.revenue_rows(self.pool, merchant_id, parsed_mode, start, end, unit)
        return bucket_revenue(rows)

    # --- profiles -------------------------------------------------------------------------------------

    async def get_profile(self, merchant_id: str, mode: Mode | str) -> BillingProfile:
        """The profile of one mode (contract §6a): the test world's never answers for the live one."""
        return await profiles.get_profile(self.pool, _require(merchant_id, "merchant_id"), parse_mode(mode))

    async def update_profile(self, profile: BillingProfile, actor: str = "") -> BillingProfile:
        """Replace the profile of its mode. The database versions and audits every change with `actor` (who
        asked: "merchant_key:<id>", "dashboard:merchant_key:<id>"; "" for nobody). A write that would change
        nothing is skipped, so it writes no audit entry, also for a merchant that never set a profile."""
        valid = validate_profile(profile)
        async with self.pool.acquire() as conn:
            stored = await profiles.get_profile(conn, valid.merchant_id, valid.mode)
            check_new_country(valid.seller, "seller", stored=stored.seller)
            if stored != valid:
                await profiles.put_profile(conn, valid, actor=clean_actor(actor))
        return valid
