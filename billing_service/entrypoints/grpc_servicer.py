"""BillingService over gRPC: decode the request, call the use case, encode the answer.

Domain errors propagate to the shared RPC wrapper (`paygate_runtime.grpc_server.guarded_rpc`), which maps them
to a status and a stable code.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

import grpc

from billing_service.adapters.invoice_repository import ListFilter
from billing_service.domain.invoices import Mode
from billing_service.entrypoints import proto_mapping as pm
from billing_service.service_layer import credit_notes
from billing_service.service_layer.billing import BillingService, IssueRequest
from paygate.billing.v1 import billing_pb2, billing_pb2_grpc
from paygate.common.v1 import common_pb2
from paygate_runtime.audit_listing import list_audit_entries
from paygate_runtime.errors import DomainError, InvalidArgument
from paygate_runtime.grpc_errors import item_error

log = logging.getLogger(__name__)
_FORMATS = {billing_pb2.RENDER_FORMAT_HTML: "html", billing_pb2.RENDER_FORMAT_PDF: "pdf"}


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):
    def __init__(self, service: BillingService) -> None:
        self.service = service

    async def ListAuditEntries(
        self, request: common_pb2.ListAuditEntriesRequest, context: grpc.aio.ServicerContext
    ) -> common_pb2.ListAuditEntriesResponse:
        # The merchant's hash-chained audit of this service (issue 20, GET /v1/audit).
        return await list_audit_entries(self.service.pool, "billing", request)

    async def IssueInvoice(
        self, request: billing_pb2.IssueInvoiceRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.Invoice:
        invoice = await self.service.issue_invoice(_issue_request(request))
        return pm.invoice_to_proto(invoice)

    async def IssueInvoices(
        self, request: billing_pb2.IssueInvoicesRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.IssueInvoicesResponse:
        if not request.items:
            raise InvalidArgument("invalid_batch_size", "at least one item is required", field="items")
        decoded: list[IssueRequest | DomainError] = []
        for item in request.items:
            try:
                decoded.append(_issue_request(item))
            except DomainError as error:
                decoded.append(error)
        wanted = [d for d in decoded if isinstance(d, IssueRequest)]
        issued = iter(await self.service.issue_invoices(wanted) if wanted else [])
        results = []
        for item, entry in zip(request.items, decoded, strict=True):
            outcome = entry if isinstance(entry, DomainError) else next(issued)
            result = billing_pb2.IssueInvoicesResult(session_id=item.session_id)
            if isinstance(outcome, Exception):
                result.error.CopyFrom(item_error(outcome, "invoice item"))
            else:
                result.invoice.CopyFrom(pm.invoice_to_proto(outcome))
            results.append(result)
        return billing_pb2.IssueInvoicesResponse(results=results)

    async def IssueCreditNote(
        self, request: billing_pb2.IssueCreditNoteRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.Invoice:
        if not request.HasField("amount"):
            raise InvalidArgument("missing_amount", "amount is required", field="amount")
        credit_note = await credit_notes.issue_credit_note(
            self.service.pool,
            credit_notes.CreditRequest(
                merchant_id=request.merchant_id,
                mode=pm.mode_from_proto(request.mode),
                session_id=request.session_id,
                refund_id=request.refund_id,
                amount_minor=pm.parse_minor(request.amount.amount_minor, "amount"),
                currency=request.amount.currency,
                exponent=request.amount.exponent,
                reason=request.reason,
            ),
            clock=self.service.clock,
        )
        return pm.invoice_to_proto(credit_note)

    async def GetInvoice(
        self, request: billing_pb2.GetInvoiceRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.Invoice:
        invoice = await self.service.get_invoice(
            request.merchant_id, request.invoice_id, request.session_id, _scope(request.mode)
        )
        return pm.invoice_to_proto(invoice)

    async def ListInvoices(
        self, request: billing_pb2.ListInvoicesRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.ListInvoicesResponse:
        filters = ListFilter(
            merchant_id=request.merchant_id,
            mode=_scope(request.mode),
            status=_enum(pm.STATUS_FROM_PROTO, request.status, "status"),
            kind=_enum(pm.KIND_FROM_PROTO, request.kind, "kind"),
            issued_from=pm.from_timestamp(request.issued_from, request.HasField("issued_from")),
            issued_to=pm.from_timestamp(request.issued_to, request.HasField("issued_to")),
        )
        page, has_more = await self.service.list_invoices(
            filters, limit=request.limit, starting_after=request.starting_after
        )
        return billing_pb2.ListInvoicesResponse(
            invoices=[pm.invoice_to_proto(i) for i in page], has_more=has_more
        )

    async def ListSessionDocuments(
        self, request: billing_pb2.ListSessionDocumentsRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.ListInvoicesResponse:
        mode = _scope(request.mode)
        if mode is None:
            raise InvalidArgument("missing_mode", "mode must be test or live", field="mode")
        documents = await self.service.list_session_documents(
            request.merchant_id, mode, list(request.session_ids)
        )
        return billing_pb2.ListInvoicesResponse(invoices=[pm.invoice_to_proto(i) for i in documents])

    async def VoidInvoice(
        self, request: billing_pb2.VoidInvoiceRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.VoidInvoiceResponse:
        voided, credit_note = await self.service.void_invoice(
            request.merchant_id, request.invoice_id, request.reason, _scope(request.mode), actor=request.actor
        )
        return billing_pb2.VoidInvoiceResponse(
            invoice=pm.invoice_to_proto(voided), credit_note=pm.invoice_to_proto(credit_note)
        )

    async def RenderInvoice(
        self, request: billing_pb2.RenderInvoiceRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.RenderedDocument:
        fmt = _FORMATS.get(request.format)
        if fmt is None:
            raise InvalidArgument("invalid_format", "format must be HTML or PDF", field="format")
        rendered = await self.service.render_invoice(
            request.merchant_id, request.invoice_id, fmt, _scope(request.mode)
        )
        return billing_pb2.RenderedDocument(
            content=rendered.content, content_type=rendered.content_type, filename=rendered.filename
        )

    async def RevenueSummary(
        self, request: billing_pb2.RevenueSummaryRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.RevenueSummaryResponse:
        interval = pm.INTERVAL_FROM_PROTO.get(request.interval)
        if interval is None:
            raise InvalidArgument("invalid_interval", "interval must be day, week or month", field="interval")
        buckets = await self.service.revenue_summary(
            request.merchant_id,
            pm.mode_from_proto(request.mode, default=Mode.LIVE),
            pm.from_timestamp(getattr(request, "from"), request.HasField("from")),
            pm.from_timestamp(request.to, request.HasField("to")),
            interval,
        )
        return billing_pb2.RevenueSummaryResponse(buckets=[pm.bucket_to_proto(b) for b in buckets])

    async def GetBillingProfile(
        self, request: billing_pb2.GetBillingProfileRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.BillingProfile:
        # Unspecified mode is the test world's profile, for internal callers; the gateway always sends the
        # caller's key's mode, so a test key never reads the live profile (contract §6a).
        mode = pm.mode_from_proto(request.mode, default=Mode.TEST)
        return pm.profile_to_proto(await self.service.get_profile(request.merchant_id, mode))

    async def UpdateBillingProfile(
        self, request: billing_pb2.UpdateBillingProfileRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.BillingProfile:
        mode = pm.mode_from_proto(request.mode, default=Mode.TEST)
        saved = await self.service.update_profile(
            pm.profile_from_proto(request.profile, mode), actor=request.actor
        )
        return pm.profile_to_proto(saved)


T = TypeVar("T")


def _issue_request(request: billing_pb2.IssueInvoiceRequest) -> IssueRequest:
    if not request.HasField("amount"):
        raise InvalidArgument("missing_amount", "amount is required", field="amount")
    currency = request.amount.currency
    return IssueRequest(
        merchant_id=request.merchant_id,
        mode=pm.mode_from_proto(request.mode),
        session_id=request.session_id,
        amount_minor=pm.parse_minor(request.amount.amount_minor, "amount"),
        currency=currency,
        exponent=request.amount.exponent,
        buyer=pm.party_from_proto(request.buyer),
        line_items=pm.line_items_from_proto(list(request.line_items), currency),
        paid_at=pm.from_timestamp(request.paid_at, request.HasField("paid_at")),
    )


def _enum(table: Mapping[Any, T], value: int, field: str) -> T | None:  # keys: proto enum values (ints)
    if value == 0:
        return None
    if value not in table:
        raise InvalidArgument(f"invalid_{field}", f"unknown {field}", field=field)
    return table[value]


def _scope(mode: int) -> Mode | None:
    """The caller's mode: every merchant request sets its key's mode, and then a document of the other mode
    is NOT_FOUND (or absent from a list), exactly as another merchant's. Unspecified: internal callers."""
    if mode == 0:
        return None
    return pm.mode_from_proto(mode)
